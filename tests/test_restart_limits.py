"""Limits that count over a day, a week or an hour hold across a restart, exactly as if the process
had run through: a loss breaker tripped today stays tripped until the venue's own day (or ISO week)
boundary, a restart on a later day starts that day from the equity it finds, and the trade
throttles and new-position limits count the entries sent before the restart.

Every test restarts the real engine on the same journal (and the paper venue's own file), with the
venue in New York so the venue's midnight is not UTC's. Losses are booked as cash in both the
engine's books and the venue's, the same amount, so reconciliation finds nothing to differ."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from engine.clock import SimClock
from engine.engine import Engine
from engine.manual import ManualOrderSpec
from engine.models import OrderPurpose, Side, Signal
from engine.risk.breakers import BreakerState
from engine.risk.gate import TradingState
from engine.strategy.base import Strategy

from conftest import ANY_READINESS, build_profile

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD", "LTC/USD"]
OPEN_GATE = {"min_edge": 0, "min_confidence": 0, **ANY_READINESS, "min_seconds_between_trades": 0}
UTC = timezone.utc
MONDAY_10_NY = datetime(2026, 1, 5, 15, tzinfo=UTC)  # 10:00 in New York


class Buyer(Strategy):
    """Asks to buy each of its symbols on every quote while the symbol is flat."""

    name = "buyer"

    def __init__(self, *symbols: str) -> None:
        self.symbols = set(symbols)

    def on_quote(self, quote, position_qty):
        if quote.symbol in self.symbols and position_qty == 0:
            return Signal(quote.symbol, Side.BUY, 1.0, 1.0, (quote.ask * Decimal("0.95")).quantize(Decimal("0.01")),
                          quote.ask, "test", self.name, quote.ts)
        return None


def profile(tmp_path, **risk):
    return build_profile(tmp_path, "limits", symbols=SYMBOLS, venue={"timezone": "America/New_York"},
                         risk={**OPEN_GATE, **risk}, sizing={"max_order_usd": 300},
                         strategy={"timeframes": [10], "warmup_bars": 1})


@pytest.fixture
def start(open_engine):
    """`await start(profile, at, *symbols to buy)`: a restart. The engine before it is closed,
    and a new one opens on the same journal at `at`; the last is closed after the test, whatever
    failed (a journal left open keeps the process alive)."""
    opened: list[Engine] = []

    async def restart(prof, at: datetime, *buy: str) -> Engine:
        if opened:
            await opened[-1].close()
        eng = await open_engine(prof, seed=1, clock=SimClock(at))
        eng.strategy = Buyer(*buy)
        opened.append(eng)
        return eng

    return restart


def book(eng: Engine, usd: str) -> None:
    """Realized P&L stood in for: the same cash in the engine's books and the venue's."""
    eng.portfolio.cash += Decimal(usd)
    eng.broker.cash += Decimal(usd)
    eng.broker._cash_dirty = True


def state(eng: Engine, name: str) -> BreakerState:
    return next(b for b in eng.breakers if b.name == name).state


async def since_start(eng: Engine, kind: str) -> list:
    """This session's rows of `kind` (after its own session row)."""
    (session,) = [r for r in await eng.journal.rows(["session"]) if r.data["session"] == eng.session]
    return await eng.journal.rows([kind], after_seq=session.seq)


async def entries_sent(eng: Engine) -> list:
    return [r for r in await since_start(eng, "order")
            if r.data["purpose"] == "entry" and r.data["status"] == "submitted" and not r.data.get("parent_id")]


async def refusals(eng: Engine) -> list[dict]:
    return [r.data for r in await since_start(eng, "decision")
            if r.data["purpose"] == OrderPurpose.ENTRY.value and not r.data["approved"]]


def check(decision: dict, name: str) -> dict:
    return next(c for c in decision["checks"] if c["name"] == name)


# -- loss breakers -----------------------------------------------------------------------------
async def test_a_daily_loss_trip_holds_through_restarts_the_same_venue_day(tmp_path, start):
    prof = profile(tmp_path)
    eng = await start(prof, MONDAY_10_NY)
    await eng.run(duration=20)
    book(eng, "-250")  # limit: 2 % of the day's 10,000
    await eng.run(duration=20)
    assert state(eng, "daily_loss") is BreakerState.TRIPPED and eng.state is TradingState.REDUCE_ONLY

    # An hour later, still losing $250 today: the trip stands and every entry is refused.
    eng = await start(prof, MONDAY_10_NY + timedelta(hours=1), "BTC/USD")
    assert state(eng, "daily_loss") is BreakerState.TRIPPED and eng.state is TradingState.REDUCE_ONLY
    assert eng.portfolio.day_start_equity == Decimal(10000)
    await eng.run(duration=60)
    assert await entries_sent(eng) == []
    refused = await refusals(eng)
    assert refused and all(d["failed"] == "trading_state" for d in refused)
    assert check(refused[-1], "daily_loss")["passed"] is False
    assert Decimal(check(refused[-1], "daily_loss")["values"]["loss"]) == 250
    book(eng, "150")  # the market gives $150 back: $100 down today, under the limit
    await eng.run(duration=80)
    assert state(eng, "daily_loss") is BreakerState.TRIPPED  # until the venue's next day

    # 23:30 in New York (04:30 UTC the next day): the same venue day, the trip still stands.
    eng = await start(prof, datetime(2026, 1, 6, 4, 30, tzinfo=UTC), "BTC/USD")
    await eng.run(duration=60)
    assert state(eng, "daily_loss") is BreakerState.TRIPPED and eng.state is TradingState.REDUCE_ONLY
    assert eng.portfolio.pnl_today == Decimal(-100)
    assert await entries_sent(eng) == []
    assert {d["failed"] for d in await refusals(eng)} == {"trading_state"}


async def test_a_restart_past_the_venues_midnight_lifts_the_day_and_starts_it_from_the_equity_found(tmp_path, start):
    prof = profile(tmp_path)
    eng = await start(prof, MONDAY_10_NY)
    await eng.run(duration=20)
    book(eng, "500")  # a winning day...
    await eng.run(duration=80)
    book(eng, "-750")  # ...that ends $250 down from its opening 10,000
    await eng.run(duration=80)
    assert state(eng, "daily_loss") is BreakerState.TRIPPED

    # 00:30 in New York on Tuesday: a new venue day, begun while the engine was down.
    eng = await start(prof, datetime(2026, 1, 6, 5, 30, tzinfo=UTC), "BTC/USD")
    p = eng.portfolio
    assert state(eng, "daily_loss") is BreakerState.ARMED and eng.state is TradingState.ACTIVE
    assert p.day_start_equity == Decimal(9750)  # not Monday's opening 10,000
    assert p.week_start_equity == Decimal(10000)  # the same ISO week
    (reset,) = [r for r in await since_start(eng, "breaker") if r.ref == "daily_loss"]
    assert reset.data["reset"] == "day" and reset.data["old"] == "tripped"
    await eng.run(duration=30)
    assert len(await entries_sent(eng)) == 1  # trading again
    # Today's loss measures from there: $150 down is under today's limit (from Monday's
    # opening it would be $400, over it).
    book(eng, "-150")
    await eng.run(duration=30)
    assert abs(p.pnl_today + 150) < 5  # the position's marks move it a little
    assert state(eng, "daily_loss") is not BreakerState.TRIPPED and eng.state is TradingState.ACTIVE


async def test_a_weekly_loss_trip_holds_until_the_venues_next_iso_week(tmp_path, start):
    prof = profile(tmp_path, weekly_loss_pct=4)
    eng = await start(prof, MONDAY_10_NY)
    await eng.run(duration=20)
    book(eng, "-600")  # over the day's 2 %, portfolio_day's 5 % and the week's 4 %
    await eng.run(duration=80)
    tripped = {"daily_loss", "portfolio_day", "weekly_loss"}
    assert {n for n in tripped if state(eng, n) is BreakerState.TRIPPED} == tripped

    # Wednesday: the day breakers have lifted, the week's holds.
    eng = await start(prof, datetime(2026, 1, 7, 15, tzinfo=UTC), "BTC/USD")
    assert state(eng, "daily_loss") is BreakerState.ARMED and state(eng, "portfolio_day") is BreakerState.ARMED
    assert state(eng, "weekly_loss") is BreakerState.TRIPPED and eng.state is TradingState.REDUCE_ONLY
    assert (eng.portfolio.day_start_equity, eng.portfolio.week_start_equity) == (Decimal(9400), Decimal(10000))
    await eng.run(duration=30)
    assert await entries_sent(eng) == []
    last = (await refusals(eng))[-1]
    assert check(last, "daily_loss")["passed"] is True
    assert check(last, "weekly_loss")["passed"] is False and Decimal(check(last, "weekly_loss")["values"]["loss"]) == 600

    # Sunday 23:00 in New York (Monday 04:00 UTC): still the same ISO week there.
    eng = await start(prof, datetime(2026, 1, 12, 4, tzinfo=UTC), "BTC/USD")
    assert state(eng, "weekly_loss") is BreakerState.TRIPPED and eng.state is TradingState.REDUCE_ONLY
    await eng.run(duration=30)
    assert await entries_sent(eng) == []

    # Monday 00:30 in New York: a new week, starting from the equity found.
    eng = await start(prof, datetime(2026, 1, 12, 5, 30, tzinfo=UTC), "BTC/USD")
    assert state(eng, "weekly_loss") is BreakerState.ARMED and eng.state is TradingState.ACTIVE
    assert (eng.portfolio.day_start_equity, eng.portfolio.week_start_equity) == (Decimal(9400), Decimal(9400))
    await eng.run(duration=30)
    assert len(await entries_sent(eng)) == 1


async def test_a_new_day_a_command_saw_first_still_resets_the_day_breakers(tmp_path, start):
    prof = profile(tmp_path)
    prof = prof.model_copy(update={"feed": prof.feed.model_copy(update={"tick_seconds": 3600})})
    eng = await start(prof, MONDAY_10_NY + timedelta(minutes=30))  # hourly quotes, at half past
    await eng.run(duration=3600)
    book(eng, "-250")
    await eng.run(duration=3600)
    assert state(eng, "daily_loss") is BreakerState.TRIPPED
    while eng.clock.now() < datetime(2026, 1, 6, 4, 30, tzinfo=UTC):  # 23:30 in New York
        await eng.run(duration=3600)
    # Past New York's midnight, before the next quote: the operator's what-if reads the gate first.
    eng.clock.set(datetime(2026, 1, 6, 5, 10, tzinfo=UTC))
    eng.what_if(ManualOrderSpec("BTC/USD", "buy"))
    assert eng.portfolio.day_start_equity == Decimal(9750)
    await eng.run(duration=3600)
    assert state(eng, "daily_loss") is BreakerState.ARMED and eng.state is TradingState.ACTIVE


# -- trade counts --------------------------------------------------------------------------------
async def test_trades_per_day_counts_the_entries_sent_before_restarts(tmp_path, start):
    prof = profile(tmp_path, max_trades_per_day=2, max_trades_per_hour=2)
    for hour, symbol in ((0, "BTC/USD"), (2, "ETH/USD")):
        eng = await start(prof, MONDAY_10_NY + timedelta(hours=hour), symbol)
        await eng.run(duration=30)
        assert len(await entries_sent(eng)) == 1
    eng = await start(prof, MONDAY_10_NY + timedelta(hours=4), "SOL/USD")
    await eng.run(duration=30)
    assert await entries_sent(eng) == []
    last = (await refusals(eng))[-1]
    assert last["failed"] == "trades_per_day"
    assert check(last, "trades_per_day")["values"] == {"count": 2, "limit": 2}
    assert check(last, "trades_per_hour")["values"]["count"] == 0  # two hours apart


async def test_new_positions_per_day_and_week_count_across_restarts(tmp_path, start):
    prof = profile(tmp_path, max_new_positions_per_day=2, max_new_positions_per_week=3)
    for hour, symbol in ((0, "BTC/USD"), (1, "ETH/USD")):
        eng = await start(prof, MONDAY_10_NY + timedelta(hours=hour), symbol)
        await eng.run(duration=30)
        assert len(await entries_sent(eng)) == 1
    eng = await start(prof, MONDAY_10_NY + timedelta(hours=2), "SOL/USD")
    await eng.run(duration=30)
    assert await entries_sent(eng) == []
    last = (await refusals(eng))[-1]
    assert last["failed"] == "new_positions_per_day"
    assert check(last, "new_positions_per_day")["values"] == {"period": "day", "count": 2, "limit": 2}
    # Tuesday: a new day, the same week.
    eng = await start(prof, MONDAY_10_NY + timedelta(days=1), "SOL/USD", "LTC/USD")
    await eng.run(duration=30)
    (sent,) = await entries_sent(eng)
    last = (await refusals(eng))[-1]
    assert last["failed"] == "new_positions_per_week" and last["symbol"] != sent.data["symbol"]
    assert check(last, "new_positions_per_week")["values"] == {"period": "week", "count": 3, "limit": 3}
    assert check(last, "new_positions_per_day")["values"]["count"] == 1


async def test_the_hour_window_and_the_quiet_time_are_measured_across_restarts(tmp_path, start):
    prof = profile(tmp_path, max_trades_per_hour=2, min_seconds_between_trades=300)
    eng = await start(prof, MONDAY_10_NY, "BTC/USD")
    await eng.run(duration=30)
    (first,) = await entries_sent(eng)
    first_at = datetime.fromisoformat(first.ts)

    # Two minutes later: too soon after the first entry, which the restart did not forget.
    eng = await start(prof, first_at + timedelta(minutes=2), "ETH/USD")
    await eng.run(duration=30)
    assert await entries_sent(eng) == []
    refused = (await refusals(eng))[0]
    assert refused["failed"] == "min_seconds_between_trades"
    assert 120 <= check(refused, "min_seconds_between_trades")["values"]["since"] < 300
    await eng.run(duration=240)
    (second,) = await entries_sent(eng)
    assert datetime.fromisoformat(second.ts) >= first_at + timedelta(seconds=300)

    # Ten minutes on: two entries in the last hour, one each side of a restart.
    eng = await start(prof, first_at + timedelta(minutes=10), "SOL/USD")
    await eng.run(duration=30)
    assert await entries_sent(eng) == []
    last = (await refusals(eng))[-1]
    assert last["failed"] == "trades_per_hour"
    assert check(last, "trades_per_hour")["values"] == {"count": 2, "limit": 2}
    # The first entry leaves the hour, and only then does the third go out.
    await eng.run(duration=3600 - 600)
    (third,) = await entries_sent(eng)
    assert first_at + timedelta(hours=1) <= datetime.fromisoformat(third.ts) < first_at + timedelta(hours=1, seconds=30)


async def test_a_losing_streak_acknowledged_by_a_re_arm_is_not_counted_again_after_a_restart(tmp_path):
    prof = build_profile(tmp_path, symbols=SYMBOLS, risk={**OPEN_GATE, "max_consecutive_losses": 3})
    eng = await Engine.open(prof, clock=SimClock(MONDAY_10_NY))
    eng.portfolio.closed_trades = [Decimal("5"), Decimal("-1"), Decimal("-2"), Decimal("-3")]
    eng._evaluate_breakers(eng.clock.now())
    streak = next(b for b in eng.breakers if b.name == "consecutive_losses")
    assert streak.state is BreakerState.TRIPPED and eng.state is not TradingState.ACTIVE
    assert await eng.rearm("seen the three losses") is None
    assert eng.portfolio.consecutive_losses() == 0
    eng.portfolio.closed_trades.append(Decimal("-4"))  # one more after the re-arm
    await eng.close()

    eng = await Engine.open(prof)
    try:
        assert eng.portfolio.consecutive_losses() == 1  # only the loss after the re-arm
        eng._evaluate_breakers(eng.clock.now())
        streak = next(b for b in eng.breakers if b.name == "consecutive_losses")
        assert streak.state is not BreakerState.TRIPPED and eng.state is TradingState.ACTIVE
    finally:
        await eng.close()


async def test_a_re_arm_after_the_last_checkpoint_survives_a_crash(tmp_path):
    """Killed after a re-arm and before the next minute's checkpoint: the restart replays the
    re-arm row, so neither the acknowledged streak nor the re-based drawdown pause trips again."""
    import sqlite3

    from engine.recovery import checkpoint_record

    prof = build_profile(tmp_path, symbols=SYMBOLS, risk={**OPEN_GATE, "max_consecutive_losses": 3})
    eng = await Engine.open(prof, clock=SimClock(MONDAY_10_NY))
    p = eng.portfolio
    p.closed_trades = [Decimal("5"), Decimal("-1"), Decimal("-2"), Decimal("-3")]
    p.pause_peak = p.equity * Decimal("1.25")  # 20 % under the pause's peak: over its 15 %
    eng._evaluate_breakers(eng.clock.now())
    tripped = {b.name for b in eng.breakers if b.state is BreakerState.TRIPPED}
    assert {"consecutive_losses", "drawdown_pause"} <= tripped
    eng.journal.append("checkpoint", eng.clock.now(), None, checkpoint_record(eng))  # the minute's
    assert await eng.rearm("seen the losses and the drawdown") is None
    crash_at = (await eng.journal.last(["rearm"])).seq
    await eng.close()
    db = sqlite3.connect(prof.journal.path)  # kill -9 here: close's checkpoint never written
    db.execute("DELETE FROM events WHERE seq > ?", (crash_at,))
    db.commit()
    db.close()

    eng = await Engine.open(prof)
    try:
        assert eng.portfolio.consecutive_losses() == 0
        assert eng.portfolio.pause_drawdown_pct == 0
        eng._evaluate_breakers(eng.clock.now())
        assert not [b.name for b in eng.breakers if b.state is BreakerState.TRIPPED]
        assert eng.state is TradingState.ACTIVE
    finally:
        await eng.close()
