"""What analytics and the performance screen say after restarts on the same journal, against
what the journal itself holds: the equity rows (cash plus positions at their marks) and the
round trips of its fill rows.

Two defects this pins: the equity curve took a restart with nothing closed and no fee yet for a
fresh account and counted the open positions' gains again (readiness passed "return >= 1 %" on a
losing account), and the performance screen counted only the trade tail a restart keeps.
"""
from __future__ import annotations

import json
import sqlite3
from decimal import Decimal

import pytest

from conftest import ANY_READINESS, build_profile
from engine.analytics import readiness
from engine.analytics.journal_data import load
from engine.analytics.metrics import compute, equity_curve
from engine.engine import Engine
from engine.models import Side, Signal
from engine.strategy.base import Strategy

D = Decimal
CASH = D(10000)
SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]
OPEN_GATE = {
    **ANY_READINESS, "min_edge": 0, "min_confidence": 0, "min_seconds_between_trades": 0,
    "max_trades_per_hour": 1000, "max_trades_per_day": 10000, "max_consecutive_losses": 1000,
    "max_new_positions_per_day": 10000, "max_new_positions_per_week": 100000, "daily_loss_pct": 50,
    "weekly_loss_pct": 50, "drawdown_pause_pct": 60, "drawdown_stop_pct": 80, "max_position_pct": 40,
    "cash_reserve_pct": 0, "stop_loss_max_pct": 60, "risk_per_trade_pct": 50,
    "max_single_trade_loss_usd": 100000, "max_symbol_exposure_pct": 100, "max_group_exposure_pct": 100,
    "max_total_capital_usd": 100000, "portfolio_day_stop_pct": 50, "portfolio_total_pause_pct": 50,
}
ZERO_FEES = {"starting_cash": 10000, "maker_fee_bps": 0, "taker_fee_bps": 0, "slippage_bps": 0}
FEES = {"starting_cash": 10000, "maker_fee_bps": 10, "taker_fee_bps": 20, "slippage_bps": 2}


class BuyAndHold(Strategy):
    """Buys each symbol once, in the first session, and never sells."""
    name = "buyhold"

    def __init__(self, buy: bool) -> None:
        self.buy, self.done = buy, set()

    def on_quote(self, q, pos):
        if self.buy and pos == 0 and q.symbol not in self.done:
            self.done.add(q.symbol)
            return Signal(q.symbol, Side.BUY, 1.0, 1.0, (q.ask * D("0.5")).quantize(D("0.01")), q.ask, "buy",
                          self.name, q.ts)
        return None


class Churn(Strategy):
    """Buys when flat, sells after `hold` quotes: many round trips, some open at each close."""
    name = "churn"

    def __init__(self, hold: int = 20) -> None:
        self.hold, self.n = hold, {}

    def on_quote(self, q, pos):
        if pos == 0:
            self.n[q.symbol] = 0
            return Signal(q.symbol, Side.BUY, 1.0, 1.0, (q.ask * D("0.95")).quantize(D("0.01")), q.ask, "in",
                          self.name, q.ts)
        self.n[q.symbol] = self.n.get(q.symbol, 0) + 1
        if self.n[q.symbol] >= self.hold:
            self.n[q.symbol] = 0
            return Signal(q.symbol, Side.SELL, 1.0, 1.0, D(0), q.bid, "out", self.name, q.ts)
        return None


def profile(tmp_path, paper, usd):
    return build_profile(tmp_path, "r", symbols=SYMBOLS, paper=paper, risk=OPEN_GATE, sizing={"max_order_usd": usd},
                         orders={"entry_type": "market"}, strategy={"timeframes": [10], "warmup_bars": 1})


def rows(path, *kinds):
    db = sqlite3.connect(path)
    try:
        return [(k, json.loads(d)) for k, d in db.execute(
            f"SELECT kind, data FROM events WHERE kind IN ({','.join('?' * len(kinds))}) ORDER BY seq", kinds)]
    finally:
        db.close()


async def sessions(prof, strategies, seconds):
    """One engine per strategy factory, each on the same journal; what each held at its close."""
    closing = []
    for i, make in enumerate(strategies):
        eng = await Engine.open(prof, seed=11)
        try:
            eng.preroll()
            eng.strategy = make(i)
            await eng.run(duration=seconds)
            p = eng.portfolio
            closing.append((p.equity, p.cash + sum((x.quantity * x.last_price for x in p.positions.values()), D(0)),
                            len(p.positions), eng.snapshot().performance, len(p.closed_trades)))
        finally:
            await eng.close()
    return closing


def assert_curve_is_the_journaled_equity(prof, closing):
    path = prof.journal.path
    journaled = [D(d["equity"]) for k, d in rows(path, "equity", "session_end")]
    data = load(path)
    assert [p.value for p in equity_curve(data, CASH)] == journaled
    final = journaled[-1]
    assert final == closing[-1][0] == closing[-1][1]  # the last close's cash + positions at their marks
    m = compute(data, capital=CASH)
    assert m.returns["final_equity"] == final
    rep = readiness.evaluate(prof, data, "paper", resamples=50)
    ret = next(c for c in rep["criteria"] if c["name"] == "return")
    assert ret["measured"] == pytest.approx(float((final / CASH - 1) * 100), abs=1e-9)


async def test_zero_fee_positions_held_across_restarts_keep_the_curve_on_the_journaled_equity(tmp_path):
    prof = profile(tmp_path, ZERO_FEES, 3000)
    closing = await sessions(prof, [lambda i: BuyAndHold(i == 0)] * 4, 3600)
    assert all(c[2] == 3 for c in closing)  # held through every restart, nothing closed
    seq = rows(prof.journal.path, "session", "equity")
    after_restart = [seq[i + 1][1] for i, (k, _) in enumerate(seq) if k == "session" and i > 0]
    # The trap: a carried-over account whose first row shows nothing realized and no fee.
    assert after_restart and all(D(d["realized"]) == 0 and D(d["fees"]) == 0 and d["positions"] == 3
                                 for d in after_restart)
    assert_curve_is_the_journaled_equity(prof, closing)


async def test_fee_paying_round_trips_across_restarts_keep_the_curve_on_the_journaled_equity(tmp_path):
    prof = profile(tmp_path, FEES, 500)
    closing = await sessions(prof, [lambda i: Churn()] * 3, 1800)
    assert_curve_is_the_journaled_equity(prof, closing)


def assert_screen_is_the_journal(prof, perf):
    data = load(prof.journal.path)
    t = compute(data, capital=CASH).trades
    assert (perf.trades, perf.wins, perf.losses) == (t["trades"], t["wins"], t["losses"])
    assert perf.net == t["net_pnl"] and perf.gross_profit == t["gross_profit"] and -perf.gross_loss == t["gross_loss"]
    assert (perf.largest_win, perf.largest_loss) == (t["largest_win"], t["largest_loss"])
    assert float(perf.win_rate_pct) == pytest.approx(t["win_rate_pct"], rel=1e-12)
    if t["profit_factor"] is None:
        assert perf.profit_factor is None
    else:
        assert float(perf.profit_factor) == pytest.approx(t["profit_factor"], rel=1e-12)
    rep = readiness.evaluate(prof, data, "paper", resamples=50)
    assert next(c["measured"] for c in rep["criteria"] if c["name"] == "trades") == perf.trades
    target = next(c for c in perf.targets if c.name == "trades")
    assert target.detail.startswith(f"{t['trades']} closed")


async def test_the_performance_screen_counts_every_trade_the_journal_holds_after_three_restarts(tmp_path):
    prof = profile(tmp_path, FEES, 500)
    closing = await sessions(prof, [lambda i: Churn()] * 4, 900)
    perf = closing[-1][3]
    counts = [c[3].trades for c in closing]
    assert counts == sorted(set(counts)) and counts[0] > 50  # every session closed trades
    assert perf.trades > closing[-1][4]  # more than the trade list a restart keeps (a tail of 50)
    assert all(c[2] > 0 for c in closing[:-1])  # round trips open across restarts (entry fees before)
    assert_screen_is_the_journal(prof, perf)
    eng = await Engine.open(prof, seed=11)  # and read back at once, before any trade of its own
    try:
        assert_screen_is_the_journal(prof, eng.snapshot().performance)
    finally:
        await eng.close()


async def test_a_checkpoint_without_trade_totals_is_counted_from_the_journal(tmp_path):
    prof = profile(tmp_path, FEES, 500)
    await sessions(prof, [lambda i: Churn()] * 2, 900)
    db = sqlite3.connect(prof.journal.path)
    seq, data = db.execute("SELECT seq, data FROM events WHERE kind='checkpoint' ORDER BY seq DESC LIMIT 1").fetchone()
    old = {k: v for k, v in json.loads(data).items() if k not in ("trade_totals", "open_trade_pnl", "max_drawdown_shown")}
    db.execute("UPDATE events SET data=? WHERE seq=?", (json.dumps(old), seq))
    db.commit()
    db.close()
    eng = await Engine.open(prof, seed=11)
    try:
        perf = eng.snapshot().performance
        assert perf.trades > 50
        assert_screen_is_the_journal(prof, perf)
    finally:
        await eng.close()
