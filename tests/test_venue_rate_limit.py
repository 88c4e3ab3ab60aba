"""A venue that says how long to stay away (Retry-After on a 429, Binance's 418 ban) is left alone
for that long: the quote feed, the broker's polls, submits and cancels send nothing into the
window, and the window counts once toward the API-failure breaker (audit F7).

The emulators are wrapped here (not changed): once banned, a venue refuses every request for the
ban's length from the first one it sees, naming the wait in Retry-After, as Binance does. What is
asserted is what reached the venue during that time, the failures counted and the orders' fate;
no test measures wall time."""
from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from aiohttp import web

from emulators.alpaca import AlpacaEmulator
from emulators.binance import BinanceEmulator
from emulators.bybit import BybitEmulator
from engine.brokers.alpaca_broker import AlpacaBroker
from engine.brokers.base import OrderUpdate
from engine.brokers.ccxt_broker import CcxtBroker
from engine.brokers.keys import load_keys
from engine.feeds.venue import VenueFeed
from engine.models import OrderStatus, OrderType, Side
from engine.venue_config import VenueSection
from test_venues_alpaca import KEY as ALP_KEY, SECRET as ALP_SECRET, order as alp_order
from test_venues_ccxt import CLOCK, KEY, SECRET, env_for, order

SYMBOL = {"binance": "BTC/USDT", "bybit": "BTC/USDT", "alpaca": "AAPL"}
LIMIT = {"binance": "40000", "bybit": "40000", "alpaca": "100"}
QTY = {"binance": "0.01", "bybit": "0.01", "alpaca": "1"}


def banning(base: type) -> type:
    class Banning(base):
        """`ban(seconds)`: from the next request on, every request for `seconds` is refused with
        the venue's own rate-limit reply (`status`), with `Retry-After: seconds` unless `header`
        is False. `during` lists what arrived in the ban."""

        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            self.ban_for, self.ban_until, self.during = 0.0, None, []
            self.ban_status, self.header = "429", True

        def ban(self, seconds: float, status: str = "429", header: bool = True) -> None:
            self.ban_for, self.ban_until, self.during = seconds, None, []
            self.ban_status, self.header = status, header

        @web.middleware
        async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
            now = time.monotonic()
            if self.ban_for and self.ban_until is None:
                self.ban_until = now + self.ban_for
            if self.ban_until is not None and now < self.ban_until:
                self.during.append((request.method, request.path))
                resp = self.error_response(self.ban_status)
                if self.header:
                    resp.headers["Retry-After"] = f"{self.ban_for:g}"
                return resp
            return await base._middleware(self, request, handler)

    return Banning


EMULATORS = {"binance": banning(BinanceEmulator), "bybit": banning(BybitEmulator), "alpaca": banning(AlpacaEmulator)}


class Alerts:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def publish(self, severity: str, kind: str, message: str, ts, **data) -> None:
        self.seen.append((severity, kind, message))


class Venue:
    def __init__(self, name: str, emu, broker, failures: list) -> None:
        self.name, self.emu, self.broker, self.failures = name, emu, broker, failures
        self.broker.alerts = self.alerts = Alerts()

    def order(self, cid: str, type_: OrderType = OrderType.LIMIT, **kw):
        if self.name == "alpaca":
            return alp_order(cid, Side.BUY, type_, QTY[self.name], **kw)
        return order(cid, Side.BUY if type_ is OrderType.LIMIT else Side.SELL, type_, QTY[self.name], **kw)

    def updates(self, cid: str) -> list[OrderUpdate]:
        return [e for e in self.broker.drain_events() if isinstance(e, OrderUpdate) and e.client_order_id == cid]


async def open_venue(name: str) -> Venue:
    emu = await EMULATORS[name]({ALP_KEY: ALP_SECRET} if name == "alpaca" else {KEY: SECRET}, env="test").start()
    timeouts = {"poll_seconds": 0, "request_seconds": 2, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05,
                "retries": 3, "unconfirmed_grace_seconds": 5}
    v = VenueSection(name=name, base_url=emu.url, timeouts=timeouts)
    failures: list = []
    if name == "alpaca":
        keys = load_keys(v, "testnet", {"ALPACA_PAPER_API_KEY": ALP_KEY, "ALPACA_PAPER_API_SECRET": ALP_SECRET})
        b = AlpacaBroker(v, "testnet", keys, CLOCK, ["AAPL"], on_api_failure=lambda: failures.append(1))
    else:
        keys = load_keys(v, "testnet", env_for(name))
        b = CcxtBroker(v, "testnet", keys, CLOCK, ["BTC/USDT"], on_api_failure=lambda: failures.append(1))
    try:
        await b.connect()
    except BaseException:
        await b.close()
        await emu.stop()
        raise
    return Venue(name, emu, b, failures)


@pytest.fixture(params=["binance", "bybit", "alpaca"])
async def venue(request):
    v = await open_venue(request.param)
    yield v
    await v.broker.close()
    await v.emu.stop()


@pytest.fixture
async def binance():
    v = await open_venue("binance")
    yield v
    await v.broker.close()
    await v.emu.stop()


async def until_quiet_ends(broker) -> None:
    for _ in range(100):  # bounded: the windows here are 1-2 s
        if broker.rate_limited_for() == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the quiet window never ended")


# -- reading the venue's wait ------------------------------------------------------------------------
def test_the_wait_is_read_from_each_form_the_venues_give_it():
    from engine.brokers.retry import MAX_QUIET_SECONDS, retry_after_seconds

    now = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
    ms = int((now + timedelta(seconds=120)).timestamp() * 1000)
    assert retry_after_seconds({"Retry-After": "30"}, None, now) == 30
    assert retry_after_seconds({"retry-after": format_datetime(now + timedelta(seconds=45), usegmt=True)},
                               None, now) == 45
    body = f'binance 418 {{"code":-1003,"msg":"Way too much request weight used; IP banned until {ms}."}}'
    assert retry_after_seconds({}, body, now) == 120  # Binance's 418 ban, from its body
    assert retry_after_seconds({"X-Bapi-Limit-Reset-Timestamp": str(ms)}, "", now) == 120  # Bybit
    assert retry_after_seconds({"X-RateLimit-Reset": str(int(now.timestamp()) + 7)}, "", now) == 7  # Alpaca
    assert retry_after_seconds({"Retry-After": "999999"}, None, now) == MAX_QUIET_SECONDS  # bounded
    for junk in ({"Retry-After": "soon"}, {"Retry-After": "nan"}, {"Retry-After": "-5"}, {}, None):
        assert retry_after_seconds(junk, "", now) is None  # no wait named: the plain backoff


# -- the feed, polls and submits wait ------------------------------------------------------------------
async def test_the_quote_feed_sends_nothing_into_the_window(venue):
    feed = VenueFeed(venue.broker, [SYMBOL[venue.name]], CLOCK, 0.1)
    stop = asyncio.Event()
    venue.emu.ban(2)
    batches = []
    for _ in range(100):  # bounded; ~2 s of 0.1 s ticks
        batch = await asyncio.wait_for(feed.next_batch_async(stop), 5)
        batches.append(batch)
        if batch:
            break
    assert len(venue.emu.during) == 1  # the request that heard the ban; no quote poll after it
    assert len(venue.failures) == 1 and venue.broker.retrier.episodes == 1
    assert batches[-1] and batches[-1][0].symbol == SYMBOL[venue.name]  # quotes again after the window
    assert feed.held >= 5 and batches[:-1] == [[]] * (len(batches) - 1)  # the engine kept getting its ticks


async def test_polls_and_a_submit_wait_out_the_window_and_the_order_is_placed_once(venue):
    b = venue.broker
    await b.submit(venue.order("tcRL-1", limit=LIMIT[venue.name]))  # something for the polls to read
    assert [u.status for u in venue.updates("tcRL-1")] == [OrderStatus.SUBMITTED]
    venue.emu.ban(1)
    # Three at once, as the poller, the feed's engine and a balance read would: the ones in flight
    # when the venue refused are one episode; the rest wait for the window's end.
    await asyncio.wait_for(asyncio.gather(b.submit(venue.order("tcRL-2", limit=LIMIT[venue.name])),
                                          b.poll(), b.balances()), 10)
    assert 1 <= len(venue.emu.during) <= 3  # nothing sent once the window was known
    assert len(venue.failures) == 1  # one rate-limit episode, one API failure
    assert [u.status for u in venue.updates("tcRL-2")] == [OrderStatus.SUBMITTED]
    assert [o.cid for o in venue.emu.core.orders.values()] == ["tcRL-1", "tcRL-2"]  # placed once


async def test_without_a_named_wait_the_backoff_is_as_before(binance):
    binance.emu.ban(0.3, header=False)  # nothing says how long: exponential backoff, every refusal counted
    await asyncio.wait_for(binance.broker.submit(binance.order("tcRL-3", limit="40000")), 5)
    [u] = binance.updates("tcRL-3")
    assert u.status is OrderStatus.REJECTED and "rate limit" in u.reason
    assert len(binance.emu.during) == 4 and len(binance.failures) == 4  # a guard: as on the old code


# -- a ban longer than a request may wait -------------------------------------------------------------
async def test_a_long_ban_fails_stops_and_cancels_unsent_and_alerts_once(binance):
    b = binance.broker
    b.retrier.policy = dataclasses.replace(b.retrier.policy, quiet_wait_seconds=0.5)  # so 2 s is "long"
    await b.submit(binance.order("tcRL-4", limit="40000"))
    assert [u.status for u in binance.updates("tcRL-4")] == [OrderStatus.SUBMITTED]
    binance.emu.ban(2, status="418")  # Binance's IP ban
    await asyncio.wait_for(b.submit(binance.order("tcRL-5", OrderType.STOP, stop="30000")), 3)
    [u] = binance.updates("tcRL-5")
    assert u.status is OrderStatus.REJECTED and "rate limit" in u.reason  # refused at once, never hangs
    assert "not sent" in u.reason and "gave up after" not in u.reason  # says why: the venue asked for quiet
    failed = await asyncio.wait_for(b.cancel_entries(), 3)  # a halt's sweep during the ban
    assert failed == ["tcRL-4"]
    assert await asyncio.wait_for(b.cancel("tcRL-4"), 3) is False
    assert len(binance.emu.during) == 1  # only the stop's first try reached the banned venue
    assert len(binance.failures) == 1
    crit = [a for a in binance.alerts.seen if a[1] == "venue_rate_limit"]
    assert [a[0] for a in crit] == ["critical"] and "cancels and stops" in crit[0][2]
    await until_quiet_ends(b)
    assert await asyncio.wait_for(b.cancel("tcRL-4"), 3) is True  # after the ban it goes through
    assert binance.emu.core.by_cid["tcRL-4"].status == "CANCELED"


# -- a halt during a ban ---------------------------------------------------------------------------------
async def test_a_halt_in_a_ban_longer_than_its_retries_cancels_the_entries_when_the_ban_ends(binance):
    """The halt's own attempts (~3 s of backoff) all fail unsent inside a 4 s ban; it asks again
    once the venue's window ends instead of leaving the entry working while the console says
    HALTED."""
    from types import SimpleNamespace

    from engine.alerts import AlertBus
    from engine.commands import OperatorCommands

    b = binance.broker
    b.retrier.policy = dataclasses.replace(b.retrier.policy, quiet_wait_seconds=0.5)  # so 4 s is "long"
    await b.submit(binance.order("tcRL-6", limit="40000"))
    binance.emu.ban(4, status="418")
    with pytest.raises(Exception):
        await b.poll()  # the first refusal opens the window
    assert b.rate_limited_for() > 3

    class Orders:  # the engine's side of the sweep: nothing else working
        working: dict = {}

        async def process_events(self):
            b.drain_events()

    halt = SimpleNamespace(broker=b, orders=Orders(), alerts=AlertBus(), clock=CLOCK, cancels_outstanding=[])
    for name in ("_cancel_sweeps", "_cancel_entries_at_venue", "_quiet_left", "_sleep_unless_closed"):
        setattr(halt, name, getattr(OperatorCommands, name).__get__(halt))
    await asyncio.wait_for(OperatorCommands._cancel_entries_with_retry(halt, "halt"), 15)
    assert halt.cancels_outstanding == []
    assert [o.cid for o in binance.emu.core.open_orders()] == []
    (failed, done) = [(a.severity, a.kind, a.message) for a in halt.alerts.recent()][::-1]
    assert failed[:2] == ("critical", "cancel_failed") and "asked again when it ends" in failed[2]
    assert done[:2] == ("warning", "halt") and "quiet window has ended" in done[2]


def test_a_broken_hook_is_logged_and_the_venue_path_goes_on():
    import logging

    from engine.brokers.retry import Failure, Retrier, RetryPolicy, VenueError

    def broken(*_):
        raise RuntimeError("the breaker's hook is broken")

    # On the venue logger itself: a run's log setup stops "tradeconsole" records reaching the root.
    records: list[logging.LogRecord] = []
    catcher = logging.Handler(logging.ERROR)
    catcher.emit = records.append
    venue_log = logging.getLogger("tradeconsole.venue")
    venue_log.addHandler(catcher)
    try:
        r = Retrier(RetryPolicy(), on_failure=broken, on_quiet=broken, now=lambda: 100.0)
        r.note(VenueError(Failure.TIMEOUT, "timed out"), "poll")
        r.rate_limited(VenueError(Failure.RATE_LIMIT, "429"), 30, "poll")
    finally:
        venue_log.removeHandler(catcher)
    failed = [rec for rec in records if "hook failed" in rec.getMessage() and rec.exc_info]
    assert [rec.getMessage() for rec in failed] == ["venue: the API-failure hook failed on poll",
                                                   "venue: the quiet-window hook failed on poll"]
    assert r.quiet_left() == 30
