"""A cancel that races an order's submit, and a cancel whose outcome cannot be read (audit9 F1, F3).

* A halt's sweep (or any cancel) of an order whose submit is still in flight never closes it as
  "never reached the venue": the cancel is recorded, the order reported outstanding, and carried
  out once the venue answers; what it filled meanwhile is booked.
* An order the broker closed on its own word (never confirmed) that the venue shows after all is
  re-opened, booked, cancelled if it was an entry, and raised as a critical alert.
* A Bybit cancel acknowledged with ids only whose follow-up lookup fails ends nothing: the order
  stays working and the poller books its fills, then its end.
"""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from engine.models import OrderStatus, OrderType
from venue_faults_support import (CROSSING, LOOKUPS, POST, RESTING, criticals, fills, order, poll_until_quiet, until,
                                  updates, venue, venue_bought, venue_order)

ALL = ["binance", "bybit", "alpaca"]


async def _halt_during_slow_submit(name: str, emu, b, cid: str, limit: str):
    """Submit, and while the venue is still taking it (it acts 0.5 s later, then answers) run the
    halt's sweep. Returns (what the sweep left open, events during the submit, all events)."""
    emu.fault("POST", POST[name], "slow", delay=0.5, process=False)
    sub = asyncio.ensure_future(b.submit(order(name, cid, OrderType.LIMIT, limit)))
    await until(lambda: emu.count("POST", POST[name]) == 1, "submit in flight")
    left_open = await b.cancel_entries()
    during = b.drain_events()
    await asyncio.wait_for(sub, 5)
    return left_open, during, during + b.drain_events() + await poll_until_quiet(b)


@pytest.mark.parametrize("name", ALL)
async def test_a_halt_during_a_slow_submit_cancels_the_order_once_the_venue_has_it(name):
    async with venue(name) as (emu, b):
        left_open, during, ev = await _halt_during_slow_submit(name, emu, b, "tcI-1-1", RESTING[name])
        assert left_open == ["tcI-1-1"]  # in flight: outstanding, not "nothing open"
        assert updates(during) == []  # no end reported on a guess
        assert venue_order(emu, "tcI-1-1").status == "CANCELED"  # the venue's copy is gone
        assert [u.status for u in updates(ev)] == [OrderStatus.SUBMITTED, OrderStatus.CANCELLED]
        assert "never reached" not in updates(ev)[-1].reason
        assert await b.cancel_entries() == [] and not b._working


@pytest.mark.parametrize("name", ALL)
async def test_a_halt_during_a_slow_submit_that_fills_books_the_fill(name):
    async with venue(name) as (emu, b):
        left_open, during, ev = await _halt_during_slow_submit(name, emu, b, "tcI-2-1", CROSSING[name])
        assert left_open == ["tcI-2-1"] and updates(during) == []
        assert venue_order(emu, "tcI-2-1").status == "FILLED"
        assert sum(f.quantity for f in fills(ev)) == venue_bought(name, emu, "tcI-2-1") > 0
        assert [u.status for u in updates(ev)] == [OrderStatus.SUBMITTED, OrderStatus.FILLED]


@pytest.mark.parametrize("name", ["binance", "bybit"])
async def test_an_order_closed_as_never_confirmed_that_the_venue_shows_is_reopened_and_cancelled(name):
    async with venue(name, unconfirmed_grace_seconds=0.05, retries=1) as (emu, b):
        emu.fault("POST", POST[name], "503", process=False)
        for path in LOOKUPS[name]:
            emu.fault("GET", path, "503", times=2)
        await b.submit(order(name, "tcI-3-1", OrderType.LIMIT, RESTING[name]))
        assert updates(b.drain_events()) == []  # unconfirmed
        emu.faults.clear()
        await asyncio.sleep(0.06)
        await b.poll()
        [gone] = updates(b.drain_events())
        assert gone.status is OrderStatus.REJECTED and "never confirmed" in gone.reason
        # ...and yet it lands (a venue's queue): the halt's sweep lists it among the open orders.
        emu.core.place("BTCUSDT", "BUY", "LIMIT", "0.01", RESTING[name], None, "tcI-3-1", emu.now_ms())
        assert await b.cancel_entries() == []
        assert venue_order(emu, "tcI-3-1").status == "CANCELED"
        ev = b.drain_events()
        assert [u.status for u in updates(ev)] == [OrderStatus.SUBMITTED, OrderStatus.CANCELLED]
        assert criticals(b) == ["venue_late_order"]


@pytest.mark.parametrize("lands_as", ["MARKET", "LIMIT"])
async def test_alpaca_an_order_closed_as_never_confirmed_that_lands_later_is_booked_and_stopped(lands_as):
    async with venue("alpaca", unconfirmed_grace_seconds=0.05, retries=1) as (emu, b):
        await b.submit(order("alpaca", "tcI-4-1", OrderType.LIMIT, RESTING["alpaca"]))  # keeps the poll listing
        emu.fault("POST", POST["alpaca"], "503", process=False)
        emu.fault("GET", LOOKUPS["alpaca"][0], "503", times=2)
        await b.submit(order("alpaca", "tcI-4-2", OrderType[lands_as], None if lands_as == "MARKET" else "150"))
        b.drain_events()
        await asyncio.sleep(0.06)
        await b.poll()
        [gone] = updates(b.drain_events(), OrderStatus.REJECTED)
        assert gone.client_order_id == "tcI-4-2" and "never confirmed" in gone.reason
        limit = None if lands_as == "MARKET" else "150"
        emu.core.place("AAPL", "BUY", lands_as, "10", limit, None, "tcI-4-2", emu.now_ms())  # it lands after all
        await b.poll()
        await until(lambda: venue_order(emu, "tcI-4-2").status != "NEW", "the entry given up is cancelled")
        await b.poll()
        late = [e for e in b.drain_events() if getattr(e, "client_order_id", "") == "tcI-4-2"]
        end = OrderStatus.FILLED if lands_as == "MARKET" else OrderStatus.CANCELLED
        assert [u.status for u in updates(late)] == [OrderStatus.SUBMITTED, end]
        assert sum(f.quantity for f in fills(late)) == venue_order(emu, "tcI-4-2").executed
        assert criticals(b) == ["venue_late_order"]


async def test_bybit_cancel_whose_lookup_fails_stays_working_until_the_poller_books_its_fills():
    async with venue("bybit", request_seconds=0.5) as (emu, b):
        await b.submit(order("bybit", "tcI-5-1", OrderType.LIMIT, "49000"))
        b.drain_events()
        o = venue_order(emu, "tcI-5-1")
        emu.core._fill(o, Decimal("0.005"), Decimal("49000"), maker=True)  # between two polls
        for path in LOOKUPS["bybit"]:
            emu.fault("GET", path, "500", times=10)
        assert await b.cancel("tcI-5-1") is False  # acknowledged, outcome unknown
        assert updates(b.drain_events()) == []  # no end on made-up numbers
        assert "tcI-5-1" in b._working
        emu.faults.clear()
        ev = await poll_until_quiet(b)
        assert sum(f.quantity for f in fills(ev)) == venue_bought("bybit", emu, "tcI-5-1") > 0
        assert [u.status for u in updates(ev)] == [OrderStatus.CANCELLED]
        assert ev.index(updates(ev)[0]) > ev.index(fills(ev)[-1])  # the fills before the end


# -- through the engine ----------------------------------------------------------------------------
def _venue_btc(emu) -> Decimal:
    return Decimal(emu.core.free.get("BTC", 0)) + Decimal(emu.core.locked.get("BTC", 0))


async def test_engine_halt_during_a_slow_entry_submit_books_what_the_venue_filled(tmp_path, monkeypatch):
    from emulators.binance import BinanceEmulator
    from test_venues_session import KEY, SECRET, Script, set_keys, start, venue_profile
    from test_venues_session import until as session_until

    set_keys(monkeypatch, "binance")
    emu = await BinanceEmulator({KEY: SECRET}).start()
    eng = await start(venue_profile(tmp_path, "binance", emu.url))
    try:
        emu.fault("POST", "/api/v3/order", "slow", delay=1.0, process=False)  # takes it 1 s later
        eng.strategy = Script("BTC/USDT")  # a limit through the ask: it fills when the venue takes it
        runner = asyncio.create_task(eng.run(duration=2.5))
        await session_until(lambda: emu.count("POST", "/api/v3/order") == 1, "entry in flight")
        await eng.halt("operator", "halt during a slow submit")
        await asyncio.wait_for(runner, 10)
        [entry] = [o for o in emu.core.orders.values() if o.type == "LIMIT"]
        assert entry.status == "FILLED"
        assert eng.orders.orders[entry.cid].status is OrderStatus.FILLED
        assert eng.portfolio.positions["BTC/USDT"].quantity == _venue_btc(emu) > 0  # booked, not lost
        assert [o.type for o in emu.core.open_orders()] == ["STOP"]  # and protected
        assert eng.cancels_outstanding == []
    finally:
        await eng.close()
        await emu.stop()


async def test_engine_bybit_limit_timeout_whose_cancel_lookup_fails_books_the_partial_fill(tmp_path, monkeypatch):
    from emulators.bybit import BybitEmulator
    from test_venues_session import KEY, SECRET, Script, set_keys, start, venue_profile
    from test_venues_session import until as session_until

    set_keys(monkeypatch, "bybit")
    emu = await BybitEmulator({KEY: SECRET}).start()
    eng = await start(venue_profile(tmp_path, "bybit", emu.url, orders={"limit_timeout_seconds": 1.0}))
    try:
        eng.strategy = Script(rest="BTC/USDT")
        runner = asyncio.create_task(eng.run(duration=3.5))
        await session_until(lambda: len(emu.core.open_orders()) == 1, "resting entry")
        entry = emu.core.open_orders()[0]
        for path in ("/v5/execution/list", *LOOKUPS["bybit"]):
            emu.fault("GET", path, "502", times=10**6)  # Bybit's order and trade queries down a while
        emu.core._fill(entry, (entry.qty / 2).quantize(Decimal("0.000001")), entry.price, maker=True)
        await session_until(lambda: emu.count("POST", "/v5/order/cancel") >= 1, "limit timeout cancel")
        await asyncio.sleep(0.5)
        emu.faults.clear()
        await asyncio.wait_for(runner, 10)
        assert entry.status == "CANCELED" and entry.executed > 0
        assert eng.orders.orders[entry.cid].filled_qty > 0  # the part filled before the cancel
        held = eng.portfolio.positions["BTC/USDT"].quantity
        assert held == _venue_btc(emu)  # the books hold what the venue holds
    finally:
        await eng.close()
        await emu.stop()
