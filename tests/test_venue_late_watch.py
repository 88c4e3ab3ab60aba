"""Orders a broker closed on its own word, watched for a while in case the venue shows them after all
(review11 F3, F5), on each emulated venue.

F3: an order given up as "never confirmed" that the venue's queue places later is heard with
nothing else working: the poll round looks it up by client id (the late watch), re-opens it,
books its fills and raises the critical `venue_late_order`. Before, nothing ever looked again.

F5: a restored order the venue has no such order for leaves the broker's working set (before, it
was looked up every round for the life of the process); a late appearance within the watch is
re-opened all the same, and so is one the operator marked closed (`close_restored`).

The grace and the watch run on the broker's injectable clock (its monotonic time moved by hand)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from venue_faults_support import CLOCK, CROSSING, LOOKUPS, POST, QTY, SYMBOL, fills, order, updates, venue

from engine.brokers.polling import LATE_WATCH_GRACES
from engine.clock import WallClock
from engine.models import Order, OrderPurpose, OrderStatus, OrderType, Side

GRACE = 30
VENUE_SYMBOL = {"binance": "BTCUSDT", "bybit": "BTCUSDT", "alpaca": "AAPL"}


class HandClock(WallClock):
    """Wall time for what the venue compares (trade cursors); monotonic time moved by hand."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def monotonic(self) -> float:
        return super().monotonic() + self.ahead


def lookups(name: str, emu) -> int:
    return sum(emu.count("GET", p) for p in LOOKUPS[name])


def land(name: str, emu, cid: str) -> None:
    """The venue places the order late, crossing the book: it fills at once."""
    price = None if name == "alpaca" else CROSSING[name]
    emu.core.place(VENUE_SYMBOL[name], "BUY", "MARKET" if name == "alpaca" else "LIMIT", QTY[name], price, None, cid,
                   emu.now_ms())


async def never_confirmed(name: str, emu, b, cid: str) -> None:
    """A submit whose outcome stays unknown (the create and its lookups fail, unprocessed), given
    up as never confirmed once the grace has passed."""
    emu.fault("POST", POST[name], "503", process=False)
    for path in LOOKUPS[name]:
        emu.fault("GET", path, "503", times=2)
    await b.submit(order(name, cid, OrderType.MARKET if name == "alpaca" else OrderType.LIMIT,
                         None if name == "alpaca" else CROSSING[name]))
    emu.faults.clear()
    b.clock.ahead += GRACE + 1
    await b.poll()
    [gone] = updates(b.drain_events(), OrderStatus.REJECTED)
    assert "never confirmed" in gone.reason and not b._working


def restored(name: str, cid: str) -> Order:
    return Order(cid, SYMBOL[name], Side.BUY, OrderType.LIMIT, Decimal(QTY[name]), OrderPurpose.ENTRY, CLOCK.now(),
                 limit_price=Decimal(CROSSING[name]), status=OrderStatus.SUBMITTED)


async def restore_missing(name: str, b, cid: str) -> None:
    """A restored order (the journal's, placed by an earlier broker) the venue has no such order for."""
    b.clock = HandClock()
    b.track_restored(restored(name, cid), set())
    await b.confirm_restored()


def assert_reopened_and_booked(name: str, emu, b, cid: str, events) -> None:
    mine = [e for e in events if getattr(e, "client_order_id", "") == cid]
    ups = updates(mine)
    assert ups[0].reopened and ups[0].status is OrderStatus.SUBMITTED
    assert ups[-1].status is OrderStatus.FILLED
    assert sum(f.quantity for f in fills(mine)) > 0
    assert sum(f.quantity for f in fills(mine)) == (Decimal(QTY[name]) if name == "alpaca" else
                                                   emu.core.free["BTC"] + emu.core.locked["BTC"])
    assert [a.kind for a in b.alerts.unacknowledged()] == ["venue_late_order"]


@pytest.mark.parametrize("name", ["binance", "bybit", "alpaca"])
async def test_an_order_given_up_as_never_confirmed_that_lands_later_is_booked(name):
    async with venue(name, unconfirmed_grace_seconds=GRACE, retries=1) as (emu, b):
        b.clock = HandClock()
        await never_confirmed(name, emu, b, "tcL-1-1")
        land(name, emu, "tcL-1-1")  # nothing else of ours is working
        b.clock.ahead += GRACE  # well inside the watch
        await b.poll()
        await b.poll()
        assert_reopened_and_booked(name, emu, b, "tcL-1-1", b.drain_events())
        assert "tcL-1-1" not in b.late_watch


@pytest.mark.parametrize("name", ["binance", "bybit", "alpaca"])
async def test_the_late_watch_ends_after_its_time(name):
    async with venue(name, unconfirmed_grace_seconds=GRACE, retries=1) as (emu, b):
        b.clock = HandClock()
        await never_confirmed(name, emu, b, "tcL-2-1")
        before = lookups(name, emu)
        await b.poll()
        assert lookups(name, emu) - before == len(LOOKUPS[name])  # one lookup a round while watched
        b.clock.ahead += LATE_WATCH_GRACES * GRACE
        before = lookups(name, emu)
        for _ in range(3):
            await b.poll()
        assert lookups(name, emu) == before and not b.late_watch
        assert b.drain_events() == []


async def test_ccxt_open_listing_reopens_an_order_given_up_when_its_lookup_fails():
    async with venue("binance", unconfirmed_grace_seconds=GRACE, retries=1) as (emu, b):
        b.clock = HandClock()
        await never_confirmed("binance", emu, b, "tcL-3-1")
        await b.submit(order("binance", "tcL-3-2", OrderType.LIMIT, "40000"))  # working: its symbol is polled
        emu.core.place("BTCUSDT", "BUY", "LIMIT", "0.01", "40000", None, "tcL-3-1", emu.now_ms())  # rests
        emu.fault("GET", "/api/v3/order", "503", times=2)  # the late watch's lookup fails this round
        b.drain_events()
        await b.poll()
        ups = [u for u in updates(b.drain_events()) if u.client_order_id == "tcL-3-1"]
        assert ups and ups[0].reopened
        # An entry the engine had given up trades no further: cancelled once found.
        assert ups[-1].status is OrderStatus.CANCELLED and emu.core.by_cid["tcL-3-1"].status == "CANCELED"
        assert "tcL-3-1" not in b.late_watch and [a.kind for a in b.alerts.unacknowledged()] == ["venue_late_order"]


@pytest.mark.parametrize("name", ["binance", "bybit", "alpaca"])
async def test_a_restored_order_the_venue_has_none_of_is_no_longer_polled(name):
    async with venue(name, unconfirmed_grace_seconds=GRACE) as (emu, b):
        await restore_missing(name, b, "tc1-1-9")
        assert "tc1-1-9" not in b._working and "tc1-1-9" not in b.restored_pending
        assert b.drain_events() == []  # the reconciliation lists it; the operator's answer ends it
        b.clock.ahead += LATE_WATCH_GRACES * GRACE + 1
        before = lookups(name, emu)
        for _ in range(5):
            await b.poll()
        assert lookups(name, emu) == before
        assert not b.close_restored("tc1-1-9")  # ended already: marking it closed finds nothing to end


@pytest.mark.parametrize("name", ["binance", "bybit", "alpaca"])
async def test_a_restored_order_said_missing_that_shows_up_later_is_reopened(name):
    async with venue(name, unconfirmed_grace_seconds=GRACE) as (emu, b):
        await restore_missing(name, b, "tc1-1-8")
        land(name, emu, "tc1-1-8")
        await b.poll()
        assert_reopened_and_booked(name, emu, b, "tc1-1-8", b.drain_events())


@pytest.mark.parametrize("name", ["binance", "alpaca"])
async def test_a_restored_order_marked_closed_before_the_venue_answered_ends_in_the_broker(name):
    async with venue(name, unconfirmed_grace_seconds=GRACE, retries=0) as (emu, b):
        b.clock = HandClock()
        b.track_restored(restored(name, "tc1-1-6"), set())
        emu.fault("GET", LOOKUPS[name][0], "503")
        await b.confirm_restored()
        assert "tc1-1-6" in b.restored_pending  # not answered yet
        assert b.close_restored("tc1-1-6")  # the operator's mark closed
        assert "tc1-1-6" not in b._working and "tc1-1-6" not in b.restored_pending
        land(name, emu, "tc1-1-6")
        await b.poll()
        assert_reopened_and_booked(name, emu, b, "tc1-1-6", b.drain_events())
