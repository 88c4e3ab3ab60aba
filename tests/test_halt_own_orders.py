"""A halt's sweep at a real venue (`broker.cancel_entries()`, what `Engine.halt` calls) cancels the
engine's own entries only: the ones it tracks, and the ones it lost track of whose client id is of
the profile's family ("tc<tag>-<session>-<n>", engine/orders.py `new_id`; an entry placed before a
restart, another session's). Every other order on the account (the trader's own, placed by hand
on the venue's website; another bot's; another profile's) is left working, never adopted, and a
`venue_foreign_orders` warning says once per halt how many were left. Run against the loopback
emulators of Binance, Bybit and Alpaca (tests/emulators), asserting what stays open there."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from venue_faults_support import CLOCK, RESTING, SYMBOL, order, updates, venue, venue_order

from engine.models import Order, OrderPurpose, OrderStatus, OrderType, Side

VENUES = ["binance", "bybit", "alpaca"]
# The venue's own symbol (emulator) for the profile's two symbols.
SYM = {"binance": ("BTCUSDT", "ETHUSDT"), "bybit": ("BTCUSDT", "ETHUSDT"), "alpaca": ("AAPL", "MSFT")}
OTHER_PRICE = {"binance": "2500", "bybit": "2500", "alpaca": "300"}
OTHER_QTY = {"binance": "0.1", "bybit": "0.1", "alpaca": "1"}
CANCEL = {"binance": ("DELETE", "/api/v3/order"), "bybit": ("POST", "/v5/order/cancel")}

OURS = "tcab12-7-1"  # this session's resting entry, tracked
OURS_BEFORE = "tcab12-6-4"  # the same profile's entry from before a restart: the venue has it, this broker does not
FOREIGN = ["web_tp_by_hand_1", "otherbot-77", "tc9b9b-1-1"]  # the trader's, another bot's, another profile's


def place_foreign(name: str, emu) -> None:
    """The trader's hand-placed take-profit on the venue's website (a sell of what they hold),
    another bot's buy in the other symbol, and an order of another tradeconsole profile."""
    main, other = SYM[name]
    held = "AAPL" if name == "alpaca" else "BTC"
    emu.core.free[held] = Decimal("100") if name == "alpaca" else Decimal("0.05")
    emu.core.place(main, "SELL", "LIMIT", "1" if name == "alpaca" else "0.01",
                   "250" if name == "alpaca" else "60000", None, "web_tp_by_hand_1", emu.now_ms())
    emu.core.place(other, "BUY", "LIMIT", OTHER_QTY[name], OTHER_PRICE[name], None, "otherbot-77", emu.now_ms())
    emu.core.place(main, "BUY", "LIMIT", "1" if name == "alpaca" else "0.01", RESTING[name], None, "tc9b9b-1-1",
                   emu.now_ms())


def place_ours_before_restart(name: str, emu) -> None:
    emu.core.place(SYM[name][0], "BUY", "LIMIT", "1" if name == "alpaca" else "0.01", RESTING[name], None,
                   OURS_BEFORE, emu.now_ms())


def foreign_alerts(b) -> list:
    return [a for a in b.alerts.recent(200) if a.kind == "venue_foreign_orders"]


def assert_foreign_left_working(emu, b) -> None:
    for cid in FOREIGN:
        assert venue_order(emu, cid).open, f"{cid} was cancelled: not the engine's order"
        assert cid not in b._tracks  # never adopted: its fills and end are not the engine's to book


@pytest.mark.parametrize("name", VENUES)
async def test_the_sweep_cancels_our_entries_and_leaves_the_traders_and_other_bots_orders(name):
    async with venue(name) as (emu, b):
        await b.submit(order(name, OURS, OrderType.LIMIT, RESTING[name]))
        place_ours_before_restart(name, emu)
        place_foreign(name, emu)
        b.drain_events()
        assert await b.cancel_entries() == []
        assert venue_order(emu, OURS).status == "CANCELED"
        assert venue_order(emu, OURS_BEFORE).status == "CANCELED"  # ours, lost track of: still swept
        assert_foreign_left_working(emu, b)
        assert {u.client_order_id for u in updates(b.drain_events(), OrderStatus.CANCELLED)} == {OURS, OURS_BEFORE}
        [said] = foreign_alerts(b)
        assert said.severity == "warning" and said.data["count"] == 3 and said.data["venue"] == name
        assert "3 open orders" in said.message and "web_tp_by_hand_1" in said.message
        assert "otherbot-77" in said.message and OURS not in said.message


@pytest.mark.parametrize("name", VENUES)
async def test_after_a_restart_the_family_comes_from_a_restored_stop(name):
    """A new broker that tracks only the stop the journal restored (nothing sent yet this session):
    the entry of an earlier session is still ours and swept, the stop stays, the rest is left."""
    async with venue(name) as (emu, b):
        main = SYM[name][0]
        qty = Decimal("5") if name == "alpaca" else Decimal("0.02")
        stop_px = Decimal("170") if name == "alpaca" else Decimal("45000")
        emu.core.free["AAPL" if name == "alpaca" else "BTC"] = qty * 30
        emu.core.place(main, "SELL", "STOP", qty, None, stop_px, "tcab12-6-2", emu.now_ms())
        b.track_restored(Order("tcab12-6-2", SYMBOL[name], Side.SELL, OrderType.STOP, qty, OrderPurpose.STOP,
                               CLOCK.now(), stop_price=stop_px), set())
        await b.confirm_restored()
        place_ours_before_restart(name, emu)
        place_foreign(name, emu)
        b.drain_events()
        assert await b.cancel_entries() == []
        assert venue_order(emu, OURS_BEFORE).status == "CANCELED"
        assert venue_order(emu, "tcab12-6-2").open  # the position's stop is never touched
        assert_foreign_left_working(emu, b)
        assert [a.data["count"] for a in foreign_alerts(b)] == [3]


@pytest.mark.parametrize("name", VENUES)
async def test_foreign_orders_are_said_once_per_halt_not_once_per_retry(name):
    """A halt sweeps again while one of ours fails to cancel (commands.py's retries): the foreign
    orders are said on the first sweep only; the next halt says them again."""
    async with venue(name) as (emu, b):
        await b.submit(order(name, OURS, OrderType.LIMIT, RESTING[name]))
        place_foreign(name, emu)
        b.drain_events()
        if name == "alpaca":
            emu.fault("DELETE", f"/v2/orders/{emu._uuid(venue_order(emu, OURS))}", "503", times=50)
        else:
            emu.fault(*CANCEL[name], "503", times=50)
        assert await b.cancel_entries() == [OURS]  # the halt's first sweep: ours still open
        assert len(foreign_alerts(b)) == 1
        emu.faults.clear()
        assert await b.cancel_entries() == []  # its retry
        assert venue_order(emu, OURS).status == "CANCELED"
        assert len(foreign_alerts(b)) == 1  # not said again within the same halt
        assert_foreign_left_working(emu, b)
        assert await b.cancel_entries() == []  # the next halt (or close-all)
        assert len(foreign_alerts(b)) == 2
        assert_foreign_left_working(emu, b)


@pytest.mark.parametrize("name", VENUES)
async def test_a_first_sweep_knowing_no_family_takes_ids_of_exactly_the_engines_form(name):
    """A start that comes up halted sweeps before the journal's orders are handed to the broker:
    nothing is tracked, no family known. An id of exactly what `new_id` makes is still ours (an
    entry the journal never knew); the trader's and the other bot's orders are left all the same."""
    async with venue(name) as (emu, b):
        emu.core.place(SYM[name][0], "BUY", "LIMIT", "1" if name == "alpaca" else "0.01", RESTING[name], None,
                       "tc3f2a-6-4", emu.now_ms())
        place_foreign(name, emu)
        assert await b.cancel_entries() == []
        assert venue_order(emu, "tc3f2a-6-4").status == "CANCELED"
        assert venue_order(emu, "tc9b9b-1-1").status == "CANCELED"  # of the engine's form: taken as ours here
        for cid in FOREIGN[:2]:
            assert venue_order(emu, cid).open and cid not in b._tracks
        assert [a.data["count"] for a in foreign_alerts(b)] == [2]


@pytest.mark.parametrize("name", VENUES)
async def test_a_first_sweep_told_the_profiles_family_leaves_another_profiles_orders(name):
    """The engine tells the broker its family when it wires it (venue_wiring.py): a start that
    comes up halted sweeps before anything is tracked, and still leaves another tradeconsole
    profile's entries on the same account alone."""
    async with venue(name) as (emu, b):
        b.own_family = "tc3f2a-"
        emu.core.place(SYM[name][0], "BUY", "LIMIT", "1" if name == "alpaca" else "0.01", RESTING[name], None,
                       "tc3f2a-6-4", emu.now_ms())
        place_foreign(name, emu)
        assert await b.cancel_entries() == []
        assert venue_order(emu, "tc3f2a-6-4").status == "CANCELED"
        for cid in FOREIGN:
            assert venue_order(emu, cid).open and cid not in b._tracks
        assert [a.data["count"] for a in foreign_alerts(b)] == [3]


@pytest.mark.parametrize("name", VENUES)
async def test_an_engine_halt_at_the_venue_leaves_the_traders_orders_and_says_so_once(tmp_path, monkeypatch, name):
    """The whole path: `Engine.open` on the testnet profile (its real client ids), an entry filled
    with its stop and one resting; the trader's own order and another bot's rest on the same
    account. `Engine.halt` cancels the resting entry only; the stop and the foreign orders stay, and
    the engine's alert feed says once how many foreign orders were left working."""
    from test_venues_session import KEY, SECRET, VENUES as SESSION, Script, set_keys, start, until as until_
    from test_venues_session import venue_profile

    v = SESSION[name]
    emu = await v.emulator({KEY: SECRET}).start()
    set_keys(monkeypatch, name)
    eng = await start(venue_profile(tmp_path, name, emu.url))
    runner = None
    try:
        fills_sym, rest_sym = v.symbols
        eng.strategy = Script(fills_sym, rest_sym)
        runner = asyncio.create_task(eng.run())
        await until_(lambda: eng.orders.stop_order(fills_sym) is not None
                     and any(o.purpose is OrderPurpose.ENTRY for o in eng.orders.working.values()),
                     "entry filled, its stop placed, the other entry resting")
        await until_(lambda: len(emu.core.open_orders()) == 2, "the stop and the resting entry at the venue")
        stop = eng.orders.stop_order(fills_sym)
        (resting,) = [o for o in eng.orders.working.values() if o.purpose is OrderPurpose.ENTRY]
        main, other = SYM[name]
        emu.core.place(main, "BUY", "LIMIT", "1" if name == "alpaca" else "0.01", RESTING[name], None,
                       "web_buy_dip_1", emu.now_ms())  # the trader's, by hand on the website
        emu.core.place(other, "BUY", "LIMIT", OTHER_QTY[name], OTHER_PRICE[name], None, "otherbot-77", emu.now_ms())

        assert eng.broker.own_family == eng.orders.id_prefix.rsplit("-", 2)[0] + "-"  # told at wiring
        await eng.halt("operator", "halt test")
        assert emu.core.by_cid[resting.client_order_id].status == "CANCELED"
        assert {o.cid for o in emu.core.open_orders()} == {stop.client_order_id, "web_buy_dip_1", "otherbot-77"}
        assert eng.cancels_outstanding == []
        said = [a for a in eng.alerts.recent(200) if a.kind == "venue_foreign_orders"]
        assert len(said) == 1 and said[0].severity == "warning" and said[0].data["count"] == 2
        assert "web_buy_dip_1" in said[0].message and "otherbot-77" in said[0].message
    finally:
        if runner is not None:
            eng.stop()
            await asyncio.wait_for(runner, 5)
        await eng.close()
        await emu.stop()


async def test_a_halt_whose_last_sweep_still_failed_does_not_silence_the_next(monkeypatch):
    """One halt's retried sweeps share one warning; a later halt (past FOREIGN_SAID_FOR) says it
    again even though the first halt's last sweep still had a cancel failing."""
    import engine.brokers.polling as polling

    async with venue("binance") as (emu, b):
        foreign = [("otherbot-77", "BTCUSDT")]
        b._say_foreign(foreign, ["tcab12-7-1"])  # the first sweep of a halt: said
        b._say_foreign(foreign, ["tcab12-7-1"])  # its retry, still failing: not again
        assert len(foreign_alerts(b)) == 1
        now = b.clock.monotonic()
        monkeypatch.setattr(b.clock, "monotonic", lambda: now + polling.FOREIGN_SAID_FOR + 1)
        b._say_foreign(foreign, ["tcab12-7-1"])  # the next halt, a minute on
        assert len(foreign_alerts(b)) == 2
