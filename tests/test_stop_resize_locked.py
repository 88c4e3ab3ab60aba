"""A stop resized up on a venue that locks what a resting sell stop covers (spot: Binance, Bybit;
Alpaca's shares held for open orders): the second stop for the whole position is refused while the
first still holds part of it. The engine must not leave the rest of the position bare: it takes the
old stop off and places one for the whole position, and says so."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest
from test_venues_session import KEY, SECRET, VENUES, Script, set_keys, start, until, venue_profile

from engine.models import OrderPurpose


@dataclass
class Session:
    emu: object
    eng: object
    symbol: str
    entry: object  # the venue's order, filled in half
    first: Decimal  # what that half filled


@asynccontextmanager
async def half_filled_entry(tmp_path, monkeypatch, name: str):
    """An engine on `name`'s emulator whose resting entry filled in half, with the first half's stop
    working at the venue; stopped and closed on the way out."""
    venue = VENUES[name]
    set_keys(monkeypatch, name)
    emu = await venue.emulator({KEY: SECRET}).start()
    symbol = venue.symbols[1]  # its entry rests at the venue
    eng = await start(venue_profile(tmp_path, name, emu.url))
    try:
        eng.strategy = Script(rest=symbol)
        runner = asyncio.create_task(eng.run(duration=30))
        await until(lambda: len(emu.core.open_orders()) == 1, "the resting entry")
        entry = emu.core.open_orders()[0]
        first = (entry.qty / 2).quantize(Decimal(1) if name == "alpaca" else Decimal("0.00001"))
        emu.core._fill(entry, first, entry.price, maker=True)
        await until(lambda: any(o.stop_price for o in emu.core.open_orders()), "the first part's stop at the venue")
        yield Session(emu, eng, symbol, entry, first)
        eng.stop()
        await asyncio.wait_for(runner, 10)
    finally:
        await eng.close()
        await emu.stop()


def fill_the_rest(s: Session) -> None:
    s.emu.core._fill(s.entry, s.entry.qty - s.entry.executed, s.entry.price, maker=True)


@pytest.mark.parametrize("name", list(VENUES))
async def test_a_stop_resized_while_the_old_one_locks_the_asset_covers_the_whole_position(tmp_path, monkeypatch, name):
    async with half_filled_entry(tmp_path, monkeypatch, name) as s:
        eng, symbol = s.eng, s.symbol
        first_stop = eng.orders.stop_order(symbol).client_order_id
        fill_the_rest(s)

        def whole() -> bool:
            pos = eng.portfolio.positions.get(symbol)
            stop = eng.orders.stop_order(symbol)
            return (pos is not None and stop is not None and stop.quantity == pos.quantity
                    and stop.client_order_id != first_stop and stop.venue_order_id is not None)

        await until(whole, "one stop for the whole position")
        held = eng.portfolio.positions[symbol].quantity
        assert held > s.first
        # At the venue too: one stop, for everything held (to the venue's lot step); the first is gone.
        (at_venue,) = [o for o in s.emu.core.open_orders() if o.stop_price]
        assert at_venue.cid == eng.orders.stop_order(symbol).client_order_id
        assert s.first < at_venue.qty <= held
        assert [o.client_order_id for o in eng.orders.working.values()
                if o.symbol == symbol and o.purpose is OrderPurpose.STOP] == [eng.orders.stop_order(symbol).client_order_id]
        kinds = [a.kind for a in eng.alerts._alerts]
        assert "stop_resized_old_first" in kinds and "stop_rejected" not in kinds


async def test_an_old_stop_the_venue_will_not_cancel_leaves_a_critical_alert_naming_what_is_covered(tmp_path, monkeypatch):
    async with half_filled_entry(tmp_path, monkeypatch, "binance") as s:
        eng, symbol = s.eng, s.symbol
        old, covered = eng.orders.stop_order(symbol).client_order_id, eng.orders.stop_order(symbol).quantity
        s.emu.fault("DELETE", "/api/v3/order", "500", times=1000)
        fill_the_rest(s)
        await until(lambda: any(a.kind == "stop_partial" for a in eng.alerts._alerts), "the critical alert")
        (alert,) = [a for a in eng.alerts._alerts if a.kind == "stop_partial"]
        held = eng.portfolio.positions[symbol].quantity
        assert alert.severity == "critical" and f"covers {covered} of {held}" in alert.message
        # The old stop stays the position's stop, at the venue and in the books.
        assert eng.orders.stop_order(symbol).client_order_id == old
        assert [o.cid for o in s.emu.core.open_orders() if o.stop_price] == [old]


async def test_a_larger_stop_refused_for_another_reason_leaves_the_old_one_covering_its_part(tmp_path, monkeypatch):
    """A filter or price refusal would refuse the stop again with the old one gone: the old stop
    stays (the position covered in part, not bare), and the critical alert says what is covered."""
    async with half_filled_entry(tmp_path, monkeypatch, "binance") as s:
        eng, symbol = s.eng, s.symbol
        old, covered = eng.orders.stop_order(symbol).client_order_id, eng.orders.stop_order(symbol).quantity
        s.emu.fault("POST", "/api/v3/order", "filter", times=2)  # every stop placement from here: -1013
        fill_the_rest(s)
        await until(lambda: any(a.kind == "stop_partial" for a in eng.alerts._alerts), "the critical alert")
        held = eng.portfolio.positions[symbol].quantity
        (alert,) = [a for a in eng.alerts._alerts if a.kind == "stop_partial"]
        assert alert.severity == "critical" and f"covers {covered} of {held}" in alert.message
        assert "Filter failure" in alert.message
        assert [o.cid for o in s.emu.core.open_orders() if o.stop_price] == [old]  # still at the venue
        assert eng.orders.stop_order(symbol).client_order_id == old
        assert "stop_resized_old_first" not in [a.kind for a in eng.alerts._alerts]


@pytest.mark.parametrize("name", list(VENUES))
async def test_a_whole_stop_refused_even_with_the_old_one_off_puts_the_old_size_back(tmp_path, monkeypatch, name):
    """The venue holds less than the books (coins moved out, a fee taken in the asset): the stop for
    the whole position is refused even once the old stop is off. The position must not stay bare:
    a stop for the old size (which fitted before) goes back on, and a critical alert says what is
    covered."""
    async with half_filled_entry(tmp_path, monkeypatch, name) as s:
        eng, symbol = s.eng, s.symbol
        covered = eng.orders.stop_order(symbol).quantity
        base = s.emu.core.markets[s.entry.symbol].base
        s.emu.core.free[base] -= s.first / 2  # moved out at the venue: free is what the rest brings, less half the first
        fill_the_rest(s)
        await until(lambda: any(a.kind == "stop_partial" for a in eng.alerts._alerts), "the critical alert")
        held = eng.portfolio.positions[symbol].quantity
        stop = eng.orders.stop_order(symbol)
        await until(lambda: stop.venue_order_id is not None, "the old size's stop taken by the venue")
        assert stop.quantity == covered < held
        (at_venue,) = [o for o in s.emu.core.open_orders() if o.stop_price]  # the old size, to the venue's lot step
        assert at_venue.cid == stop.client_order_id and covered - Decimal("0.0001") < at_venue.qty <= covered
        (alert,) = [a for a in eng.alerts._alerts if a.kind == "stop_partial"]
        assert alert.severity == "critical" and f"covers {covered} of {held}" in alert.message
        assert "stop_rejected" not in [a.kind for a in eng.alerts._alerts]
