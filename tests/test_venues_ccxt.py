"""CcxtBroker end to end: the real ccxt client against the Binance and Bybit spot emulators.

Every test runs for both venues. Timeouts and backoffs are shrunk so the fault paths (rate
limits, 5xx, replies slower than the timeout) run in well under a second each.
"""
from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest

from emulators.binance import BinanceEmulator
from emulators.bybit import BybitEmulator
from engine.brokers.base import OrderUpdate
from engine.brokers.ccxt_broker import CcxtBroker
from engine.brokers.keys import EnvironmentMismatch, load_keys
from engine.brokers.retry import Failure
from engine.clock import WallClock
from engine.models import Fill, Order, OrderPurpose, OrderStatus, OrderType, Side
from engine.venue_config import VenueSection

KEY, SECRET = "tcKEYtest0123456789abcdef", "tcSECRETtest0123456789abcdef"
LIVE_KEY, LIVE_SECRET = "tcKEYlive0123456789abcdef", "tcSECRETlive0123456789abcdef"
CLOCK = WallClock()

ORDER_PATH = {"binance": ("POST", "/api/v3/order"), "bybit": ("POST", "/v5/order/create")}
CID_FIELD = {"binance": "newClientOrderId", "bybit": "orderLinkId"}
CANCEL_ALL = {"binance": ("DELETE", "/api/v3/openOrders"), "bybit": ("POST", "/v5/order/cancel-all")}
EMULATORS = {"binance": BinanceEmulator, "bybit": BybitEmulator}


def env_for(name: str, key: str = KEY, secret: str = SECRET, live: bool = False) -> dict[str, str]:
    word = "LIVE" if live else "TESTNET"
    return {f"{name.upper()}_{word}_API_KEY": key, f"{name.upper()}_{word}_API_SECRET": secret}


def order(cid: str, side: Side, type_: OrderType, qty: str, *, limit: str | None = None, stop: str | None = None,
          purpose: OrderPurpose = OrderPurpose.ENTRY, symbol: str = "BTC/USDT") -> Order:
    return Order(cid, symbol, side, type_, Decimal(qty), purpose if type_ is not OrderType.STOP else OrderPurpose.STOP,
                 CLOCK.now(), limit_price=None if limit is None else Decimal(limit),
                 stop_price=None if stop is None else Decimal(stop))


class Rig:
    def __init__(self, name: str, emu, broker: CcxtBroker, failures: list) -> None:
        self.name, self.emu, self.broker, self.failures = name, emu, broker, failures

    def orders_placed(self) -> int:
        return len(self.emu.core.orders)

    def posts(self) -> int:
        return self.emu.count(*ORDER_PATH[self.name])


async def make_rig(name: str, *, mode: str = "testnet", emu_env: str = "test", key: str = KEY, secret: str = SECRET,
                   emu_kwargs: dict | None = None, venue_kwargs: dict | None = None, connect: bool = True) -> Rig:
    keys_known = {KEY: SECRET} if emu_env == "test" else {LIVE_KEY: LIVE_SECRET}  # one environment's keys
    emu = await EMULATORS[name](keys_known, env=emu_env, **(emu_kwargs or {})).start()
    timeouts = {"poll_seconds": 0, "request_seconds": 0.3, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05,
                "retries": 3, "unconfirmed_grace_seconds": 0.2}
    v = VenueSection(name=name, base_url=emu.url, timeouts=timeouts, **(venue_kwargs or {}))
    keys = load_keys(v, mode, env_for(name, key, secret, live=(mode == "live")))
    failures: list = []
    b = CcxtBroker(v, mode, keys, CLOCK, ["BTC/USDT", "ETH/USDT"], on_api_failure=lambda: failures.append(1))
    rig = Rig(name, emu, b, failures)
    if connect:
        try:
            await b.connect()
        except BaseException:
            await emu.stop()
            raise
    return rig


@pytest.fixture(params=["binance", "bybit"])
async def rig(request):
    r = await make_rig(request.param)
    yield r
    await r.broker.close()
    await r.emu.stop()


def updates(events, status: OrderStatus | None = None) -> list[OrderUpdate]:
    return [e for e in events if isinstance(e, OrderUpdate) and (status is None or e.status is status)]


def fills(events) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


# -- orders ------------------------------------------------------------------------------------------
async def test_market_order_fills_with_the_client_id_in_the_venue_field(rig):
    await rig.broker.submit(order("tc1a-1-1", Side.BUY, OrderType.MARKET, "0.0123456"))
    ev = rig.broker.drain_events()
    assert [type(e).__name__ for e in ev] == ["OrderUpdate", "Fill", "OrderUpdate"]
    assert ev[0].status is OrderStatus.SUBMITTED and ev[0].venue_order_id
    assert ev[-1].status is OrderStatus.FILLED
    f = fills(ev)[0]
    assert f.client_order_id == "tc1a-1-1" and f.price == Decimal("50001")
    assert all(isinstance(x, Decimal) for x in (f.quantity, f.price, f.fee))
    sent = [r for r in rig.emu.requests if (r.method, r.path) == ORDER_PATH[rig.name]][0]
    assert sent.params[CID_FIELD[rig.name]] == "tc1a-1-1"
    # truncated to the venue's step, never rounded up
    step_qty = {"binance": "0.01234", "bybit": "0.012345"}[rig.name]
    assert Decimal(str(sent.params["quantity" if rig.name == "binance" else "qty"])) == Decimal(step_qty)
    # fee paid in BTC: the fill is the BTC that moved, the fee its USDT value; both match the venue
    venue_btc = rig.emu.core.free["BTC"]
    assert f.quantity == venue_btc
    assert (await rig.broker.positions())["BTC/USDT"] == venue_btc
    assert f.fee == (Decimal(step_qty) - venue_btc) * f.price


async def test_limit_rests_fills_on_poll_and_cancel_reports(rig):
    b = rig.broker
    await b.submit(order("tc1a-1-2", Side.BUY, OrderType.LIMIT, "0.01", limit="49000"))
    await b.submit(order("tc1a-1-3", Side.BUY, OrderType.LIMIT, "0.01", limit="48000"))
    assert [u.status for u in updates(b.drain_events())] == [OrderStatus.SUBMITTED] * 2
    opens = {o.client_order_id: o for o in await b.open_orders()}
    assert set(opens) == {"tc1a-1-2", "tc1a-1-3"} and opens["tc1a-1-2"].limit_price == Decimal("49000")
    rig.emu.set_book("BTCUSDT", "48900", "48990")
    await b.poll()
    ev = b.drain_events()
    assert [f.client_order_id for f in fills(ev)] == ["tc1a-1-2"]
    assert fills(ev)[0].price == Decimal("49000") and fills(ev)[0].liquidity == "maker"
    assert [(u.client_order_id, u.status) for u in updates(ev)] == [("tc1a-1-2", OrderStatus.FILLED)]
    assert await b.cancel("tc1a-1-3") is True
    assert [(u.client_order_id, u.status) for u in updates(b.drain_events())] == [("tc1a-1-3", OrderStatus.CANCELLED)]
    assert await b.cancel("tc1a-1-3") is True  # idempotent
    assert (await b.fetch_order("tc1a-1-3")).status is OrderStatus.CANCELLED
    assert await b.open_orders() == []


async def test_cancel_entries_cancels_one_by_one_and_keeps_the_stops(rig):
    b = rig.broker
    await b.submit(order("tc1a-2-1", Side.BUY, OrderType.MARKET, "0.02"))
    await b.submit(order("tc1a-2-2", Side.SELL, OrderType.STOP, "0.019", stop="45000"))
    for i in range(3, 8):
        await b.submit(order(f"tc1a-2-{i}", Side.BUY, OrderType.LIMIT, "0.01", limit=str(40000 + i)))
    b.drain_events()
    # one more entry placed before a restart: the venue knows it, this broker does not
    rig.emu.core.place("BTCUSDT", "BUY", "LIMIT", Decimal("0.01"), Decimal("39000"), None, "tc1a-1-99", 0)
    failed = await b.cancel_entries()
    assert failed == []
    left = rig.emu.core.open_orders()
    assert [o.cid for o in left] == ["tc1a-2-2"]  # only the protective stop
    assert rig.emu.count(*CANCEL_ALL[rig.name]) == 0  # never the venue's cancel-all
    cancelled = {u.client_order_id for u in updates(b.drain_events(), OrderStatus.CANCELLED)}
    assert cancelled == {f"tc1a-2-{i}" for i in range(3, 8)} | {"tc1a-1-99"}
    assert (await b.positions())["BTC/USDT"] > 0  # the position is still covered by its stop
    assert await b.cancel_entries() == []  # idempotent
    # a close-all exit resting at the venue is not an entry: a halt leaves it working too
    await b.submit(Order("tc1a-2-9", "ETH/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.01"), OrderPurpose.EXIT,
                         CLOCK.now(), limit_price=Decimal("2000")))
    assert await b.cancel_entries() == []
    assert {o.cid for o in rig.emu.core.open_orders()} == {"tc1a-2-2", "tc1a-2-9"}


async def test_stop_is_cancelled_on_request_and_fills_when_triggered(rig):
    b = rig.broker
    await b.submit(order("tc1a-3-1", Side.BUY, OrderType.MARKET, "0.02"))
    await b.submit(order("tc1a-3-2", Side.SELL, OrderType.STOP, "0.019", stop="45000.129"))
    await b.submit(order("tc1a-3-3", Side.SELL, OrderType.STOP, "0.0001", stop="44000"))
    b.drain_events()
    stop = [o for o in await b.open_orders() if o.client_order_id == "tc1a-3-2"][0]
    assert stop.type is OrderType.STOP and stop.stop_price == Decimal("45000.13")
    assert await b.cancel("tc1a-3-3") is True  # Bybit needs orderFilter=StopOrder for this
    rig.emu.set_book("BTCUSDT", "44990", "44995")
    await b.poll()
    ev = b.drain_events()
    assert [f.client_order_id for f in fills(ev)] == ["tc1a-3-2"]
    assert ("tc1a-3-2", OrderStatus.FILLED) in [(u.client_order_id, u.status) for u in updates(ev)]


async def test_minimums_are_refused_before_anything_is_sent(rig):
    b = rig.broker
    await b.submit(order("tc1a-4-1", Side.BUY, OrderType.LIMIT, "0.00002", limit="40000"))  # 0.8 USDT
    await b.submit(order("tc1a-4-2", Side.BUY, OrderType.MARKET, "0.0000001"))  # below the step
    await b.submit(order("tc1a-4-3", Side.BUY, OrderType.LIMIT, "10000", limit="40000"))  # above max qty
    ev = updates(b.drain_events())
    assert [u.status for u in ev] == [OrderStatus.REJECTED] * 3
    assert all(("venue minimum" in u.reason or "venue maximum" in u.reason) for u in ev), [u.reason for u in ev]
    assert rig.posts() == 0


async def test_insufficient_funds_is_final_with_the_venue_message(rig):
    await rig.broker.submit(order("tc1a-5-1", Side.BUY, OrderType.MARKET, "50"))
    [u] = updates(rig.broker.drain_events())
    assert u.status is OrderStatus.REJECTED
    assert "insufficient balance" in u.reason.lower()
    assert rig.posts() == 1 and rig.failures == []  # no retry, not an API failure


async def test_duplicate_client_id_is_refused_locally(rig):
    await rig.broker.submit(order("tc1a-5-2", Side.BUY, OrderType.LIMIT, "0.01", limit="40000"))
    await rig.broker.submit(order("tc1a-5-2", Side.BUY, OrderType.LIMIT, "0.01", limit="40000"))
    assert [u.status for u in updates(rig.broker.drain_events())] == [OrderStatus.SUBMITTED, OrderStatus.REJECTED]
    assert rig.posts() == 1


# -- faults ------------------------------------------------------------------------------------------
RATE_FAULTS = {"binance": ["429", "418"], "bybit": ["429", "403"]}


async def test_rate_limits_back_off_and_the_order_is_placed_once(rig):
    method, path = ORDER_PATH[rig.name]
    for kind in RATE_FAULTS[rig.name]:
        rig.emu.fault(method, path, kind)
    await rig.broker.submit(order("tc1a-6-1", Side.BUY, OrderType.LIMIT, "0.01", limit="40000"))
    assert [u.status for u in updates(rig.broker.drain_events())] == [OrderStatus.SUBMITTED]
    assert rig.posts() == 3 and rig.orders_placed() == 1
    assert len(rig.failures) == 2  # each counted for the API-failure breaker
    assert rig.broker.retrier.counts[Failure.RATE_LIMIT] == 2


async def test_rate_limit_that_never_ends_rejects_without_hanging(rig):
    method, path = ORDER_PATH[rig.name]
    rig.emu.fault(method, path, "429", times=10)
    await asyncio.wait_for(rig.broker.submit(order("tc1a-6-2", Side.BUY, OrderType.LIMIT, "0.01", limit="40000")), 5)
    [u] = updates(rig.broker.drain_events())
    assert u.status is OrderStatus.REJECTED and "rate limit" in u.reason
    assert rig.orders_placed() == 0 and len(rig.failures) == 4  # 1 + 3 retries, bounded


@pytest.mark.parametrize("kind", ["slow", "503"])
async def test_lost_reply_is_looked_up_by_client_id_never_sent_twice(rig, kind):
    method, path = ORDER_PATH[rig.name]
    # The venue processes the order, then the reply is too late (or a 5xx): outcome unknown.
    rig.emu.fault(method, path, kind, delay=0.6, process=True)
    await rig.broker.submit(order("tc1a-7-1", Side.BUY, OrderType.MARKET, "0.01"))
    ev = rig.broker.drain_events()
    assert rig.posts() == 1 and rig.orders_placed() == 1  # looked up, not re-sent
    assert [u.status for u in updates(ev)] == [OrderStatus.SUBMITTED, OrderStatus.FILLED]
    assert sum(f.quantity for f in fills(ev)) > 0
    assert len(rig.failures) == 1


async def test_5xx_before_processing_is_looked_up_then_sent_again_once(rig):
    method, path = ORDER_PATH[rig.name]
    rig.emu.fault(method, path, "502", process=False)
    await rig.broker.submit(order("tc1a-7-2", Side.BUY, OrderType.LIMIT, "0.01", limit="40000"))
    assert [u.status for u in updates(rig.broker.drain_events())] == [OrderStatus.SUBMITTED]
    assert rig.posts() == 2 and rig.orders_placed() == 1


async def test_unknown_outcome_with_lookups_failing_sends_nothing_more(rig):
    method, path = ORDER_PATH[rig.name]
    lookup = {"binance": ("GET", "/api/v3/order"), "bybit": ("GET", "/v5/order/realtime")}[rig.name]
    rig.emu.fault(method, path, "503", process=True)
    rig.emu.fault(*lookup, "503", times=4)
    await rig.broker.submit(order("tc1a-7-3", Side.BUY, OrderType.LIMIT, "0.01", limit="40000"))
    assert updates(rig.broker.drain_events()) == []  # neither placed nor refused: unknown
    assert rig.posts() == 1
    await rig.broker.poll()  # the poller resolves it by client id
    assert [u.status for u in updates(rig.broker.drain_events())] == [OrderStatus.SUBMITTED]
    assert rig.posts() == 1 and rig.orders_placed() == 1


async def test_unconfirmed_order_the_venue_never_had_is_rejected_after_the_grace(rig):
    method, path = ORDER_PATH[rig.name]
    lookup = {"binance": ("GET", "/api/v3/order"), "bybit": ("GET", "/v5/order/realtime")}[rig.name]
    rig.emu.fault(method, path, "503", process=False)
    rig.emu.fault(*lookup, "503", times=4)
    await rig.broker.submit(order("tc1a-7-4", Side.BUY, OrderType.LIMIT, "0.01", limit="40000"))
    assert updates(rig.broker.drain_events()) == []
    await asyncio.sleep(0.25)
    await rig.broker.poll()
    [u] = updates(rig.broker.drain_events())
    assert u.status is OrderStatus.REJECTED and "never confirmed" in u.reason
    assert rig.orders_placed() == 0


async def test_cancel_of_a_filled_or_unknown_order(rig):
    b = rig.broker
    await b.submit(order("tc1a-8-1", Side.BUY, OrderType.LIMIT, "0.01", limit="40000"))
    b.drain_events()
    rig.emu.set_book("BTCUSDT", "39990", "39995")  # fills at the venue; we have not polled yet
    assert await b.cancel("tc1a-8-1") is True
    ev = b.drain_events()
    assert [f.client_order_id for f in fills(ev)] == ["tc1a-8-1"]  # the fill is not lost
    assert [u.status for u in updates(ev)] == [OrderStatus.FILLED]
    assert await b.cancel("tc1a-nope") is True  # the venue has no such order
    assert await b.fetch_order("tc1a-nope") is None


async def test_timeouts_on_reads_retry_and_are_counted(rig):
    path = {"binance": "/api/v3/openOrders", "bybit": "/v5/order/realtime"}[rig.name]
    rig.emu.fault("GET", path, "slow", delay=0.5, process=False)
    assert await rig.broker.open_orders() == []
    assert len(rig.failures) == 1


async def test_balances_and_positions_are_decimal(rig):
    await rig.broker.submit(order("tc1a-9-1", Side.BUY, OrderType.MARKET, "0.1", symbol="ETH/USDT"))
    bal = await rig.broker.balances()
    assert isinstance(bal["USDT"], Decimal) and bal["USDT"] < Decimal(100000)
    pos = await rig.broker.positions()
    assert set(pos) == {"ETH/USDT"} and pos["ETH/USDT"] == rig.emu.core.free["ETH"]
    quotes = await rig.broker.fetch_quotes()
    assert {q.symbol: q.bid for q in quotes} == {"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")}


# -- environment ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["binance", "bybit"])
async def test_a_live_key_with_a_testnet_profile_refuses_to_start(name, caplog):
    caplog.set_level(logging.DEBUG)
    # The testnet only knows testnet keys; this key is a live one, loaded as the testnet key.
    with pytest.raises(EnvironmentMismatch) as ei:
        await make_rig(name, key=LIVE_KEY, secret=LIVE_SECRET)
    text = str(ei.value)
    assert "testnet endpoint refused the key" in text and "live key" in text
    for s in (LIVE_KEY, LIVE_SECRET):
        assert s not in text
        assert all(s not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["binance", "bybit"])
async def test_withdrawal_permission_warns_or_refuses(name):
    # Binance tells only on the live endpoint (/sapi); the live emulator plays it on loopback.
    mode, emu_env = ("live", "live") if name == "binance" else ("testnet", "test")
    key, secret = (LIVE_KEY, LIVE_SECRET) if mode == "live" else (KEY, SECRET)
    r = await make_rig(name, mode=mode, emu_env=emu_env, key=key, secret=secret, emu_kwargs={"can_withdraw": True})
    try:
        assert r.broker.report.withdrawals is True
        assert any("withdrawal permission" in w for w in r.broker.warnings)
    finally:
        await r.broker.close()
        await r.emu.stop()
    with pytest.raises(EnvironmentMismatch, match="withdrawal"):
        await make_rig(name, mode=mode, emu_env=emu_env, key=key, secret=secret, emu_kwargs={"can_withdraw": True},
                       venue_kwargs={"withdrawal_permission": "refuse"})


async def test_binance_testnet_without_sapi_is_best_effort():
    r = await make_rig("binance")
    try:
        assert r.broker.report.withdrawals is None and r.broker.report.buying_power == Decimal("100000")
    finally:
        await r.broker.close()
        await r.emu.stop()


@pytest.mark.parametrize("name", ["binance", "bybit"])
async def test_account_that_cannot_trade_refuses_to_start(name):
    kw = {"can_trade": False} if name == "binance" else {"read_only": True}
    with pytest.raises(EnvironmentMismatch, match="may not trade"):
        await make_rig(name, emu_kwargs=kw)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))  # message, args and any traceback


async def test_keys_never_appear_in_logs_errors_events_or_repr(caplog):
    caplog.set_level(logging.DEBUG)
    cap = Capture()
    watched = [logging.getLogger(n) for n in ("", "tradeconsole", "ccxt", "aiohttp")]
    levels = [lg.level for lg in watched]
    for lg in watched:
        lg.addHandler(cap)
        lg.setLevel(logging.DEBUG)
    r = await make_rig("binance")
    try:
        b = r.broker
        r.emu.fault("POST", "/api/v3/order", "503", process=True)
        r.emu.fault("GET", "/api/v3/order", "429")
        await b.submit(order("tc1a-10-1", Side.BUY, OrderType.MARKET, "0.01"))
        await b.submit(order("tc1a-10-2", Side.BUY, OrderType.MARKET, "500"))
        ev = b.drain_events()
        logging.getLogger("venuetest.ccxt").warning("key in a message %s", KEY)  # scrubbed too
        texts = [repr(b), repr(b._keys), str(b._keys.api_key), f"{b._keys.secret}"] + [repr(e) for e in ev]
        texts += [r_.getMessage() for r_ in caplog.records] + [caplog.text] + cap.texts
        assert any("outcome unknown" in t or "transient" in t for t in cap.texts)  # the venue logger was heard
        for t in texts:
            assert KEY not in t and SECRET not in t, t
    finally:
        for lg, lv in zip(watched, levels):
            lg.removeHandler(cap)
            lg.setLevel(lv)
        await r.broker.close()
        await r.emu.stop()


@pytest.mark.parametrize("name", ["binance", "bybit"])
async def test_money_reaches_decimal_without_a_float_between(name):
    # 18 significant digits (the venue's 8 decimals on a large balance): through ccxt's default
    # float it came back as 9876543210.123457.
    exact = Decimal("9876543210.12345678")
    rig = await make_rig(name, emu_kwargs={"balances": {"USDT": exact, "BTC": Decimal("0.12345678"), "ETH": 0}})
    try:
        bal = await rig.broker.balances()
        assert bal["USDT"] == exact
        assert (await rig.broker.positions())["BTC/USDT"] == Decimal("0.12345678")
    finally:
        await rig.broker.close()
        await rig.emu.stop()
