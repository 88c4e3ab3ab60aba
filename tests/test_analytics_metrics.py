"""Metrics from the journal: hand-worked trades to the cent, edge cases, and the return/risk
statistics checked against empyrical (a reference implementation) and the textbook formulas."""
from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from engine.analytics.journal_data import load
from engine.analytics.metrics import compute, daily_returns, drawdown, equity_curve, sharpe, sortino
from engine.analytics.trades import rebuild_trades
from test_analytics_helpers import Fills, at, equity, hand_worked_rows, session, write_journal

D = Decimal


@pytest.fixture
def hand(tmp_path):
    return compute(load(write_journal(tmp_path / "h.sqlite", hand_worked_rows())), ppy=365)


def test_round_trips_are_rebuilt_from_fills_with_net_after_fees(tmp_path):
    data = load(write_journal(tmp_path / "h.sqlite", hand_worked_rows()))
    trades = rebuild_trades(data.kind("fill"))
    assert [(t.symbol, t.direction, t.net, t.fills) for t in trades] == [
        ("BTC/USD", "long", D("89.90"), 2), ("BTC/USD", "short", D("39.65"), 2),
        ("ETH/USD", "long", D("-161.85"), 3), ("SOL/USD", "long", D("-2.00"), 2), ("ETH/USD", "long", D("93.90"), 2)]
    assert all(t.status == "closed" for t in trades)


def test_trade_statistics_to_the_cent(hand):
    t = hand.trades
    assert (t["trades"], t["wins"], t["losses"], t["flat"]) == (5, 3, 2, 0)
    assert t["win_rate_pct"] == 60.0
    assert t["avg_win"].quantize(D("0.01")) == D("74.48")  # 223.45 / 3
    assert t["avg_loss"] == D("-81.925")  # -163.85 / 2, exactly
    assert (t["gross_profit"], t["gross_loss"]) == (D("223.45"), D("-163.85"))
    assert t["profit_factor"] == pytest.approx(223.45 / 163.85, rel=1e-12)
    assert t["expectancy"] == D("11.92")  # 59.60 / 5
    assert (t["realized_before_fees"], t["fees"], t["net_pnl"]) == (D("100"), D("40.40"), D("59.60"))
    assert t["fee_drag_pct"] == pytest.approx(40.4)
    assert (t["largest_loss"], t["largest_win"]) == (D("-161.85"), D("93.90"))
    assert t["largest_loss_pct_of_capital"] == pytest.approx(1.6185)
    assert (t["longest_win_streak"], t["longest_loss_streak"]) == (2, 2)


def test_per_symbol_breakdown(hand):
    s = hand.per_symbol
    assert list(s) == ["BTC/USD", "ETH/USD", "SOL/USD"]
    assert (s["BTC/USD"]["trades"], s["BTC/USD"]["net_pnl"], s["BTC/USD"]["profit_factor"]) == (2, D("129.55"), math.inf)
    assert s["ETH/USD"]["net_pnl"] == D("-67.95")
    assert s["ETH/USD"]["profit_factor"] == pytest.approx(93.90 / 161.85)
    assert (s["SOL/USD"]["win_rate_pct"], s["SOL/USD"]["profit_factor"]) == (0.0, 0.0)


def test_returns_and_drawdown_hand_worked(hand):
    r, d = hand.returns, hand.drawdown
    assert r["final_equity"] == D("10059.60") and r["total_return_pct"] == pytest.approx(0.596)
    assert [day for day, _ in r["daily_returns"]] == ["2026-01-05", "2026-01-06", "2026-01-07"]
    got = [x for _, x in r["daily_returns"]]
    assert got == pytest.approx([0.0098, -1 / 99, 63.6 / 9996], rel=1e-12)
    assert r["elapsed_days"] == pytest.approx(59 / 24)
    assert r["annualized_return_pct"] == pytest.approx((1.00596 ** (365 / 3) - 1) * 100, rel=1e-9)
    assert d["max_drawdown_pct"] == pytest.approx(3.0) and d["max_drawdown_usd"] == D("306")
    assert (d["peak_at"], d["trough_at"], d["recovered_at"]) == (at(1, 12), at(2, 10), at(3, 12))
    assert d["max_drawdown_duration_s"] == 48 * 3600 and d["recovery_s"] == 26 * 3600
    assert d["longest_underwater_s"] == 48 * 3600


def test_sharpe_sortino_by_the_textbook_formula(hand):
    r = np.array([x for _, x in hand.returns["daily_returns"]])
    mean = r.sum() / len(r)
    sd = math.sqrt(((r - mean) ** 2).sum() / (len(r) - 1))
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))  # over all days, target 0
    assert hand.returns["sharpe"] == pytest.approx(mean / sd * math.sqrt(365), rel=1e-12)
    assert hand.returns["sortino"] == pytest.approx(mean / downside * math.sqrt(365), rel=1e-12)
    assert sharpe(r, 252) == pytest.approx(mean / sd * math.sqrt(252), rel=1e-12)


def test_against_empyrical_reference_implementation(hand):
    empyrical = pytest.importorskip("empyrical", reason="empyrical-reloaded (dev extra) is the reference")
    rng = np.random.default_rng(4)
    for r in (np.array([x for _, x in hand.returns["daily_returns"]]), rng.normal(0.001, 0.02, 250),
              rng.normal(-0.002, 0.01, 40)):
        for ppy in (365, 252):
            assert sharpe(r, ppy) == pytest.approx(empyrical.sharpe_ratio(r, annualization=ppy), rel=1e-9)
            assert sortino(r, ppy) == pytest.approx(empyrical.sortino_ratio(r, annualization=ppy), rel=1e-9)
    assert hand.returns["annualized_return_pct"] / 100 == pytest.approx(
        empyrical.annual_return(np.array([x for _, x in hand.returns["daily_returns"]]), annualization=365), rel=1e-9)
    # max drawdown: empyrical on the point-to-point returns of the same curve, from the capital
    values = [10000.0] + [float(p.value) for p in hand.curve]
    steps = np.diff(values) / np.array(values[:-1])
    assert -hand.drawdown["max_drawdown_pct"] / 100 == pytest.approx(empyrical.max_drawdown(steps), rel=1e-12)
    walk = 10000 * np.cumprod(1 + rng.normal(0, 0.01, 500))
    from engine.analytics.metrics import Point

    pts = [Point(at(1, i / 10), 0, D(str(float(v)))) for i, v in enumerate(walk)]
    steps = np.diff(np.concatenate([[10000.0], walk])) / np.concatenate([[10000.0], walk[:-1]])
    assert -drawdown(pts, D(10000))["max_drawdown_pct"] / 100 == pytest.approx(empyrical.max_drawdown(steps), rel=1e-9)


def test_no_trades_no_equity(tmp_path):
    m = compute(load(write_journal(tmp_path / "e.sqlite", [session(at(1, 0))])))
    t = m.trades
    assert t["trades"] == 0 and t["win_rate_pct"] is None and t["profit_factor"] is None
    assert t["expectancy"] is None and t["avg_win"] is None and t["fee_drag_pct"] is None
    assert t["largest_loss"] == 0 and t["largest_loss_pct_of_capital"] == 0
    assert m.returns["sharpe"] is None and m.returns["total_return_pct"] == 0 and m.returns["days"] == 0
    assert m.drawdown["max_drawdown_pct"] == 0 and m.execution["fill_rate_pct"] is None
    assert m.as_dict()["trades"]["profit_factor"] is None


def test_no_losses_one_day(tmp_path):
    f = Fills()
    rows = [session(at(1, 0)), equity(at(1, 1), "10000"),
            f(at(1, 2), "BTC/USD", "buy", "1", "100", "0.10"), f(at(1, 3), "BTC/USD", "sell", "1", "110", "0.11", "10"),
            equity(at(1, 4), "10009.79")]
    m = compute(load(write_journal(tmp_path / "w.sqlite", rows)))
    t = m.trades
    assert t["profit_factor"] == math.inf and m.as_dict()["trades"]["profit_factor"] == "inf"
    assert t["avg_loss"] is None and t["largest_loss"] == 0 and t["win_rate_pct"] == 100.0
    assert t["fee_drag_pct"] == pytest.approx(2.1)
    assert m.returns["days"] == 1 and m.returns["sharpe"] is None and m.returns["sortino"] is None
    assert m.drawdown["max_drawdown_pct"] == 0


def test_all_losing(tmp_path):
    f = Fills()
    rows = [session(at(1, 0))]
    for i in range(4):
        rows += [f(at(1 + i, 1), "ETH/USD", "buy", "1", "100", "0.10"),
                 f(at(1 + i, 2), "ETH/USD", "sell", "1", "99", "0.10", "-1", "stop"),
                 equity(at(1 + i, 3), str(10000 - D("1.2") * (i + 1)))]
    m = compute(load(write_journal(tmp_path / "l.sqlite", rows)))
    t = m.trades
    assert (t["trades"], t["wins"], t["win_rate_pct"], t["profit_factor"]) == (4, 0, 0.0, 0.0)
    assert t["net_pnl"] == D("-4.80") and t["fee_drag_pct"] is None and t["longest_loss_streak"] == 4
    assert t["avg_win"] is None and t["largest_win"] == 0
    assert m.returns["sortino"] < 0 and m.drawdown["max_drawdown_pct"] == pytest.approx(0.048)
    assert m.drawdown["recovered"] is False


def test_open_and_abandoned_trades_are_not_closed_trades(tmp_path):
    f = Fills()
    rows = [session(at(1, 0)), f(at(1, 1), "BTC/USD", "buy", "1", "100", "0.1")]
    f.pos["BTC/USD"] = D(0)  # the engine restarted flat: the next fill opens from zero again
    rows += [session(at(1, 2), n=2), f(at(1, 3), "BTC/USD", "buy", "1", "100", "0.1")]
    m = compute(load(write_journal(tmp_path / "o.sqlite", rows)))
    assert m.trades["trades"] == 0 and m.open_trades == 1 and m.abandoned_trades == 1


def test_sessions_that_restart_afresh_are_chained(tmp_path):
    # two simulated sessions, each starting over at 10,000 and at the same simulated time
    rows = [session(at(1, 0)), equity(at(1, 1), "10000"), equity(at(1, 5), "10100"),
            session(at(1, 0), n=2), equity(at(1, 1), "10000"), equity(at(1, 5), "9950")]
    data = load(write_journal(tmp_path / "s.sqlite", rows))
    assert [r.timeline for r in data.kind("equity")] == [0, 0, 1, 1]
    curve = equity_curve(data, D(10000))
    assert [p.value for p in curve] == [D(10000), D(10100), D(10100), D("10049.5")]
    m = compute(data)
    assert m.returns["total_return_pct"] == pytest.approx(0.495)
    assert m.returns["elapsed_days"] == pytest.approx(8 / 24)  # 4 h + 4 h, not overlapping time
    assert len(daily_returns(curve, D(10000))) == 2  # one venue day per timeline


async def test_journal_trades_match_the_engines_own_closed_trades(make_profile, open_engine):
    from conftest import LOOSE_RISK

    eng = await open_engine(make_profile("m", risk=LOOSE_RISK), seed=3)
    await eng.run(duration=3 * 3600)
    expected = list(eng.portfolio.closed_trades)
    final = eng.portfolio.equity
    await eng.close()
    m = compute(load(eng.journal.path))
    assert len(expected) >= 3
    assert [t.net for t in m.closed_trades] == expected
    assert m.returns["final_equity"] == final  # the session_end row's valuation, exactly
    assert m.execution["entries_sent"] >= len(expected) and m.execution["slippage_measured"] >= len(expected)
    assert all(t.stop_covered for t in m.closed_trades)
    assert all(t.reason for t in m.closed_trades)
