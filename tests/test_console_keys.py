"""Every operator key and dialog of the console, pressed through Textual's Pilot against a real
engine (paper broker, seeded simulated market). The emergency keys (approve, reject, halt, close
all, re-arm, quit, help) are in test_console.py; this file covers the rest.

The app runs without its engine worker (`start_engine=False`) and the strategy is silenced, so
the only orders are the operator's and nothing moves unless the test runs market time itself
(`engine.run(duration=...)`): each key's effect is checked in the engine and on the screen.
"""
from __future__ import annotations

import time
from decimal import Decimal as D

import pytest
from textual.command import CommandInput, CommandList, CommandPalette
from textual.widgets import Input

from conftest import ANY_READINESS, LOOSE_RISK, run_until
from console.app import TradeConsoleApp
from console.modals import ConfirmModal, HelpModal, NoteModal
from console.order_form import OrderEntryScreen
from console.screens import HistoryScreen, PerformanceScreen
from engine.operator import ManualOrderSpec


async def until(pilot, condition, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def told(app, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


@pytest.fixture
async def desk(make_profile, open_engine):
    """An engine with quotes, no strategy signals, and `n` open long positions with their stops."""

    async def make(positions: tuple[str, ...] = (), approval: bool = False, **sections):
        profile = make_profile(approval={"required": approval, "timeout_seconds": 86400},
                               risk={**LOOSE_RISK, **ANY_READINESS}, orders={"limit_timeout_seconds": 7200},
                               **sections)
        eng = await open_engine(profile, seed=5)
        eng.strategy.on_quote = lambda q, pos: None
        await eng.run(duration=30)
        for symbol in positions:
            assert await eng.submit_manual(ManualOrderSpec(symbol, "buy", risk_usd=D(20))) is None
        await run_until(eng, lambda: all(eng.orders.stop_order(s) for s in positions), step=2)
        return eng

    return make


async def test_close_position_key_asks_then_flattens(desk):
    eng = await desk(("BTC/USD", "ETH/USD"))
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.positions.table.row_keys == ["BTC/USD", "ETH/USD"])
        app.positions.table.focus()
        await pilot.press("down", "x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert app.screen.title_text == "Close ETH/USD" and app.screen.danger
        await pilot.press("n")  # no: nothing happens
        assert not isinstance(app.screen, ConfirmModal) and "ETH/USD" in eng.portfolio.positions
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(pilot, lambda: told(app, "Closing ETH/USD"))
        await eng.run(duration=5)  # the market fills the exit
        await until(pilot, lambda: app.positions.table.row_keys == ["BTC/USD"])
        assert "ETH/USD" not in eng.portfolio.positions and "BTC/USD" in eng.portfolio.positions


async def test_move_stop_key_takes_a_price_and_reports_a_refusal(desk):
    eng = await desk(("SOL/USD",))
    pos = eng.portfolio.positions["SOL/USD"]
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.positions.table.row_keys == ["SOL/USD"])
        app.positions.table.focus()
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        field = app.screen.query_one("#reason", Input)
        # Starts from the current stop as the pane shows it, not the raw Decimal's eight places.
        assert field.value == f"{pos.stop_price:.2f}" and field.value != format(pos.stop_price, "f")
        # Confirmed as shown: the stop stays exactly where it was, not nudged to the rounding.
        exact = eng.orders.stop_order("SOL/USD").stop_price
        await pilot.press("enter")
        await until(pilot, lambda: "stop left at" in " ".join(n.message for n in app._notifications))
        assert eng.orders.stop_order("SOL/USD").stop_price == exact
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("home", "ctrl+k", *"abc", "enter")
        assert "not a number" in str(app.screen.query_one("#dialog-error").content)  # still open
        tighter = (pos.stop_price + pos.last_price) / 2
        tighter = tighter.quantize(D("0.01"))
        await pilot.press("home", "ctrl+k", *str(tighter), "enter")
        await until(pilot, lambda: eng.orders.stop_order("SOL/USD").stop_price == tighter)
        await until(pilot, lambda: "stop moved" in " ".join(n.message for n in app._notifications))
        # loosening past the profile's widest stop: the engine refuses, the operator reads why
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("home", "ctrl+k", *str((pos.avg_price * D("0.5")).quantize(D("0.01"))), "enter")
        await until(pilot, lambda: told(app, "stop_loss_max_pct"))
        assert eng.orders.stop_order("SOL/USD").stop_price == tighter


async def test_cancel_key_cancels_an_entry_and_is_refused_on_a_stop(desk):
    eng = await desk(("BTC/USD",))
    bid = eng.quotes["ETH/USD"].bid
    assert await eng.submit_manual(ManualOrderSpec("ETH/USD", "buy", risk_usd=D(10), type="limit",
                                                   limit_price=(bid * D("0.99")).quantize(D("0.01")))) is None
    entry = next(o.client_order_id for o in eng.orders.working.values() if o.purpose.value == "entry")
    stop = eng.orders.stop_order("BTC/USD").client_order_id
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(110, 30)) as pilot:
        await until(pilot, lambda: set(app.orders.table.row_keys) == {entry, stop})
        app.orders.table.focus()
        app.orders.table.move_cursor(row=app.orders.table.row_keys.index(stop))
        await pilot.press("d")
        await until(pilot, lambda: told(app, "protective stop"))
        assert stop in eng.orders.working
        app.orders.table.move_cursor(row=app.orders.table.row_keys.index(entry))
        await pilot.press("d")
        await until(pilot, lambda: entry not in app.orders.table.row_keys)
        assert entry not in eng.orders.working and told(app, f"Cancelled {entry}")


async def test_pause_keys_toggle_symbol_and_everything(desk):
    eng = await desk(("ETH/USD",))
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.positions.table.row_keys == ["ETH/USD"])
        app.positions.table.focus()
        await pilot.press("p")
        await until(pilot, lambda: "paused: ETH/USD" in app.header.state_text)
        assert eng.pause_book.reasons == {"ETH/USD": "console"}
        await pilot.press("p")
        await until(pilot, lambda: not eng.pause_book.reasons)
        await pilot.press("P")
        await until(pilot, lambda: "paused: all symbols" in app.header.state_text)
        assert eng.what_if(ManualOrderSpec("BTC/USD", "buy", risk_usd=D(5))).failed == "symbol_paused"
        await pilot.press("P")
        await until(pilot, lambda: "paused" not in app.header.state_text)


async def test_order_form_shows_the_live_verdict_and_sends(desk):
    eng = await desk(approval=True)
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, OrderEntryScreen))
        form = app.screen
        await pilot.press(*"999")  # quantity field has the focus: far above every cap
        await until(pilot, lambda: form.preview is not None and form.preview.spec.quantity == 999)
        assert not form.preview.approved and "position_size" in str(form.verdict.content)
        await pilot.press("home", "ctrl+k", "tab", *"25")  # risk $25 instead
        await until(pilot, lambda: form.preview is not None and form.preview.spec.risk_usd == 25)
        form.query_one("#side").focus()
        await pilot.press("right")  # the side field steps to sell...
        await until(pilot, lambda: form.preview.spec.side == "sell")
        await pilot.press("left")  # ...and back
        await until(pilot, lambda: form.preview.spec.side == "buy")
        text = str(form.verdict.content)
        assert "THE GATE WOULD PASS IT" in text and "single_trade_loss" in text and "loss at stop" in text
        assert "✗" not in text
        await pilot.press("enter")  # enter refreshes, never sends
        assert isinstance(app.screen, OrderEntryScreen) and not eng.snapshot().approvals
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, OrderEntryScreen))
        await until(pilot, lambda: len(app.approvals.table.row_keys) == 1)
        assert eng.snapshot().approvals[0].symbol == eng.profile.symbols[0]
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, OrderEntryScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, OrderEntryScreen))


async def test_note_ack_filter_and_the_read_only_screens(desk):
    eng = await desk(("BTC/USD",))
    eng.alerts.publish("critical", "stop_refused", "ETH/USD: protective stop refused", eng.clock.now())
    eng.alerts.publish("info", "noise", "just so you know", eng.clock.now())
    await eng.journal.flush()
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: bool(app.alerts.needs_ack()))
        assert "1 to acknowledge" in app.alerts.border_title
        assert app.alerts.lines()[0].plain.startswith("!")  # pinned on top
        await pilot.press("k")
        await until(pilot, lambda: not app.alerts.needs_ack())
        assert told(app, "Acknowledged: stop_refused")
        await pilot.press("v")
        assert app.alerts.min_severity == "warning"
        assert all("noise" not in line.plain for line in app.alerts.lines())
        await pilot.press("v", "v")
        assert app.alerts.min_severity == "info"

        app.positions.table.focus()
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NoteModal))
        assert app.screen.query_one("#note-ref", Input).value == "BTC/USD"
        await pilot.press(*"held through the dip", "enter")
        await until(pilot, lambda: told(app, "Note saved"))
        (note,) = await eng.journal.rows(kinds=["note"])
        # A note about the focused row's symbol is a trade note, not a day note naming a symbol.
        assert note.ref == "BTC/USD" and note.data == {"kind": "trade", "text": "held through the dip"}

        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.history is not None)
        assert app.screen.fills.row_count >= 1 and app.screen.notes.row_count == 1
        await pilot.press("escape")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, PerformanceScreen))
        await until(pilot, lambda: app.screen._shown is not None)  # fed by the snapshot timer
        await pilot.press("f12")  # the halt key reaches through every screen
        assert eng.state.value == "halted" and isinstance(app.screen, PerformanceScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, PerformanceScreen)


async def test_log_keys_pause_filter_and_search(desk):
    eng = await desk()
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        tail = app.log_tail
        await until(pilot, lambda: tail.lines_seen > 0)
        await pilot.press("l")
        assert tail.paused and "PAUSED" in tail.border_title
        shown = len(tail.lines)
        eng.alerts.publish("warning", "probe", "while paused", eng.clock.now())  # logs a line
        await until(pilot, lambda: "+" in tail.border_title)
        assert len(tail.lines) == shown  # held, not drawn
        await pilot.press("l")
        assert not tail.paused and any("while paused" in line for line in tail.lines)
        await pilot.press("L", "L")
        assert tail.min_level == "WARNING" and all("INFO " not in line for line in tail.lines)
        await pilot.press("L", "L")  # ERROR, then back to DEBUG
        assert tail.min_level == "DEBUG"
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press(*"session", "enter")
        await until(pilot, lambda: tail.search == "session")
        assert tail.lines and all("session" in line.lower() for line in tail.lines)
        assert "/session" in tail.border_title


async def test_command_palette_runs_operator_commands(desk):
    eng = await desk(("BTC/USD",))
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and app.snapshot.positions)
        async def choose(key: str, query: str) -> None:
            await pilot.press(key)
            await until(pilot, lambda: CommandPalette.is_open(app))
            # The query is set whole (one search) rather than typed (one search per letter); the
            # choice is still made with the keyboard.
            app.screen.query_one(CommandInput).value = query
            await until(pilot, lambda: app.screen.query_one(CommandList).option_count > 0)
            await pilot.press("down", "enter")

        await choose("colon", "pause entries in ETH")
        await until(pilot, lambda: "ETH/USD" in eng.pause_book.reasons)
        await choose("ctrl+p", "close position BTC")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))  # the same dialog as the key
        assert app.screen.title_text == "Close BTC/USD"
        await pilot.press("escape")
        await choose("colon", "help every key")
        await until(pilot, lambda: isinstance(app.screen, HelpModal))
        ids = {row.id for row in app.screen.rows}
        assert {"close_position", "tighten_stop", "cancel_order", "palette", "log_search"} <= ids
        await pilot.press("escape")
        await choose("colon", "HALT: stop all new orders")
        await until(pilot, lambda: eng.state.value == "halted")
        assert eng.halt_reason == "operator halt (command palette)"


async def test_row_keys_are_remappable(desk):
    eng = await desk(("BTC/USD",), keys={"close_position": "X", "pause_all": "f9"})
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.positions.table.row_keys == ["BTC/USD"])
        app.positions.table.focus()
        await pilot.press("x")
        assert not isinstance(app.screen, ConfirmModal)
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("escape", "f9")
        await until(pilot, lambda: "*" in eng.pause_book.reasons)
