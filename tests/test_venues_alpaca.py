"""AlpacaBroker end to end: alpaca-py's TradingClient and StockHistoricalDataClient (synchronous,
run in threads) against the Alpaca emulator."""
from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest

from emulators.alpaca import AlpacaEmulator
from engine.brokers.alpaca_broker import AlpacaBroker
from engine.brokers.base import OrderUpdate
from engine.brokers.keys import EnvironmentMismatch, load_keys
from engine.clock import WallClock
from engine.models import Fill, Order, OrderPurpose, OrderStatus, OrderType, Side
from engine.venue_config import VenueSection

KEY, SECRET = "alpKEYpaper0123456789", "alpSECRETpaper0123456789"
LIVE_KEY, LIVE_SECRET = "alpKEYlive0123456789", "alpSECRETlive0123456789"
CLOCK = WallClock()


def order(cid: str, side: Side, type_: OrderType, qty: str, *, limit: str | None = None, stop: str | None = None,
          symbol: str = "AAPL") -> Order:
    return Order(cid, symbol, side, type_, Decimal(qty),
                 OrderPurpose.STOP if type_ is OrderType.STOP else OrderPurpose.ENTRY, CLOCK.now(),
                 limit_price=None if limit is None else Decimal(limit), stop_price=None if stop is None else Decimal(stop))


async def make(emu_env: str = "test", key: str = KEY, secret: str = SECRET, mode: str = "testnet", **emu_kw):
    known = {KEY: SECRET} if emu_env == "test" else {LIVE_KEY: LIVE_SECRET}
    emu = await AlpacaEmulator(known, env=emu_env, **emu_kw).start()
    v = VenueSection(name="alpaca", base_url=emu.url, timeouts={
        "poll_seconds": 0, "request_seconds": 0.4, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05,
        "unconfirmed_grace_seconds": 0.2})
    word = "LIVE" if mode == "live" else "PAPER"
    keys = load_keys(v, mode, {f"ALPACA_{word}_API_KEY": key, f"ALPACA_{word}_API_SECRET": secret})
    failures: list = []
    b = AlpacaBroker(v, mode, keys, CLOCK, ["AAPL", "MSFT"], on_api_failure=lambda: failures.append(1))
    try:
        await b.connect()
    except BaseException:
        await b.close()
        await emu.stop()
        raise
    return emu, b, failures


@pytest.fixture
async def alp():
    emu, b, failures = await make()
    yield emu, b, failures
    await b.close()
    await emu.stop()


def updates(ev, status=None):
    return [e for e in ev if isinstance(e, OrderUpdate) and (status is None or e.status is status)]


def fills(ev):
    return [e for e in ev if isinstance(e, Fill)]


async def test_account_clock_and_quotes(alp):
    emu, b, _ = alp
    assert b.report.account_env == "test" and b.report.buying_power == Decimal(100000)
    clock = await b.get_clock()
    assert clock["is_open"] is True and clock["next_close"] > clock["timestamp"]
    quotes = {q.symbol: q for q in await b.fetch_quotes()}
    assert quotes["AAPL"].bid == Decimal("190") and quotes["MSFT"].ask == Decimal("410.05")


async def test_market_fill_stop_and_client_ids(alp):
    emu, b, _ = alp
    await b.submit(order("tc9-1-1", Side.BUY, OrderType.MARKET, "10"))
    await b.submit(order("tc9-1-2", Side.SELL, OrderType.STOP, "10", stop="180.004"))
    ev = b.drain_events()
    [f] = fills(ev)
    assert (f.client_order_id, f.quantity, f.price, f.fee) == ("tc9-1-1", Decimal(10), Decimal("190.02"), Decimal(0))
    assert [(u.client_order_id, u.status) for u in updates(ev)] == [
        ("tc9-1-1", OrderStatus.SUBMITTED), ("tc9-1-1", OrderStatus.FILLED), ("tc9-1-2", OrderStatus.SUBMITTED)]
    posts = [r for r in emu.requests if (r.method, r.path) == ("POST", "/v2/orders")]
    assert [p.params["client_order_id"] for p in posts] == ["tc9-1-1", "tc9-1-2"]
    assert posts[1].params["type"] == "stop" and posts[1].params["stop_price"] == 180.0
    assert posts[1].params["time_in_force"] == "gtc"  # whole shares: the stop outlives the day
    assert await b.positions() == {"AAPL": Decimal(10)}
    [stop] = await b.open_orders()
    assert stop.type is OrderType.STOP and stop.stop_price == Decimal("180.00")
    # the stop holds the shares: a sell beyond them is refused with Alpaca's message, final
    await b.submit(order("tc9-1-3", Side.SELL, OrderType.MARKET, "10"))
    [u] = updates(b.drain_events())
    assert u.status is OrderStatus.REJECTED and "insufficient qty" in u.reason
    emu.set_book("AAPL", "179.5", "179.6")  # through the stop
    await b.poll()
    ev = b.drain_events()
    assert [f.client_order_id for f in fills(ev)] == ["tc9-1-2"]
    assert updates(ev)[-1].status is OrderStatus.FILLED
    assert await b.positions() == {}


async def test_limit_rests_partial_picture_and_cancel_entries_keeps_stops(alp):
    emu, b, _ = alp
    await b.submit(order("tc9-2-1", Side.BUY, OrderType.MARKET, "5"))
    await b.submit(order("tc9-2-2", Side.SELL, OrderType.STOP, "5", stop="170"))
    for i in range(3, 7):
        await b.submit(order(f"tc9-2-{i}", Side.BUY, OrderType.LIMIT, "1.5", limit=str(150 + i)))
    b.drain_events()
    emu.core.place("MSFT", "BUY", "LIMIT", Decimal(1), Decimal(300), None, "tc9-1-77", 0)  # before a restart
    assert await b.cancel_entries() == []
    assert [o.cid for o in emu.core.open_orders()] == ["tc9-2-2"]
    assert emu.count("DELETE", "/v2/orders") == 0  # never the venue's cancel-all
    cancelled = {u.client_order_id for u in updates(b.drain_events(), OrderStatus.CANCELLED)}
    assert cancelled == {f"tc9-2-{i}" for i in range(3, 7)} | {"tc9-1-77"}


async def test_insufficient_buying_power_is_final(alp):
    emu, b, failures = alp
    await b.submit(order("tc9-3-1", Side.BUY, OrderType.MARKET, "100000"))
    [u] = updates(b.drain_events())
    assert u.status is OrderStatus.REJECTED and "insufficient buying power" in u.reason
    assert emu.count("POST", "/v2/orders") == 1 and failures == []


async def test_rate_limit_backs_off_and_places_once(alp):
    emu, b, failures = alp
    emu.fault("POST", "/v2/orders", "429", times=2)
    await b.submit(order("tc9-4-1", Side.BUY, OrderType.LIMIT, "1", limit="150"))
    assert [u.status for u in updates(b.drain_events())] == [OrderStatus.SUBMITTED]
    assert emu.count("POST", "/v2/orders") == 3 and len(emu.core.orders) == 1 and len(failures) == 2


@pytest.mark.parametrize("kind", ["slow", "504"])
async def test_lost_reply_is_looked_up_by_client_id(alp, kind):
    emu, b, failures = alp
    emu.fault("POST", "/v2/orders", kind, delay=0.8, process=True)
    await b.submit(order("tc9-5-1", Side.BUY, OrderType.MARKET, "2"))
    ev = b.drain_events()
    assert emu.count("POST", "/v2/orders") == 1 and len(emu.core.orders) == 1
    assert [u.status for u in updates(ev)] == [OrderStatus.SUBMITTED, OrderStatus.FILLED]
    assert fills(ev)[0].quantity == Decimal(2)
    assert emu.count("GET", "/v2/orders:by_client_order_id") == 1 and len(failures) == 1


async def test_cancel_after_fill_and_unknown(alp):
    emu, b, _ = alp
    await b.submit(order("tc9-6-1", Side.BUY, OrderType.LIMIT, "1", limit="189"))
    b.drain_events()
    emu.set_book("AAPL", "188", "188.5")
    assert await b.cancel("tc9-6-1") is True
    ev = b.drain_events()
    assert [f.client_order_id for f in fills(ev)] == ["tc9-6-1"] and updates(ev)[-1].status is OrderStatus.FILLED
    assert await b.cancel("tc9-nope") is True and await b.fetch_order("tc9-nope") is None


async def test_a_live_key_with_a_paper_profile_refuses_to_start(caplog):
    caplog.set_level(logging.DEBUG)
    # the paper endpoint does not know a live key
    with pytest.raises(EnvironmentMismatch, match="paper endpoint refused the key"):
        await make(key=LIVE_KEY, secret=LIVE_SECRET)
    # an endpoint that takes it but whose account is live (not PA...): refused too
    with pytest.raises(EnvironmentMismatch, match="live account but the profile mode is testnet"):
        await make(emu_env="live", key=LIVE_KEY, secret=LIVE_SECRET)
    assert all(LIVE_KEY not in r.getMessage() and LIVE_SECRET not in r.getMessage() for r in caplog.records)


async def test_live_profile_on_a_live_account_and_blocked_accounts():
    emu, b, _ = await make(emu_env="live", key=LIVE_KEY, secret=LIVE_SECRET, mode="live")
    try:
        assert b.report.account_env == "live" and b.environment == "local"
    finally:
        await b.close()
        await emu.stop()
    with pytest.raises(EnvironmentMismatch, match="blocked"):
        await make(status="ACCOUNT_CLOSED")
    with pytest.raises(EnvironmentMismatch, match="may not trade"):
        await make(trading_blocked=True)


async def test_event_loop_stays_free_during_a_slow_request(alp):
    emu, b, _ = alp
    emu.fault("GET", "/v2/account", "slow", delay=0.3, process=False)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    t = asyncio.ensure_future(ticker())
    await b.balances()
    t.cancel()
    assert ticks >= 10  # the loop kept turning while alpaca-py waited in its thread
