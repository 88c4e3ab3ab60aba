"""What the readiness criteria measure: time the engine ran (not the gaps between its sessions), the
strategy's own trades (not the operator's manual ones) and its open losses, the stage's capital
(not idle cash in the account), a drill made by the profile judged, and the stage promote judges."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_analytics_helpers import T0, Fills, equity, session, write_journal
from test_stages import profile_file

from console.cli import main
from engine.analytics.journal_data import load
from engine.analytics.readiness import evaluate, summary
from engine.config_loader import load_profile

# Criteria every journal below passes but for the one criterion a test looks at.
LOOSE = {"min_trades": 0, "min_days": 0, "min_return_pct": -100, "min_sharpe": -100, "min_profit_factor": 0,
         "max_drawdown_pct": 100, "max_fee_drag_pct": 100, "win_rate_min_pct": 0, "win_rate_max_pct": 100,
         "max_single_loss_pct": 5, "no_critical_incident": False, "attestations": [], "drill_max_age_days": None}




def paper(tmp: Path, stage: str = "paper", **crit) -> Path:
    return profile_file(tmp, "pp", {"mode": "paper", "stage": stage,
                                    "readiness": {"stages": {"paper": {**LOOSE, **crit},
                                                             "testnet": {**LOOSE, **crit}}}})


def live(tmp: Path, stage: str = "micro", **crit) -> Path:
    return profile_file(tmp, "lv", {"mode": "live", "stage": stage, "venue": {"name": "binance"},
                                    "symbols": ["BTC/USDT", "ETH/USDT"], "sizing": {"min_order_usd": 5, "max_order_usd": 10},
                                    "readiness": {"stages": {s: {**LOOSE, **crit} for s in ("micro", "small")}}})


def criterion(rep: dict, name: str) -> dict:
    return next(c for c in rep["criteria"] if c["name"] == name)


def judge(profile_path: Path, stage: str, now: datetime | None = None) -> dict:
    prof = load_profile(profile_path)
    return evaluate(prof, load(prof.journal.path), stage, resamples=50, now=now)


def hourly(start: datetime, hours: float, eq: str = "10000") -> list[tuple]:
    return [equity(start + timedelta(hours=h), eq) for h in range(int(hours) + 1)]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


# -- finding 3: time trading is the time the engine ran ---------------------------------------------
def two_sessions(first_days: float, second_days: float, gap_days: float) -> list[tuple]:
    second = T0 + timedelta(days=first_days + gap_days)
    return [session(T0), *hourly(T0, first_days * 24),
            ("session_end", T0 + timedelta(days=first_days), None, {"equity": Decimal(10000)}),
            session(second, n=2), ("recovery", second, None, {"checkpoint": True}),
            *hourly(second, second_days * 24)]


def test_days_add_no_time_across_a_session_boundary(tmp_path):
    p = paper(tmp_path, min_days=14)
    # Exactly 14 days of engine time (7 + 7) around a 10-day stop: passes at the boundary.
    write_journal(tmp_path / "pp.sqlite", two_sessions(7, 7, 10))
    days = criterion(judge(p, "paper"), "days")
    assert days["measured"] == 14.0 and days["passed"] is True
    assert "over 2 session(s)" in days["detail"]


def test_the_gap_between_sessions_does_not_count(tmp_path):
    p = paper(tmp_path, min_days=14)
    # 1 + 1 days of trading 13 days apart (the audit's case): 2 days, not 15.
    write_journal(tmp_path / "pp.sqlite", two_sessions(1, 1, 12))
    days = criterion(judge(p, "paper"), "days")
    assert days["measured"] == 2.0 and days["passed"] is False
    assert days["detail"].startswith("2.00 days over 2 session(s)")


def test_half_a_day_short_of_min_days_fails(tmp_path):
    p = paper(tmp_path, min_days=14)
    write_journal(tmp_path / "pp.sqlite", two_sessions(7, 6.5, 3))
    days = criterion(judge(p, "paper"), "days")
    assert days["measured"] == 13.5 and days["passed"] is False


# -- finding 6: manual trades and open losses -------------------------------------------------------
def trades(f: Fills, start: datetime, pnls: list[str]) -> list[tuple]:
    rows = []
    for i, pnl in enumerate(pnls):
        t = start + timedelta(hours=2 * i)
        rows.append(f(t, "BTC/USDT", "buy", "0.01", "50000", "0"))
        rows.append(f(t + timedelta(hours=1), "BTC/USDT", "sell", "0.01", "50000", "0", realized=pnl, purpose="exit"))
    return rows


def test_manual_trades_are_left_out_of_the_trade_criteria(tmp_path):
    p = paper(tmp_path, min_trades=6)
    f = Fills()
    strategy = trades(f, T0, ["20"] * 6)
    manual = trades(f, T0 + timedelta(days=1), ["-900"] + ["20"] * 3)  # the operator's, opened by hand
    entries = [r for r in manual if r[3]["side"] == "buy"]
    ops = [("operator", r[1], r[2], {"action": "submit_manual", "symbol": r[3]["symbol"]}) for r in entries]
    write_journal(tmp_path / "pp.sqlite", [session(T0), *hourly(T0, 48), *strategy, *manual, *ops])
    rep = judge(p, "paper")
    n = criterion(rep, "trades")
    assert n["measured"] == 6 and n["passed"] is True  # exactly min_trades of the strategy's
    assert n["detail"] == "6 strategy trade(s); 4 manual trade(s) left out"
    # The operator's -900 (9 % of 10,000) is not the strategy's largest loss; nor its win rate.
    assert criterion(rep, "single_loss")["measured"] == 0.0 and criterion(rep, "single_loss")["passed"]
    assert criterion(rep, "win_rate")["measured"] == 100.0
    p7 = paper(tmp_path, min_trades=7)
    assert criterion(judge(p7, "paper"), "trades")["passed"] is False


@pytest.mark.parametrize("unrealized, passed", [("-600", False), ("-500", True)])
def test_an_open_trade_losing_beyond_the_limit_fails_single_loss(tmp_path, unrealized, passed):
    p = paper(tmp_path)  # max_single_loss_pct 5 of 10,000: 500
    f = Fills()
    t = T0 + timedelta(days=1)
    open_row = f(t, "ETH/USDT", "buy", "2", "3000", "0")
    mark = ("equity", t + timedelta(hours=1), None,
            {"equity": Decimal(10000) + Decimal(unrealized), "cash": Decimal(4000), "realized": Decimal(0),
             "unrealized": Decimal(unrealized), "fees": Decimal(0), "positions": 1})
    write_journal(tmp_path / "pp.sqlite", [session(T0), *hourly(T0, 20), *trades(f, T0, ["20"] * 3),
                                           open_row, mark])
    loss = criterion(judge(p, "paper"), "single_loss")
    assert loss["measured"] == pytest.approx(-float(unrealized) / 100) and loss["passed"] is passed
    assert f"1 open trade(s) at {Decimal(unrealized):.2f}" in loss["detail"]
    assert "marked at the equity row of 2026-01-06 01:00" in loss["detail"]


# -- finding 7: the % criteria are of the stage's capital -------------------------------------------
def micro_rows(cash: str, pnls: list[str]) -> list[tuple]:
    f = Fills()
    eq = Decimal(cash)
    rows = [("stage", T0, "micro", {"from": "testnet", "to": "micro", "direction": "promote", "venue": "binance"}),
            session(T0, cash), equity(T0, cash)]
    for i, pnl in enumerate(pnls):
        t = T0 + timedelta(hours=2 * i + 1)
        rows += [f(t, "BTC/USDT", "buy", "0.0002", "50000", "0"),
                 f(t + timedelta(hours=1), "BTC/USDT", "sell", "0.0002", "50000", "0", realized=pnl, purpose="exit")]
        eq += Decimal(pnl)
        rows.append(equity(t + timedelta(hours=1), str(eq)))
    return rows


def test_drawdown_and_single_loss_are_of_the_micro_cap_not_the_account(tmp_path):
    p = live(tmp_path, max_drawdown_pct=10, max_single_loss_pct=5)
    # A 20,000 account at micro (cap 500): eight losses of 50 are 400 down, 80 % of what micro trades.
    write_journal(tmp_path / "lv.sqlite", micro_rows("20000", ["-50"] * 8 + ["25"]))
    rep = judge(p, "micro")
    dd, loss, ret = (criterion(rep, n) for n in ("max_drawdown", "single_loss", "return"))
    assert dd["measured"] == pytest.approx(80.0) and dd["passed"] is False
    assert loss["measured"] == pytest.approx(10.0) and loss["passed"] is False
    assert ret["measured"] == pytest.approx(-75.0)  # -375 of 500
    for c in (dd, loss, ret):
        assert "of 500, stage micro's max capital (account started with 20000)" in c["detail"]


def test_at_the_cap_boundary_the_stage_capital_is_used_as_is(tmp_path):
    # Exactly 5 % of the 500 cap (25) passes single_loss; 49.99 of drawdown is under 10 %.
    p = live(tmp_path, max_drawdown_pct=10, max_single_loss_pct=5)
    write_journal(tmp_path / "lv.sqlite", micro_rows("20000", ["-25", "-24.99", "100"]))
    rep = judge(p, "micro")
    assert criterion(rep, "single_loss")["measured"] == pytest.approx(5.0) and criterion(rep, "single_loss")["passed"]
    assert criterion(rep, "max_drawdown")["measured"] == pytest.approx(9.998) and criterion(rep, "max_drawdown")["passed"]


def test_an_account_smaller_than_the_cap_is_its_own_base(tmp_path):
    p = live(tmp_path, max_single_loss_pct=5)
    write_journal(tmp_path / "lv.sqlite", micro_rows("400", ["-30", "10"]))  # 30 of 400: 7.5 %
    loss = criterion(judge(p, "micro"), "single_loss")
    assert loss["measured"] == pytest.approx(7.5) and loss["passed"] is False
    assert "of the starting capital 400 (within stage micro's max capital 500)" in loss["detail"]


# -- finding 4: the drill of the profile judged -----------------------------------------------------
def drill_row(ts: datetime, profile: str, mode: str) -> tuple:
    return ("drill", ts, "pass", {"profile": profile, "mode": mode, "passed": True, "steps": []})


def test_a_drill_of_another_profile_or_mode_does_not_count(tmp_path):
    p = live(tmp_path, drill_max_age_days=7)
    now = datetime.now(timezone.utc)
    write_journal(tmp_path / "lv.sqlite", [*micro_rows("20000", ["10"]), drill_row(now, "drill-helper", "paper"),
                                           drill_row(now, "lv", "paper")])
    d = criterion(judge(p, "micro", now=now), "drill")
    assert d["passed"] is False and d["measured"] is None
    assert "none journaled by profile 'lv' (live): run tradeconsole drill --simulated --profile" in d["detail"]
    assert "2 drill row(s) of another profile or mode do not count" in d["detail"]
    write_journal(tmp_path / "lv.sqlite", [drill_row(now - timedelta(days=7), "lv", "live")])
    d = criterion(judge(p, "micro", now=now), "drill")
    assert d["passed"] is True and d["measured"] == 7.0  # exactly drill_max_age_days old


def test_a_live_profile_drills_on_the_simulated_market_and_meets_the_criterion(tmp_path, capsys, monkeypatch):
    for var in ("BINANCE_LIVE_API_KEY", "BINANCE_LIVE_API_SECRET"):
        monkeypatch.delenv(var, raising=False)
    p = live(tmp_path, drill_max_age_days=7)
    write_journal(tmp_path / "lv.sqlite", micro_rows("20000", ["10"]))
    code, out, err = cli(capsys, "drill", "--profile", str(p), "--seed", "3")
    assert code == 2 and err.count("\n") == 1
    assert "refused on a live profile without --simulated" in err and "drill --simulated --profile" in err
    code, out, err = cli(capsys, "drill", "--profile", str(p), "--seed", "3", "--simulated", "--json")
    res = json.loads(out)
    assert code == 0, res["steps"]
    assert (res["profile"], res["mode"], res["broker"], res["market"], res["passed"]) == \
        ("lv", "live", "paper", "simulated", True)
    rows = load(tmp_path / "lv.sqlite").kind("drill")
    assert [(r.data["profile"], r.data["mode"], r.data["market"]) for r in rows] == [("lv", "live", "simulated")]
    d = criterion(judge(p, "micro"), "drill")
    assert d["passed"] is True and "on the paper broker and a simulated market" in d["detail"]
    # It ran the live profile's own configuration (its symbols, its micro caps) on the paper broker.
    (started,) = load(Path(res["journal"]), ("session",)).rows
    cfg = started.data["config"]
    assert started.data["mode"] == "paper" and cfg["venue"]["name"] == "paper" and cfg["feed"]["kind"] == "sim"
    assert cfg["symbols"] == ["BTC/USDT", "ETH/USDT"] and cfg["stage"] == "micro"
    assert load(Path(res["journal"]), ("venue",)).rows == []  # no venue was ever opened


# -- finding 9: the stage judged by default is the one promote judges -----------------------------
def test_a_paper_profile_is_judged_at_paper_everywhere(tmp_path, capsys):
    # Rehearsing testnet caps (`stage: testnet`): promote judges it at paper.
    p = paper(tmp_path, stage="testnet")
    write_journal(tmp_path / "pp.sqlite", [session(T0), *hourly(T0, 48)])
    code, out, err = cli(capsys, "readiness", "--profile", str(p), "--json", "--resamples", "50")
    assert code == 1 and json.loads(out)["stage"] == "paper"
    code, out, err = cli(capsys, "report", "stage", "--profile", str(p), "--json", "--resamples", "50")
    rep = json.loads(out)
    assert code == 0 and rep["stage"] == "paper" and rep["readiness"]["stage"] == "paper"
    prof = load_profile(p)
    assert summary(prof, tmp_path / "pp.sqlite", resamples=50)["stage"] == "paper"
    code, out, err = cli(capsys, "readiness", "--profile", str(p), "--stage", "testnet", "--json", "--resamples", "50")
    assert json.loads(out)["stage"] == "testnet"  # still there when asked for


def test_a_live_profile_is_judged_at_its_grant(tmp_path, capsys):
    p = live(tmp_path, stage="small")  # asks for small; the journal grants micro
    write_journal(tmp_path / "lv.sqlite", micro_rows("20000", ["10"]))
    code, out, err = cli(capsys, "readiness", "--profile", str(p), "--json", "--resamples", "50")
    assert json.loads(out)["stage"] == "micro", err


def test_the_console_line_names_the_stage_promote_judges(tmp_path):
    from console.widgets.readiness import ReadinessLine

    prof = load_profile(profile_file(tmp_path, "pp", {"mode": "paper", "stage": "testnet"}))
    line = ReadinessLine(SimpleNamespace(profile=prof, journal=None))
    assert line.stage == "paper"
    line.verdict = {"stage": "paper", "verdict": "GO", "passed": 1, "total": 1}
    assert line.stage == "paper"
