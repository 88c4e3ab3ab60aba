"""`a` (approve) and `d` (cancel order) act in place, with no dialog naming the row: they must act
only on a row the operator has seen selected. After one answer the next row is not actable until it
has been on screen (KeyedTable.STEADY_SECONDS, with no press meanwhile), so a double tap or a held key
answers one order, not two; and a chosen row that leaves, even through an empty queue, makes the
next press a warning, not an answer for the order that came in its place."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from conftest import ANY_READINESS, LOOSE_RISK
from console.app import TradeConsoleApp
from console.widgets._table import KeyedTable
from test_console_keys import told, until
from engine.operator import ManualOrderSpec

SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD")


@pytest.fixture
async def desk(make_profile, open_engine):
    """The strategy silenced; `waiting` manual orders in the approval queue (or, with
    approval=False, working limit entries far from the market)."""

    async def make(waiting: tuple[str, ...], approval: bool = True):
        profile = make_profile(approval={"required": approval, "timeout_seconds": 86400},
                               risk={**LOOSE_RISK, **ANY_READINESS}, orders={"limit_timeout_seconds": 7200})
        eng = await open_engine(profile, seed=5)
        eng.strategy.on_quote = lambda q, pos: None
        await eng.run(duration=30)
        for symbol in waiting:
            await order(eng, symbol, limit=not approval)
        return eng

    return make


async def order(eng, symbol: str, limit: bool = False) -> None:
    kind = {}
    if limit:
        kind = {"type": "limit", "limit_price": (eng.quotes[symbol].bid * D("0.99")).quantize(D("0.01"))}
    assert await eng.submit_manual(ManualOrderSpec(symbol, "buy", risk_usd=D(20), **kind)) is None


def waiting(eng) -> set[str]:
    return {a.client_order_id for a in eng.snapshot().approvals}


async def test_a_double_tap_or_a_held_a_approves_one_order_not_the_next(desk):
    eng = await desk(SYMBOLS)
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        table = app.approvals.table
        await until(pilot, lambda: len(table.row_keys) == 3 and table.ready())
        first = table.selected_key()
        await pilot.press("a", "a")  # one burst: a bounce, or a finger resting on the key
        await until(pilot, lambda: first not in table.row_keys)
        await pilot.press("a")
        await pilot.pause(0.1)
        assert len(waiting(eng)) == 2 and first not in waiting(eng)
        # Held down: repeats every 50 ms for a second, each restarting the wait. Nothing more goes.
        for _ in range(20):
            await pilot.press("a")
            await pilot.pause(0.05)
        assert len(waiting(eng)) == 2
        assert told(app, "only just been shown")
        # Let go, read, press: the row on screen is approved.
        second = table.selected_key()
        await until(pilot, table.ready)
        await pilot.press("a")
        await until(pilot, lambda: second not in waiting(eng))
        assert len(waiting(eng)) == 1


async def test_a_row_the_operator_moved_to_is_theirs_at_once(desk):
    eng = await desk(SYMBOLS[:2])
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        table = app.approvals.table
        await until(pilot, lambda: len(table.row_keys) == 2)
        second = table.row_keys[1]
        table.focus()
        await pilot.press("down", "a")  # at once, on the row the operator moved to
        await until(pilot, lambda: second not in waiting(eng))
        assert len(waiting(eng)) == 1


async def test_the_chosen_order_gone_through_an_empty_queue_is_not_replaced_by_the_next(desk):
    eng = await desk(SYMBOLS[:1])
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        table = app.approvals.table
        await until(pilot, lambda: len(table.row_keys) == 1 and table.ready())
        chosen = table.selected_key()
        assert await eng.reject(chosen, "answered from another shell")  # or its deadline passed
        app.refresh_snapshot()
        await until(pilot, lambda: not table.row_keys)  # one refresh shows the queue empty
        await order(eng, SYMBOLS[1])
        app.refresh_snapshot()
        await until(pilot, lambda: len(table.row_keys) == 1)
        newcomer = table.selected_key()
        await pilot.pause(KeyedTable.STEADY_SECONDS + 0.1)  # on screen a while: still not the one chosen
        await pilot.press("a")  # meant for the order that left
        await until(pilot, lambda: told(app, "you had selected is gone"))
        assert newcomer in waiting(eng)
        await pilot.press("a")  # told, and on screen: now it is the operator's choice
        await until(pilot, lambda: newcomer not in waiting(eng))


async def test_d_twice_cancels_one_entry_not_the_next(desk):
    eng = await desk(SYMBOLS, approval=False)
    entries = {o.client_order_id for o in eng.orders.working.values() if o.purpose.value == "entry"}
    assert len(entries) == 3
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(110, 30), notifications=True) as pilot:
        table = app.orders.table
        await until(pilot, lambda: set(table.row_keys) == entries and table.ready())
        table.focus()
        first = table.selected_key()
        await pilot.press("d", "d")
        await until(pilot, lambda: first not in table.row_keys)
        await pilot.press("d")
        await pilot.pause(0.2)
        assert {c for c in entries if c in eng.orders.working} == entries - {first}
        assert told(app, "only just been shown")
