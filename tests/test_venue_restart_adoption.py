"""Orders picked up again after a restart, on the emulated venues (audit9 F4, F6).

F4: a working entry that had filled in part before the restart is booked in the journal and the
position; whatever the venue says of it later (the rest filling, a halt's cancel, the catch-up of
its trades at its end) books only what is new, each venue trade once. The engine also refuses a
fill id it has booked already (journaled as `duplicate_fill`), before and after a restart.

F6: a resting stop from before the restart that the venue cannot be asked about at start (its
lookups fail) is still tracked: the poller keeps looking, a critical alert says so if it lasts,
and when the stop fires at the venue the engine hears it."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest
from test_venues_session import KEY, SECRET, VENUES, Script, journal, set_keys, start, until, venue_profile

from engine.engine import Engine
from engine.models import Fill, OrderPurpose, Side

# The venue's stop lookups and open-orders list, failing on demand (F6).
LOOKUP = {"binance": ("GET", "/api/v3/order"), "alpaca": ("GET", "/v2/orders:by_client_order_id")}
LISTS = {"binance": ("GET", "/api/v3/openOrders"), "alpaca": ("GET", "/v2/orders")}
THROUGH_THE_STOP = {"binance": ("BTCUSDT", "45000", "45001"), "alpaca": ("AAPL", "100.00", "100.02")}


def held_at_venue(emu, name: str, symbol: str) -> Decimal:
    return VENUES[name].base(emu, symbol)


def position(eng: Engine, symbol: str) -> Decimal:
    pos = eng.portfolio.positions.get(symbol)
    return pos.quantity if pos is not None else Decimal(0)


async def entry_fills(eng: Engine, cid: str) -> list[tuple[str, str]]:
    return [(str(r.data["quantity"]), r.data["fill_id"]) for r in await journal(eng, "fill") if r.ref == cid]


@asynccontextmanager
async def restarted_with_a_part_filled_entry(tmp_path, monkeypatch, name: str):
    """A first session whose resting limit entry fills in half at the venue, booked, then stopped,
    and the engine opened again: (emulator, the second engine, the venue's entry, the position
    booked). Both are closed on the way out."""
    v = VENUES[name]
    emu = await v.emulator({KEY: SECRET}).start()
    try:
        set_keys(monkeypatch, name)
        symbol = v.symbols[0]
        profile = venue_profile(tmp_path, name, emu.url, orders={"limit_timeout_seconds": 3600})
        eng = await start(profile)
        try:
            eng.strategy = Script(rest=symbol)
            runner = asyncio.create_task(eng.run())
            await until(lambda: len(emu.core.open_orders()) == 1, "the entry resting at the venue")
            entry = emu.core.open_orders()[0]
            half = (entry.qty / 2).quantize(Decimal("1") if name == "alpaca" else Decimal("0.00001"))
            emu.core._fill(entry, half, entry.price, maker=True)
            await until(lambda: symbol in eng.portfolio.positions, "the first part booked")
            await until(lambda: len(emu.core.open_orders()) == 2, "its stop at the venue")
            booked = position(eng, symbol)
            eng.stop()
            await asyncio.wait_for(runner, 5)
        finally:
            await eng.close()
        again = await Engine.open(profile)
        try:
            yield emu, again, entry, booked
        finally:
            await again.close()
    finally:
        await emu.stop()


@pytest.mark.parametrize("name", ["binance", "bybit", "alpaca"])
async def test_a_part_filled_entry_adopted_after_a_restart_books_only_its_new_fills(tmp_path, monkeypatch, name):
    symbol = VENUES[name].symbols[0]
    async with restarted_with_a_part_filled_entry(tmp_path, monkeypatch, name) as (emu, again, entry, booked):
        assert again.reconciliation == [] and position(again, symbol) == booked
        again.strategy = Script()
        emu.core._fill(entry, entry.qty - entry.executed, entry.price, maker=True)  # the rest fills
        await again.run(duration=0.3)
        await until(lambda: entry.cid not in again.orders.working, "the entry's end heard")
        await again.run(duration=0.2)
        # The books hold what the venue holds: the part from before the restart counted once.
        assert position(again, symbol) == held_at_venue(emu, name, symbol)
        rows = await entry_fills(again, entry.cid)
        assert len(rows) == 2 and len({fid for _, fid in rows}) == 2
        assert sum(Decimal(q) for q, _ in rows) == position(again, symbol)
        assert await journal(again, "duplicate_fill") == []


async def test_a_part_filled_entry_cancelled_by_a_halt_after_a_restart_books_only_new_trades(tmp_path, monkeypatch):
    async with restarted_with_a_part_filled_entry(tmp_path, monkeypatch, "binance") as (emu, again, entry, booked):
        again.strategy = Script()
        # Another part fills after the restart, then the halt cancels the rest: the cancel's
        # catch-up reads every trade of the order, the one from before the restart too.
        quarter = (entry.qty / 4).quantize(Decimal("0.00001"))
        emu.core._fill(entry, quarter, entry.price, maker=True)
        await again.halt("test", "halt after restart")
        await again.run(duration=0.3)
        await until(lambda: entry.cid not in again.orders.working, "the entry cancelled")
        assert entry.status == "CANCELED"
        assert position(again, "BTC/USDT") == held_at_venue(emu, "binance", "BTC/USDT")
        rows = await entry_fills(again, entry.cid)
        assert len(rows) == 2 and len({fid for _, fid in rows}) == 2


async def test_a_fill_id_booked_before_the_restart_is_journaled_as_a_duplicate_not_booked(tmp_path, monkeypatch):
    async with restarted_with_a_part_filled_entry(tmp_path, monkeypatch, "binance") as (emu, again, entry, booked):
        (qty, fid), = await entry_fills(again, entry.cid)
        cash = again.portfolio.cash
        # The same venue trade told again (a broker catching up the order's trades), then a new one.
        again.orders._events.clear()
        await again.orders.process_events([
            Fill(entry.cid, "BTC/USDT", Side.BUY, Decimal(qty), entry.price, Decimal(0), again.clock.now(), "maker", fid),
            Fill(entry.cid, "BTC/USDT", Side.BUY, Decimal("0.001"), entry.price, Decimal(0), again.clock.now(), "maker",
                 "binance:new-1"),
            Fill(entry.cid, "BTC/USDT", Side.BUY, Decimal("0.001"), entry.price, Decimal(0), again.clock.now(), "maker",
                 "binance:new-1"),
        ])
        assert position(again, "BTC/USDT") == booked + Decimal("0.001")
        assert again.portfolio.cash == cash - Decimal("0.001") * entry.price
        assert [f for _, f in await entry_fills(again, entry.cid)] == [fid, "binance:new-1"]
        dups = await journal(again, "duplicate_fill")
        assert [(r.ref, r.data["fill_id"]) for r in dups] == [(entry.cid, fid), (entry.cid, "binance:new-1")]


@pytest.mark.parametrize("name", ["binance", "alpaca"])
async def test_a_restored_stop_whose_lookups_fail_is_still_heard_when_it_fires(tmp_path, monkeypatch, name):
    v = VENUES[name]
    emu = await v.emulator({KEY: SECRET}).start()
    set_keys(monkeypatch, name)
    symbol = v.symbols[0]
    profile = venue_profile(tmp_path, name, emu.url, venue={"timeouts": {"unconfirmed_grace_seconds": 0.2}},
                            breakers={"api_failure_limit": 10_000})
    try:
        eng = await start(profile)
        try:
            eng.strategy = Script(symbol)
            runner = asyncio.create_task(eng.run())
            await until(lambda: eng.orders.stop_order(symbol) is not None and len(emu.core.open_orders()) == 1,
                        "position with its stop at the venue")
            stop_id = eng.orders.stop_order(symbol).client_order_id
            eng.stop()
            await asyncio.wait_for(runner, 5)
        finally:
            await eng.close()

        # The restart's lookups of the stop fail, and so does every list of orders after the
        # reconciliation: nothing the venue says can confirm the stop for a while.
        lookups = emu.fault(*LOOKUP[name], "503", times=10_000)
        again = await Engine.open(profile)
        try:
            lists = emu.fault(*LISTS[name], "503", times=10_000)
            again.strategy = Script()
            for _ in range(100):  # bounded; a loaded host takes longer than the 0.2 s grace
                await again.run(duration=0.1)
                if any(a.kind == "restored_unconfirmed" for a in again.alerts.unacknowledged()):
                    break
            said = [a for a in again.alerts.unacknowledged() if a.kind == "restored_unconfirmed"]
            assert len(said) == 1 and stop_id in said[0].message and said[0].data.get("client_order_id") == stop_id

            lookups.times = lookups.hits  # the venue answers again
            lists.times = lists.hits
            emu.set_book(*THROUGH_THE_STOP[name])
            for _ in range(20):
                await again.run(duration=0.1)
                if stop_id not in again.orders.working:
                    break
            stop_fills = [r for r in await journal(again, "fill") if r.ref == stop_id]
            assert stop_fills and stop_fills[0].data["purpose"] == OrderPurpose.STOP.value
            assert position(again, symbol) == Decimal(0) or symbol in again.portfolio.dust
        finally:
            await again.close()
    finally:
        await emu.stop()
