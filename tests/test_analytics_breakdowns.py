"""Metrics per strategy, per readiness state and per market regime at entry, on a hand-worked
journal (the five trades of docs/metrics.md's example, each given an entry signal), and the
report showing them as a table, JSON and HTML."""
from __future__ import annotations

import json
import math
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import REPO, cli_cmd, cli_env
from engine.analytics.journal_data import load
from engine.analytics.metrics import compute
from engine.analytics.trades import rebuild_trades
from test_analytics_helpers import Fills, at, equity, session, write_journal

D = Decimal
TAG_T1 = "regime: vol high (p90), trend up (z +1.50)"
TAG_T2 = "regime: vol high (p75), trend down (z -2.10)"
TAG_T5 = "regime: vol normal (p50), trend up (z +1.00)"  # z exactly at the threshold: up


def signal(ts, symbol: str, side: str, readiness: str, reason: str, **extra) -> tuple:
    return ("signal", ts, None, {"symbol": symbol, "side": side, "edge": 0.5, "confidence": 0.9, "stop": "1",
                                 "price": "1", "reason": reason, "strategy": "ema_trend", "readiness": readiness,
                                 **extra})


def order(ts, cid: str, symbol: str, side: str, reason: str, parent: str | None = None, kind: str = "market") -> tuple:
    return ("order", ts, cid, {"client_order_id": cid, "symbol": symbol, "side": side, "type": kind,
                               "purpose": "entry", "quantity": "1", "status": "submitted", "reason": reason,
                               "parent_id": parent})


def context_rows() -> list[tuple]:
    """docs/metrics.md's five trades (nets +89.90, +39.65, -161.85, -2.00, +93.90), each entry
    preceded by what the engine journals for it. The fills' refs are o1, o2, ... (Fills)."""
    f = Fills()
    return [
        session(at(1, 0)),
        equity(at(1, 9), "10000"),
        # T1 BTC long: ready, high volatility, up trend (the tag in the reason)
        signal(at(1, 9.4), "BTC/USD", "buy", "ready", f"trend up vote +0.50 [...] {TAG_T1}"),
        order(at(1, 9.4), "o1", "BTC/USD", "buy", f"trend up vote +0.50 [...] {TAG_T1}"),
        f(at(1, 9.5), "BTC/USD", "buy", "0.1", "50000", "5.00"),
        f(at(1, 10), "BTC/USD", "sell", "0.1", "51000", "5.10", "100", "exit"),
        equity(at(1, 12), "10200"),
        # T2 BTC short: forming
        signal(at(1, 12.9), "BTC/USD", "sell", "forming", f"trend down vote -0.40 [...] {TAG_T2}"),
        order(at(1, 12.9), "o3", "BTC/USD", "sell", f"trend down vote -0.40 [...] {TAG_T2}"),
        f(at(1, 13), "BTC/USD", "sell", "0.1", "52000", "5.20"),
        f(at(1, 14), "BTC/USD", "buy", "0.1", "51500", "5.15", "50", "exit"),
        equity(at(1, 20), "10098"),
        # T3 ETH long: ready; a structured `regime` field wins over a tag in the reason
        signal(at(2, 0.9), "ETH/USD", "buy", "ready", "trend up vote +0.30 regime: vol high, trend up",
               regime={"volatility": "low", "trend": "flat", "vol_rank": 0.1, "trend_z": 0.2}),
        order(at(2, 0.9), "o5", "ETH/USD", "buy", "trend up vote +0.30"),
        f(at(2, 1), "ETH/USD", "buy", "2", "3000", "6.00"),
        f(at(2, 2), "ETH/USD", "sell", "1", "2950", "2.95", "-50", "exit"),
        f(at(2, 3), "ETH/USD", "sell", "1", "2900", "2.90", "-100", "exit"),
        equity(at(2, 10), "9894"),
        # T4 SOL long: the operator's manual order, no signal
        order(at(2, 10.9), "o8", "SOL/USD", "buy", "operator: manual buy"),
        ("operator", at(2, 10.9), "o8", {"action": "submit_manual", "result": "done", "refusal": None}),
        f(at(2, 11), "SOL/USD", "buy", "10", "100", "1.00"),
        f(at(2, 12), "SOL/USD", "sell", "10", "100", "1.00", "0", "stop"),
        equity(at(2, 20), "9996"),
        # T5 ETH long: a limit entry p10 timed out; its market fallback o10 filled
        signal(at(3, 0.5), "ETH/USD", "buy", "ready", f"trend up vote +0.20 [...] {TAG_T5}"),
        order(at(3, 0.5), "p10", "ETH/USD", "buy", f"trend up vote +0.20 [...] {TAG_T5}", kind="limit"),
        order(at(3, 0.9), "o10", "ETH/USD", "buy", "limit timeout: market fallback", parent="p10"),
        f(at(3, 1), "ETH/USD", "buy", "1", "3000", "3.00"),
        f(at(3, 2), "ETH/USD", "sell", "1", "3100", "3.10", "100", "exit"),
        equity(at(3, 12), "10200"),
        equity(at(3, 20), "10059.60"),
    ]


@pytest.fixture
def journal(tmp_path) -> Path:
    return write_journal(tmp_path / "ctx.sqlite", context_rows())


@pytest.fixture
def m(journal):
    return compute(load(journal), ppy=365)


def test_each_trade_carries_its_entry_context(m):
    got = [(t.symbol, t.net, t.strategy, t.readiness, t.volatility, t.trend) for t in m.closed_trades]
    assert got == [
        ("BTC/USD", D("89.90"), "ema_trend", "ready", "high", "up"),
        ("BTC/USD", D("39.65"), "ema_trend", "forming", "high", "down"),
        ("ETH/USD", D("-161.85"), "ema_trend", "ready", "low", "flat"),
        ("SOL/USD", D("-2.00"), "operator", "unknown", "unknown", "unknown"),
        ("ETH/USD", D("93.90"), "ema_trend", "ready", "normal", "up"),  # through its limit parent's signal
    ]


def test_per_readiness_state_to_the_cent(m):
    r = m.per_readiness
    assert list(r) == ["ready", "forming", "not_ready", "unknown"]
    ready = r["ready"]  # +89.90, -161.85, +93.90
    assert (ready["trades"], ready["wins"], ready["losses"]) == (3, 2, 1)
    assert ready["win_rate_pct"] == pytest.approx(200 / 3)
    assert ready["net_pnl"] == D("21.95") and ready["expectancy"] == D("21.95") / 3
    assert ready["avg_win"] == D("91.90") and ready["avg_loss"] == D("-161.85")
    assert ready["profit_factor"] == pytest.approx(183.80 / 161.85, rel=1e-12)
    forming = r["forming"]
    assert (forming["trades"], forming["win_rate_pct"], forming["net_pnl"]) == (1, 100.0, D("39.65"))
    assert forming["profit_factor"] == math.inf and forming["avg_loss"] is None
    # a state in which nothing was traded is listed, with nothing to measure
    none = r["not_ready"]
    assert (none["trades"], none["wins"], none["net_pnl"]) == (0, 0, D(0))
    assert none["win_rate_pct"] is None and none["profit_factor"] is None and none["expectancy"] is None
    assert (r["unknown"]["trades"], r["unknown"]["net_pnl"]) == (1, D("-2.00"))
    assert sum(g["trades"] for g in r.values()) == m.trades["trades"]


def test_per_regime_and_per_strategy_to_the_cent(m):
    vol, trend = m.per_regime["volatility"], m.per_regime["trend"]
    assert list(vol) == ["low", "normal", "high", "unknown"] and list(trend) == ["up", "flat", "down", "unknown"]
    assert {k: (v["trades"], v["net_pnl"]) for k, v in vol.items()} == {
        "low": (1, D("-161.85")), "normal": (1, D("93.90")), "high": (2, D("129.55")), "unknown": (1, D("-2.00"))}
    assert {k: (v["trades"], v["net_pnl"]) for k, v in trend.items()} == {
        "up": (2, D("183.80")), "flat": (1, D("-161.85")), "down": (1, D("39.65")), "unknown": (1, D("-2.00"))}
    assert vol["high"]["win_rate_pct"] == 100.0 and vol["low"]["win_rate_pct"] == 0.0
    assert vol["low"]["profit_factor"] == 0.0 and trend["up"]["profit_factor"] == math.inf
    s = m.per_strategy
    assert list(s) == ["ema_trend", "operator"]
    assert (s["ema_trend"]["trades"], s["ema_trend"]["net_pnl"]) == (4, D("61.60"))
    assert (s["operator"]["trades"], s["operator"]["win_rate_pct"]) == (1, 0.0)


def test_no_trades_lists_every_state_empty(tmp_path):
    m = compute(load(write_journal(tmp_path / "e.sqlite", [session(at(1, 0)), equity(at(1, 9), "10000")])))
    assert list(m.per_readiness) == ["ready", "forming", "not_ready"]  # no "unknown": nothing is unknown
    assert all(g["trades"] == 0 and g["win_rate_pct"] is None for g in m.per_readiness.values())
    assert list(m.per_regime["volatility"]) == ["low", "normal", "high"]
    assert list(m.per_regime["trend"]) == ["up", "flat", "down"] and m.per_strategy == {}
    d = m.as_dict()
    assert d["per_readiness"]["ready"] == {"trades": 0, "wins": 0, "losses": 0, "win_rate_pct": None, "avg_win": None,
                                          "avg_loss": None, "net_pnl": "0", "fees": "0", "profit_factor": None,
                                          "expectancy": None, "largest_loss": "0"}


def test_a_journal_from_before_regimes_reads_unknown(tmp_path):
    """Fills only (an old journal, or a strategy that records nothing): every trade is unknown."""
    f = Fills()
    rows = [session(at(1, 0)), f(at(1, 1), "BTC/USD", "buy", "1", "100", "0.10"),
            f(at(1, 2), "BTC/USD", "sell", "1", "110", "0.11", "10", "exit")]
    m = compute(load(write_journal(tmp_path / "old.sqlite", rows)))
    assert m.per_readiness["unknown"]["trades"] == 1 and m.per_readiness["ready"]["trades"] == 0
    assert m.per_regime["volatility"]["unknown"]["net_pnl"] == D("9.79") and m.per_strategy["unknown"]["trades"] == 1


def test_windowed_metrics_break_down_only_the_window(journal):
    """A daily report's breakdown counts the trades that closed that day."""
    data = load(journal)
    m = compute(data, since=at(3, 0), until=at(4, 0))
    assert m.per_readiness["ready"]["trades"] == 1 and m.per_readiness["forming"]["trades"] == 0
    assert m.per_regime["volatility"]["normal"]["net_pnl"] == D("93.90")
    assert len(rebuild_trades(data.kind("fill"))) == 5


# -- the report ------------------------------------------------------------------------------------
def _profile(tmp_path: Path, journal: Path) -> Path:
    p = tmp_path / "ctx.yaml"
    p.write_text(f"name: ctx\njournal: {{path: {journal}}}\nlogging: {{path: {tmp_path / 'ctx.log'}}}\n")
    return p


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, cwd=REPO, env=cli_env(tmp_path / "home"),
                          timeout=120)


def test_report_shows_breakdowns_as_tables_json_and_html(tmp_path, journal):
    prof = _profile(tmp_path, journal)
    page = tmp_path / "r.html"
    res = _run(tmp_path, "report", "stage", "--profile", str(prof), "--json", "--html", str(page), "--resamples", "50")
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    met = rep["metrics"]
    assert met["per_readiness"]["forming"]["net_pnl"] == "39.65" and met["per_readiness"]["not_ready"]["trades"] == 0
    assert met["per_regime"]["trend"]["up"]["profit_factor"] == "inf"
    assert met["per_strategy"]["operator"]["net_pnl"] == "-2.00"
    assert rep["readiness"]["metrics"]["per_regime"]["volatility"]["high"]["trades"] == 2
    assert [(t["readiness"], t["volatility"], t["trend"]) for t in rep["trades"]][1] == ("forming", "high", "down")
    html = page.read_text()
    for section in ("By strategy", "By readiness at entry", "By market regime at entry: volatility",
                    "By market regime at entry: trend", "Net P&amp;L by market regime at entry"):
        assert section in html, section
    assert '<td class="l">not_ready</td><td class="">0</td><td class="">n/a</td>' in html

    res = _run(tmp_path, "report", "stage", "--profile", str(prof), "--resamples", "50")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "by strategy readiness at entry" in out and "by market regime at entry" in out
    forming = next(line for line in out.splitlines() if "│ forming" in line)
    assert forming.split("│")[2].strip() == "1" and "39.65" in forming and "100.00" in forming
    assert next(line for line in out.splitlines() if "│ vol high" in line).split("│")[2].strip() == "2"
    assert next(line for line in out.splitlines() if "│ not_ready" in line).split("│")[3].strip() == "n/a"
