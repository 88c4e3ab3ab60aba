"""A stop resized up on a venue that locks what a resting sell stop covers (spot: Binance, Bybit;
Alpaca's shares held for open orders): the second stop for the whole position is refused while the
first still holds part of it. The engine must not leave the rest of the position bare: it takes the
old stop off and places one for the whole position, and says so."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from test_venues_session import KEY, SECRET, VENUES, Script, set_keys, start, until, venue_profile

from engine.models import OrderPurpose


@pytest.mark.parametrize("name", list(VENUES))
async def test_a_stop_resized_while_the_old_one_locks_the_asset_covers_the_whole_position(tmp_path, monkeypatch, name):
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
        first_stop = eng.orders.stop_order(symbol).client_order_id
        emu.core._fill(entry, entry.qty - entry.executed, entry.price, maker=True)

        def whole() -> bool:
            pos = eng.portfolio.positions.get(symbol)
            stop = eng.orders.stop_order(symbol)
            return (pos is not None and stop is not None and stop.quantity == pos.quantity
                    and stop.client_order_id != first_stop and stop.venue_order_id is not None)

        await until(whole, "one stop for the whole position")
        held = eng.portfolio.positions[symbol].quantity
        assert held > first
        # At the venue too: one stop, for everything held (to the venue's lot step); the first is gone.
        (at_venue,) = [o for o in emu.core.open_orders() if o.stop_price]
        assert at_venue.cid == eng.orders.stop_order(symbol).client_order_id
        assert first < at_venue.qty <= held
        assert [o.client_order_id for o in eng.orders.working.values()
                if o.symbol == symbol and o.purpose is OrderPurpose.STOP] == [eng.orders.stop_order(symbol).client_order_id]
        kinds = [a.kind for a in eng.alerts._alerts]
        assert "stop_resized_old_first" in kinds and "stop_rejected" not in kinds
        eng.stop()
        await asyncio.wait_for(runner, 10)
    finally:
        await eng.close()
        await emu.stop()


async def test_an_old_stop_the_venue_will_not_cancel_leaves_a_critical_alert_naming_what_is_covered(tmp_path, monkeypatch):
    venue = VENUES["binance"]
    set_keys(monkeypatch, "binance")
    emu = await venue.emulator({KEY: SECRET}).start()
    symbol = venue.symbols[1]
    eng = await start(venue_profile(tmp_path, "binance", emu.url))
    try:
        eng.strategy = Script(rest=symbol)
        runner = asyncio.create_task(eng.run(duration=30))
        await until(lambda: len(emu.core.open_orders()) == 1, "the resting entry")
        entry = emu.core.open_orders()[0]
        emu.core._fill(entry, (entry.qty / 2).quantize(Decimal("0.00001")), entry.price, maker=True)
        await until(lambda: any(o.stop_price for o in emu.core.open_orders()), "the first part's stop at the venue")
        old, covered = eng.orders.stop_order(symbol).client_order_id, eng.orders.stop_order(symbol).quantity
        emu.fault("DELETE", "/api/v3/order", "500", times=1000)
        emu.core._fill(entry, entry.qty - entry.executed, entry.price, maker=True)
        await until(lambda: any(a.kind == "stop_partial" for a in eng.alerts._alerts), "the critical alert")
        (alert,) = [a for a in eng.alerts._alerts if a.kind == "stop_partial"]
        held = eng.portfolio.positions[symbol].quantity
        assert alert.severity == "critical" and f"covers {covered} of {held}" in alert.message
        # The old stop stays the position's stop, at the venue and in the books.
        assert eng.orders.stop_order(symbol).client_order_id == old
        assert [o.cid for o in emu.core.open_orders() if o.stop_price] == [old]
        eng.stop()
        await asyncio.wait_for(runner, 10)
    finally:
        await eng.close()
        await emu.stop()


async def test_a_larger_stop_refused_for_another_reason_leaves_the_old_one_covering_its_part(tmp_path, monkeypatch):
    """A filter or price refusal would refuse the stop again with the old one gone: the old stop
    stays (the position covered in part, not bare), and the critical alert says what is covered."""
    venue = VENUES["binance"]
    set_keys(monkeypatch, "binance")
    emu = await venue.emulator({KEY: SECRET}).start()
    symbol = venue.symbols[1]
    eng = await start(venue_profile(tmp_path, "binance", emu.url))
    try:
        eng.strategy = Script(rest=symbol)
        runner = asyncio.create_task(eng.run(duration=30))
        await until(lambda: len(emu.core.open_orders()) == 1, "the resting entry")
        entry = emu.core.open_orders()[0]
        emu.core._fill(entry, (entry.qty / 2).quantize(Decimal("0.00001")), entry.price, maker=True)
        await until(lambda: any(o.stop_price for o in emu.core.open_orders()), "the first part's stop at the venue")
        old, covered = eng.orders.stop_order(symbol).client_order_id, eng.orders.stop_order(symbol).quantity
        emu.fault("POST", "/api/v3/order", "filter", times=2)  # every stop placement from here: -1013
        emu.core._fill(entry, entry.qty - entry.executed, entry.price, maker=True)
        await until(lambda: any(a.kind == "stop_partial" for a in eng.alerts._alerts), "the critical alert")
        held = eng.portfolio.positions[symbol].quantity
        (alert,) = [a for a in eng.alerts._alerts if a.kind == "stop_partial"]
        assert alert.severity == "critical" and f"covers {covered} of {held}" in alert.message
        assert "Filter failure" in alert.message
        assert [o.cid for o in emu.core.open_orders() if o.stop_price] == [old]  # still at the venue
        assert eng.orders.stop_order(symbol).client_order_id == old
        assert "stop_resized_old_first" not in [a.kind for a in eng.alerts._alerts]
        eng.stop()
        await asyncio.wait_for(runner, 10)
    finally:
        await eng.close()
        await emu.stop()
