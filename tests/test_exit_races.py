"""Closing and re-stopping a position while the venue has news the engine has not read yet: a stop
that has fired, an entry still filling, a replacement stop the venue refuses. Whatever the order
of events, the account never ends up the other way round, and no position is left without a stop.

Quotes are pushed by hand through the engine's own batch path, so each case is one exact timeline.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from conftest import ANY_READINESS, LOOSE_RISK, build_profile
from engine.engine import Engine
from engine.manual import ManualOrderSpec
from engine.models import OrderPurpose, OrderStatus, OrderType, Quote
from engine.brokers.base import OrderUpdate
from engine.strategy.base import Strategy

SYMBOL = "BTC/USD"
RISK = {**LOOSE_RISK, "min_edge": 0, "min_confidence": 0,
        "max_single_trade_loss_usd": 1000, "max_position_pct": 30, "max_symbol_exposure_pct": 30,
        "max_book_fraction": 10, "max_volume_fraction": 1, "risk_per_trade_pct": 5, **ANY_READINESS}


class Quiet(Strategy):
    name = "quiet"

    def on_quote(self, quote, position_qty):
        return None


@pytest.fixture
async def engine(tmp_path):
    """`await engine(**sections)`: a paper engine on BTC and ETH, warmed, with a quiet strategy."""
    opened: list[Engine] = []

    async def make(**sections) -> Engine:
        sections.setdefault("risk", RISK)
        prof = build_profile(tmp_path, symbols=[SYMBOL, "ETH/USD"], sizing={"max_order_usd": 3000},
                             control={"socket": False}, **sections)
        eng = await Engine.open(prof, seed=1)
        opened.append(eng)
        eng.strategy = Quiet()
        eng.preroll()
        await eng.run(duration=5)
        return eng

    yield make
    for eng in opened:
        await eng.close()


async def push(eng: Engine, bid: D, ask: D, size: str = "1000", secs: float = 1.0) -> None:
    eng.clock.set(eng.clock.now() + timedelta(seconds=secs))
    q = Quote(SYMBOL, eng.clock.now(), bid, ask, D(size), D(size), (bid + ask) / 2, D(100000))
    await eng.on_batch([q])


async def venue_stops(eng: Engine) -> list:
    return [o for o in await eng.broker.open_orders() if o.symbol == SYMBOL and o.type is OrderType.STOP]


async def buy(eng: Engine, qty: str, **kw) -> None:
    assert await eng.submit_manual(ManualOrderSpec(SYMBOL, "buy", quantity=D(qty), **kw)) is None


async def test_closing_after_a_stop_fired_unheard_does_not_sell_short(engine):
    eng = await engine(paper={"latency_ms": 0})
    q = eng.quotes[SYMBOL]
    await buy(eng, "0.02", stop_price=(q.bid * D("0.95")).quantize(D("0.01")))
    # A 10 % gap: the entry's fill is read, its stop is placed and the venue fills it at once;
    # that fill waits in the venue's events when the operator closes.
    await push(eng, q.bid * D("0.90"), q.ask * D("0.90"))
    assert eng.orders.position_qty(SYMBOL) == D("0.02") and await eng.broker.positions() == {}

    assert await eng.close_position(SYMBOL) is None
    await push(eng, q.bid * D("0.90"), q.ask * D("0.90"))
    assert eng.orders.position_qty(SYMBOL) == 0
    assert await eng.broker.positions() == {}  # was -0.02: a naked short with no stop
    exits = [o for o in eng.orders.orders.values() if o.purpose is OrderPurpose.EXIT]
    assert all(o.status is not OrderStatus.FILLED for o in exits)


async def test_moving_a_stop_that_has_fired_leaves_no_stop_behind(engine):
    eng = await engine(paper={"latency_ms": 0})
    q = eng.quotes[SYMBOL]
    await buy(eng, "0.02", stop_price=(q.bid * D("0.95")).quantize(D("0.01")))
    await push(eng, q.bid * D("0.93"), q.ask * D("0.93"))  # the stop fills as it is placed; unheard
    refusal = await eng.tighten_stop(SYMBOL, (q.bid * D("0.92")).quantize(D("0.01")))
    assert refusal == f"no open position in {SYMBOL}"
    assert await venue_stops(eng) == []  # a full-size sell stop on a flat account, before
    for _ in range(2):
        await push(eng, q.bid * D("0.91"), q.ask * D("0.91"))
    assert await eng.broker.positions() == {}


async def test_a_replacement_stop_the_venue_refuses_leaves_the_old_one_in_charge(engine):
    eng = await engine(paper={"latency_ms": 50})
    q = eng.quotes[SYMBOL]
    await buy(eng, "0.02")
    for _ in range(3):
        await push(eng, q.bid, q.ask)
    (old,) = await venue_stops(eng)
    submit = eng.broker.submit

    async def refusing(order):
        if order.type is OrderType.STOP:  # as brokers/polling.py reports a final refusal
            eng.broker._events.append(OrderUpdate(order.client_order_id, OrderStatus.REJECTED, eng.clock.now(),
                                                  "Order would immediately trigger"))
            return
        await submit(order)
    eng.broker.submit = refusing

    refusal = await eng.tighten_stop(SYMBOL, (q.bid * D("0.97")).quantize(D("0.01")))
    assert refusal == f"the new stop for {SYMBOL} was refused; the old stop ({old.stop_price}) stays"
    assert [s.client_order_id for s in await venue_stops(eng)] == [old.client_order_id]
    assert eng.orders.stop_order(SYMBOL).client_order_id == old.client_order_id
    assert eng.portfolio.positions[SYMBOL].stop_price == old.stop_price
    assert not [a for a in eng.alerts.recent() if a.severity == "critical"]  # it still has a stop


async def test_a_first_stop_the_venue_refuses_is_a_critical_alert(engine):
    eng = await engine(paper={"latency_ms": 0})
    q = eng.quotes[SYMBOL]
    submit = eng.broker.submit

    async def refusing(order):
        if order.type is OrderType.STOP:
            eng.broker._events.append(OrderUpdate(order.client_order_id, OrderStatus.REJECTED, eng.clock.now(),
                                                  "Order would immediately trigger"))
            return
        await submit(order)
    eng.broker.submit = refusing
    await buy(eng, "0.02")
    await push(eng, q.bid, q.ask)
    await eng.orders.process_events()
    (alert,) = [a for a in eng.alerts.recent() if a.kind == "stop_rejected"]
    assert alert.severity == "critical" and "has NO stop" in alert.message


async def test_closing_cancels_the_entry_still_working_and_leaves_nothing_bare(engine):
    eng = await engine(paper={"latency_ms": 500})
    q = eng.quotes[SYMBOL]
    await push(eng, q.bid, q.ask, size="0.01")
    await buy(eng, "0.03", type="limit", limit_price=q.ask)
    await push(eng, q.bid, q.ask, size="0.01")  # 0.01 of it fills
    await push(eng, q.bid, q.ask * D("1.001"), size="0.01")  # the rest rests
    assert eng.orders.position_qty(SYMBOL) == D("0.01")
    entry = next(o for o in eng.orders.working.values() if o.purpose is OrderPurpose.ENTRY)

    assert await eng.close_position(SYMBOL) is None
    assert entry.client_order_id not in eng.orders.working  # cancelled before the exit left
    await push(eng, q.bid, q.ask, size="0.05")  # the ask back at the limit: it would have filled
    for _ in range(5):
        await push(eng, q.bid, q.ask * D("1.001"), size="0.05", secs=60)
    assert eng.orders.position_qty(SYMBOL) == 0 and await eng.broker.positions() == {}
    assert await venue_stops(eng) == []


async def test_a_limits_market_fallback_never_buys_back_a_closed_position(engine):
    eng = await engine(paper={"latency_ms": 0}, orders={"limit_timeout_seconds": 30})
    q = eng.quotes[SYMBOL]
    await push(eng, q.bid, q.ask, size="0.01")
    await buy(eng, "0.03", type="limit", limit_price=q.ask)
    await push(eng, q.bid, q.ask * D("1.001"), size="0.05")  # 0.01 held, the rest rests
    assert eng.orders.position_qty(SYMBOL) == D("0.01")
    assert await eng.close_position(SYMBOL) is None
    for _ in range(5):
        await push(eng, q.bid, q.ask * D("1.001"), size="0.05", secs=10)  # past the limit's timeout
    assert eng.orders.position_qty(SYMBOL) == 0
    fills = [(r.data["side"], r.data["purpose"]) for r in await eng.journal.rows(["fill"])]
    assert fills == [("buy", "entry"), ("sell", "exit")]


async def test_an_exit_that_ends_with_something_left_gives_it_a_stop(engine):
    """The venue fills an entry beside the exit (its cancel came too late): what is left after
    the exit gets its protective stop when the exit ends."""
    eng = await engine(paper={"latency_ms": 500})
    q = eng.quotes[SYMBOL]
    await push(eng, q.bid, q.ask, size="0.01")
    await buy(eng, "0.03", type="limit", limit_price=q.ask)
    await push(eng, q.bid, q.ask, size="0.01")
    await push(eng, q.bid, q.ask * D("1.001"), size="0.01")
    cancel = eng.broker.cancel

    async def too_late(cid):  # the venue keeps the entry working: its cancel fails
        order = eng.orders.orders.get(cid)
        return False if order is not None and order.purpose is OrderPurpose.ENTRY else await cancel(cid)
    eng.broker.cancel = too_late
    assert await eng.close_position(SYMBOL) is None
    assert [a.kind for a in eng.alerts.recent() if a.kind == "entry_not_cancelled"]
    await push(eng, q.bid, q.ask, size="0.05")  # the entry's rest and the exit both fill
    for _ in range(3):
        await push(eng, q.bid, q.ask * D("1.001"), size="0.05", secs=60)
    held = eng.orders.position_qty(SYMBOL)
    assert held == D("0.02")
    (stop,) = await venue_stops(eng)
    assert stop.remaining == held


async def test_a_limits_market_fallback_is_judged_with_what_the_limit_filled(engine):
    """Half a limit fills, the price runs up 4 % before its timeout: the rest at market is the
    same trade, so the gate judges the whole position's loss at its stop, not the rest alone."""
    eng = await engine(paper={"latency_ms": 0}, orders={"limit_timeout_seconds": 30},
                       risk={**RISK, "max_single_trade_loss_usd": 100, "max_price_jump_pct": 5})
    q = eng.quotes[SYMBOL]
    stop = (q.ask * D("0.945")).quantize(D("0.01"))
    await push(eng, q.bid, q.ask, size="0.016")
    await buy(eng, "0.030", type="limit", limit_price=q.ask, stop_price=stop)  # ~93 at its stop
    for _ in range(8):
        await push(eng, q.bid * D("1.04"), q.ask * D("1.04"), size="1", secs=5)
    pos = eng.portfolio.positions[SYMBOL]
    assert (pos.avg_price - pos.stop_price) * pos.quantity <= 100  # it was 124.87
    fallback = [r for r in await eng.journal.rows(["decision"]) if r.data["purpose"] == "entry"][-1]
    check = next(c for c in fallback.data["checks"] if c["name"] == "single_trade_loss")
    assert fallback.data["failed"] == "single_trade_loss" and not check["passed"]
    assert [a.kind for a in eng.alerts.recent() if a.kind == "fallback_refused"]
