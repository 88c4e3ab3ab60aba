"""The gate's context gathering against the plain rule it replaced.

`_context` keeps the trade counts between orders and recounts only when one could have changed
(engine/tracking.py `TradeLog.fresh`), tests the day roll against a precomputed instant, and reads
the market watch once. Each test runs the same steps through it and through the rule as it was
written before (bisect every count on every order, roll when 24 h have passed since the day's
start), and the two must agree on every order: across hours, days, DST days, a clock set back.
"""
from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.gate_wiring import GateWiring
from engine.models import OrderPurpose, Quote, Side
from engine.portfolio import Portfolio
from engine.risk.gate import OrderRequest, TradingState
from engine.tracking import MarketWatch, TradeLog

SYMBOL = "BTC/USD"
ENTRY = OrderRequest(SYMBOL, Side.BUY, D("0.1"), D(100), D(92), OrderPurpose.ENTRY, "strategy")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.t = now

    def now(self) -> datetime:
        return self.t


class Wired(GateWiring):
    """The engine's state the gate wiring reads, and nothing else."""

    def __init__(self, clock: Clock, tz: str) -> None:
        self.clock = clock
        self.state = TradingState.ACTIVE
        self.halt_reason = ""
        self.profile = SimpleNamespace(mode="paper")
        self.portfolio = Portfolio(D(10000), tz)
        self.trades = TradeLog()
        self.market = MarketWatch(D(5))
        self.orders = SimpleNamespace(position_qty=lambda symbol: D(0), working_entries={})
        self.broker = SimpleNamespace(connected=True)
        self.broker_environment = "paper"
        self._entry_ctx = self._blank_context()
        self._exit_ctx = self._blank_context()


class Reference:
    """The counts as `_context` worked them out before: every one, on every order."""

    def __init__(self, tz: str) -> None:
        self.portfolio = Portfolio(D(10000), tz)
        self.entries: list[datetime] = []
        self.opens: list[datetime] = []
        self.next_prune: datetime | None = None

    def counts(self, now: datetime) -> tuple:
        if self.next_prune is None or now >= self.next_prune:  # trimmed hourly, as before
            self.next_prune = now + timedelta(hours=1)
            horizon = now - timedelta(days=8)
            for d in (self.entries, self.opens):
                if d and d[0] < horizon:
                    del d[: bisect_left(d, horizon)]
        p = self.portfolio
        if p.day_started is None or now - p.day_started >= timedelta(days=1):
            p.roll(now)
        e, o = self.entries, self.opens
        since = (lambda xs, t: len(xs) - bisect_left(xs, t))
        last = (now - e[-1]).total_seconds() if e else None
        return (since(e, p.day_started), since(e, now - timedelta(hours=1)), since(o, p.day_started),
                since(o, p.week_started), last, p.day_started)


def observed(w: Wired) -> tuple:
    c = w._context(ENTRY)
    return (c.trades_today, c.trades_last_hour, c.new_positions_today, c.new_positions_week,
            c.seconds_since_last_trade, w.portfolio.day_started)


TICK = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
steps = st.lists(st.one_of(
    st.tuples(st.just("wait"), st.sampled_from([
        TICK, HOUR - TICK, HOUR, HOUR + TICK, timedelta(minutes=7), timedelta(minutes=59, seconds=59),
        timedelta(hours=5), timedelta(hours=23), timedelta(days=1) - TICK, timedelta(days=1),
        timedelta(days=3), timedelta(days=9)])),
    st.tuples(st.just("back"), st.sampled_from([TICK, timedelta(minutes=30), HOUR, timedelta(hours=30)])),
    st.tuples(st.just("entry"), st.booleans()),
    st.tuples(st.just("batch"), st.none()),  # the engine's own roll at the top of a batch
    st.tuples(st.just("order"), st.none()),
), min_size=1, max_size=60)

# 2026-03-08 and 2026-11-01 are New York's 23 h and 25 h days.
STARTS = [datetime(2026, 3, 6, 22, 0, tzinfo=timezone.utc), datetime(2026, 10, 30, 23, 30, tzinfo=timezone.utc),
          datetime(2026, 1, 4, 23, 59, 59, tzinfo=timezone.utc)]


def replay(start: datetime, tz: str, ops: list) -> None:
    clock = Clock(start)
    w, ref = Wired(clock, tz), Reference(tz)
    for op, arg in ops + [("order", None)]:
        if op == "wait":
            clock.t += arg
        elif op == "back":
            clock.t -= arg  # a wall clock stepped back by the host
        elif op == "entry":
            # What the signal flow does after an order is sent: the counts must see it at once.
            w.trades.record_entry(clock.t, arg)
            ref.entries.append(clock.t)
            if arg:
                ref.opens.append(clock.t)
        elif op == "batch":
            w.portfolio.roll(clock.t)
            ref.portfolio.roll(clock.t)
        else:
            assert observed(w) == ref.counts(clock.t), (op, clock.t)
        if ref.entries and ref.entries != sorted(ref.entries):
            return  # a trade recorded before an earlier one: neither rule holds for that list


@settings(max_examples=400, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STARTS), st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]), steps)
def test_counts_and_day_roll_match_the_plain_rule(start, tz, ops):
    replay(start, tz, ops)


def wait(**kw) -> tuple:
    return ("wait", timedelta(**kw))


ORDER, ENTRY_OPENS, BATCH = ("order", None), ("entry", True), ("batch", None)
NOON = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("start, tz, ops", [
    # The trade leaves the hour exactly one tick after it, with no recount in between.
    (NOON, "UTC", [ENTRY_OPENS, ORDER, ("wait", HOUR), ORDER, ("wait", TICK), ORDER]),
    (NOON, "UTC", [ENTRY_OPENS, ORDER, ("wait", HOUR + TICK), ORDER]),
    # A clock stepped back brings the trade back into the hour.
    (NOON, "UTC", [ENTRY_OPENS, ORDER, wait(hours=2), ORDER, ("back", timedelta(minutes=90)), ORDER]),
    # 24 h after the day's start the day rolls on an order, with the last recount minutes before.
    (NOON, "UTC", [ENTRY_OPENS, wait(hours=11, minutes=30), ORDER, wait(minutes=40), ORDER]),
    # New York's 23 h day: the engine's batch rolls the day an hour before 24 h have passed.
    (datetime(2026, 3, 9, 3, 45, tzinfo=timezone.utc), "America/New_York",
     [ORDER, ENTRY_OPENS, wait(minutes=5), ORDER, wait(minutes=20), BATCH, ORDER]),
    # ... and its 25 h day: 24 h after its start the roll is tried and finds the same day.
    (datetime(2026, 11, 2, 3, 50, tzinfo=timezone.utc), "America/New_York",
     [ORDER, ENTRY_OPENS, wait(minutes=15), ORDER, wait(minutes=50), ORDER, wait(minutes=10), ORDER]),
])
def test_counts_at_the_edges(start, tz, ops):
    replay(start, tz, ops)


def test_an_order_between_changes_reuses_the_counts():
    clock = Clock(datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc))
    w = Wired(clock, "UTC")
    w._context(ENTRY)
    due = w.trades.due
    assert due is not None and w.trades.fresh(clock.t, w.portfolio.day_started)
    clock.t += timedelta(minutes=10)
    w._context(ENTRY)
    assert w.trades.due is due  # nothing recounted
    w.trades.record_entry(clock.t, True)
    assert not w.trades.fresh(clock.t, w.portfolio.day_started)
    assert observed(w)[:4] == (1, 1, 1, 1)
    clock.t += HOUR + TICK
    assert observed(w)[:4] == (1, 0, 1, 1)  # the trade left the hour one tick after its hour


def _quote(t: datetime, bid: str, ask: str, volume: str = "0") -> Quote:
    return Quote(SYMBOL, t, D(bid), D(ask), D(1), D(2), D(bid), D(volume))


def test_market_fields_are_the_market_watchs_own():
    clock = Clock(datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc))
    w = Wired(clock, "UTC")
    c = w._context(ENTRY)
    assert (c.quote, c.mid, c.quote_age_seconds, c.last_good_price, c.recent_volume) == (None,) * 5
    m = w.market
    for i, (bid, ask, vol) in enumerate([("100", "100.02", "0"), ("100.01", "100.03", "3"),
                                         ("130", "130.1", "1"), ("100.02", "100.04", "0")]):
        m.update(_quote(clock.t, bid, ask, vol))
        clock.t += timedelta(seconds=1.5)
        c = w._context(ENTRY)
        assert c.quote is m.quote(SYMBOL)
        assert c.mid == m.mid(SYMBOL) and str(c.mid) == str(m.mid(SYMBOL))
        assert c.last_good_price is m.last_good(SYMBOL)
        assert c.recent_volume is m.recent_volume(SYMBOL)
        assert c.quote_age_seconds == 1.5
    assert c.recent_volume == D(4)
    assert c.mid == D("100.03") and c.last_good_price == D("100.03")  # the spike was never accepted
