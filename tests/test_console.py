"""The console: panes render snapshots; keys call one engine command each.

Pane tests build `EngineSnapshot` values directly. App tests drive a real engine (paper broker,
simulated market) through Textual's Pilot and assert what the engine and the screen then show.
"""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from console.app import TradeConsoleApp
from console.bindings import BINDING_IDS, effective_keys, validate_keymap
from console.modals import CloseAllModal, ConfirmModal, ErrorModal, HelpModal, QuitModal, scrub
from console.widgets import (
    AlertPane,
    ApprovalPane,
    BreakerPane,
    LogTail,
    PnlPane,
    PositionsPane,
    StatusHeader,
)
from engine.engine import Engine
from engine.snapshot import (
    AlertView,
    ApprovalView,
    BreakerView,
    CheckView,
    EngineSnapshot,
    PauseView,
    PositionView,
)

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def position(symbol: str, last: str = "100", upnl: str = "1.5") -> PositionView:
    return PositionView(symbol, "long", D("0.5"), D("98"), D(last), D(upnl), D("90"), D("10.00"),
                        loss_at_stop=D("80"), loss_limit=D("100"), exposure=D("0.5") * D(last),
                        exposure_cap=D("1000"))


def approval(cid: str, symbol: str = "ETH/USD", passed: bool = True, left: float = 600.0) -> ApprovalView:
    checks = (
        CheckView("max_open_positions", True, "open after 1, max 5"),
        CheckView("cash_reserve", passed, "cash after 9000.00, reserve 2500.00 (25%)"),
    )
    return ApprovalView(cid, symbol, "buy", D("0.5"), D("2300.12"), D("2150"), D("1150.06"),
                        "trend up vote +0.09", "risk 1% of 10000.00 = 100.00", checks, left)


def snap(**changes) -> EngineSnapshot:
    base = EngineSnapshot(
        ts=T0, mode="paper", profile="paper", venue="paper", trading_state="active", halt_reason="",
        connected=True, equity=D("10012.50"), cash=D("9000"), realized_pnl=D("12.50"),
        unrealized_pnl=D("-3.20"), pnl_today=D("5"), pnl_week=D("9.30"), fees=D("1.20"),
        equity_curve=(10000.0, 10005.0, 10012.5), positions=(position("BTC/USD"),), open_orders=(),
        approvals=(approval("cid-1"),), breakers=(), alerts=(),
    )
    return replace(base, **changes)


class Host(App):
    """Mounts one pane alone, the way the console mounts it."""

    def __init__(self, pane) -> None:
        super().__init__()
        self.pane = pane

    def compose(self) -> ComposeResult:
        yield self.pane


# ------------------------------------------------------------------------------------- panes

async def test_positions_update_by_key_and_keep_the_cursor():
    pane = PositionsPane()
    async with Host(pane).run_test(size=(100, 20)) as pilot:
        table = pane.table
        table.clear = lambda *a, **k: pytest.fail("clear() loses the cursor")  # type: ignore[method-assign]
        pane.show(snap(positions=(position("BTC/USD"), position("ETH/USD"), position("SOL/USD"))))
        await pilot.pause()
        assert table.row_keys == ["BTC/USD", "ETH/USD", "SOL/USD"]
        table.move_cursor(row=2)
        # BTC closes, SOL's price moves, LTC opens: one removal, one changed cell set, one addition.
        pane.show(snap(positions=(position("ETH/USD"), position("SOL/USD", "104.25", "-2"), position("LTC/USD"))))
        await pilot.pause()
        assert table.row_keys == ["ETH/USD", "SOL/USD", "LTC/USD"]
        assert table.selected_key() == "SOL/USD"
        assert [c[0] for c in table.cells("SOL/USD")] == [
            "SOL/USD", "long", "-2.00", "███▎  80%", "104.25", "90.00", "10.00%", "0.5", "52   5%", "98.00"]
        # the risk meter takes the breaker colours: 80 % of the per-trade limit is orange
        assert table.cells("SOL/USD")[3][1] == "dark_orange"
        assert str(table.get_cell("SOL/USD", "last")) == "104.25"
        assert pane.border_title == "Positions (3)"


async def test_header_shows_mode_and_a_loud_halt():
    header = StatusHeader()
    async with Host(header).run_test(size=(100, 4)) as pilot:
        header.show(snap())
        await pilot.pause()
        assert "PAPER" in header.info_text and "$10,012.50" in header.info_text
        assert "ACTIVE" in header.state_text and header.has_class("-mode-paper")
        header.show(snap(mode="live", trading_state="halted", halt_reason="daily_loss tripped"))
        await pilot.pause()
        assert header.has_class("-mode-live") and "LIVE" in header.info_text
        assert header.state_text.startswith("■ HALTED (R re-arms)") and "daily_loss tripped" in header.state_text
        assert header.query_one("#hdr-state").has_class("-halted")
        # Reduce-only that a re-arm would not lift (a day's loss, reconciliation): no key offered.
        header.show(snap(trading_state="reduce_only", halt_reason="daily_loss tripped", rearm_lifts=False))
        await pilot.pause()
        assert header.state_text.startswith("■ REDUCE ONLY  — daily_loss tripped") and "re-arms" not in header.state_text
        # At 80 columns a long reason is what gets cut, never the state, the pause or the key.
        await pilot.resize_terminal(80, 4)
        header.show(snap(trading_state="halted", halt_reason="re-armed after " + "x" * 300,
                         paused=(PauseView("*", "all symbols", "console"),)))
        await pilot.pause()
        assert header.state_text.index("paused: all symbols") < header.state_text.index("re-armed after")
        header.show(snap(connected=False))
        await pilot.pause()
        assert "DISCONNECTED" in header.info_text and "ACTIVE" in header.state_text


async def test_approval_detail_shows_reason_sizing_and_every_check():
    pane = ApprovalPane()
    async with Host(pane).run_test(size=(100, 30)) as pilot:
        pane.show(snap(approvals=(approval("cid-1"), approval("cid-2", "SOL/USD", passed=False, left=30))))
        await pilot.pause()
        assert pane.table.row_keys == ["cid-1", "cid-2"]
        assert [c[0] for c in pane.table.cells("cid-2")] == ["SOL/USD", "buy", "0.5", "2,300.12", "30s"]
        assert "trend up vote +0.09" in pane.detail_text and "risk 1% of 10000.00" in pane.detail_text
        assert "✓ max_open_positions" in pane.detail_text
        pane.table.move_cursor(row=1)
        await pilot.pause()
        assert pane.selected().client_order_id == "cid-2"
        assert "✗ cash_reserve" in pane.detail_text and "reserve 2500.00 (25%)" in pane.detail_text
        pane.show(snap(approvals=()))
        await pilot.pause()
        assert pane.selected() is None and "no orders waiting" in pane.detail_text


async def test_breakers_alerts_and_pnl_render_the_snapshot():
    breakers = (
        BreakerView("daily_loss", "armed", D(0), D(200), "daily loss -$0.00 / -$200.00 0 %"),
        BreakerView("drawdown", "tripped", D(30), D(25), "drawdown 30% / 25%"),
        BreakerView("losses", "warning", D(3), D(5), "losses 3 / 5"),
    )
    alerts = tuple(
        AlertView(n, T0 + timedelta(seconds=n), "critical" if n % 2 == 0 else "info", "kind", f"alert {n}")
        for n in range(50, 0, -1)
    )
    bpane, apane, ppane = BreakerPane(), AlertPane(), PnlPane()

    class Three(App):
        def compose(self) -> ComposeResult:
            yield ppane
            yield bpane
            yield apane

    async with Three().run_test(size=(80, 24)) as pilot:
        s = snap(breakers=breakers, alerts=alerts)
        for pane in (bpane, apane, ppane):
            pane.show(s)
        await pilot.pause()
        lines = bpane.lines()
        assert [line.plain for line in lines] == [
            "● drawdown 30% / 25%", "● losses 3 / 5", "● daily loss -$0.00 / -$200.00 0 %"]
        assert lines[0].spans[0].style == "bold red" and lines[2].spans[0].style == "green"
        assert bpane.border_title == "Breakers (1 tripped)"
        shown = apane.render().plain.splitlines()
        assert 1 <= len(shown) <= apane.content_size.height < 50  # only what fits
        assert "alert 50" in shown[0] and "CRIT" in shown[0]  # newest first
        assert ppane.figures == {"realized": "$12.50", "unrealized": "-$3.20", "today": "$5.00",
                                 "week": "$9.30", "fees": "$1.20", "equity": "$10,012.50", "since_stage": "—"}
        assert list(ppane.query_one("#equity-spark").data) == [10000.0, 10005.0, 10012.5]
        # The curves follow the snapshot at most once a second, whatever the refresh rate.
        redraws = ppane.curve_redraws
        ppane.show(replace(s, equity_curve=(1.0, 2.0), drawdown_curve=(0.0, 1.0)))
        assert ppane.curve_redraws == redraws and list(ppane.spark.data)[0] == 10000.0
        ppane._curve_at -= 1.0  # a second later
        ppane.show(replace(s, equity_curve=(1.0, 2.0), drawdown_curve=(0.0, 1.0)))
        assert ppane.curve_redraws == redraws + 1 and list(ppane.dd_spark.data) == [0.0, 1.0]


async def test_log_tail_follows_appends_truncation_and_rotation(tmp_path: Path):
    path = tmp_path / "engine.log"
    pane = LogTail(path, max_lines=500)
    async with Host(pane).run_test(size=(100, 20)) as pilot:
        assert pane.poll() == 0  # no file yet: wait quietly
        path.write_text("one INFO\ntwo ERROR\npart")
        assert pane.poll() == 2
        with path.open("a") as fh:
            fh.write("ial\n")
        assert pane.poll() == 1
        path.write_text("after truncation\n")
        assert pane.poll() == 1
        path.rename(tmp_path / "engine.log.1")
        path.write_text("rotated one\nrotated two\n")
        assert pane.poll() == 2
        await pilot.pause()
        text = pane.lines
        assert text[:3] == ["one INFO", "two ERROR", "partial"]
        assert "after truncation" in text and text[-2:] == ["rotated one", "rotated two"]
        with path.open("a") as fh:
            fh.write("x" * 100 + "\n" * 300_000)  # a burst far beyond one poll's budget
        assert pane.poll() <= 64 * 1024
        assert len(pane.lines) <= 500


# ---------------------------------------------------------------------------- keys, modals

def test_keymap_validation_names_the_bad_id():
    assert validate_keymap({"approve": "y", "help": "?"}) == {"approve": "y", "help": "question_mark"}
    with pytest.raises(ValueError, match="keys.aprove: no such binding id"):
        validate_keymap({"aprove": "y"})
    with pytest.raises(ValueError, match="keys.approve: 'r' is already bound to 'reject'"):
        validate_keymap({"approve": "r"})
    with pytest.raises(ValueError, match="keys.halt"):
        validate_keymap({"halt": ""})
    with pytest.raises(ValueError, match="reserved"):
        validate_keymap({"close_all": "enter"})
    assert {row.id: row.keys for row in effective_keys()}["halt"] == ("f12",)
    assert {"approve", "reject", "halt", "halt_alt", "close_all", "rearm", "help", "quit", "palette",
            "close_position", "tighten_stop", "cancel_order", "confirm_yes"} <= set(BINDING_IDS)
    # A table key shadows an app key while the table has the focus: refused. Two tables never
    # have the focus together, and a dialog only meets the app's priority keys.
    with pytest.raises(ValueError, match="keys.close_position: 'a' is already bound to 'approve'"):
        validate_keymap({"close_position": "a"})
    assert validate_keymap({"close_position": "d"}) == {"close_position": "d"}  # d is the orders table's
    assert validate_keymap({"confirm_yes": "k,enter"}) == {"confirm_yes": "k,enter"}
    # ...but the reconciliation dialog is a confirm dialog with its own answer keys.
    with pytest.raises(ValueError, match="keys.confirm_yes: 'a' is already bound to 'reconcile_adopt'"):
        validate_keymap({"confirm_yes": "a,enter"})
    with pytest.raises(ValueError, match="keys.confirm_yes: 'f12' is already bound to 'halt'"):
        validate_keymap({"confirm_yes": "f12"})
    with pytest.raises(ValueError, match="reserved"):
        validate_keymap({"approve": "escape"})
    # The close-all dialog's two choices are remappable and checked against the confirm keys.
    assert validate_keymap({"close_all_pause": "z"}) == {"close_all_pause": "z"}
    with pytest.raises(ValueError, match="keys.close_all_trade: 'y' is already bound to 'confirm_yes'"):
        validate_keymap({"close_all_trade": "y"})
    assert CloseAllModal(1, 1, auto_send=True, choice_keys=("z", "t")).choices[0].label.startswith("[z] ")


def test_error_text_is_scrubbed_of_credentials():
    text = scrub("POST https://bob:hunter2@api.x/v1?apiKey=abc&n=1 failed: token=zzz Bearer q.w.e")
    assert "hunter2" not in text and "abc" not in text and "zzz" not in text and "q.w.e" not in text


# ------------------------------------------------------------------------ with a real engine

async def until(pilot, condition, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


@pytest.fixture
async def engine_factory(make_profile, open_engine):
    """An engine on the seeded simulated market, optionally run flat out to a needed state first."""

    async def make(*, warm_until=None, **sections) -> Engine:
        # Approvals on by default here (the console is where they are answered), and long enough
        # to outlive the test rather than a few simulated minutes.
        sections["approval"] = {"required": True, "timeout_seconds": 86400, **sections.get("approval", {})}
        engine = await open_engine(make_profile(**sections), seed=1)
        if warm_until is not None:
            for _ in range(200):
                if warm_until(engine.snapshot()):
                    break
                await engine.run(duration=300)
            else:
                raise AssertionError("engine never reached the state the test needs")
        # Then let it tick gently while keys are pressed (20 sim seconds per wall second).
        engine.speed = 20
        return engine

    return make


def latched(engine: Engine) -> bool:
    # The latch itself, which halt() sets before returning; the snapshot follows within a flush.
    return engine.state.value == "halted"


async def test_f12_halts_and_the_header_says_so(engine_factory):
    engine = await engine_factory()
    app = TradeConsoleApp(engine)
    async with app.run_test(size=(100, 40)) as pilot:
        header = app.query_one(StatusHeader)
        await until(pilot, lambda: "ACTIVE" in header.state_text)
        await pilot.press("f12")
        assert latched(engine)  # within the key handler, before any further turn of the test
        await until(pilot, lambda: engine.snapshot().trading_state == "halted")
        await until(pilot, lambda: "HALTED (R re-arms)" in header.state_text
                    and "operator halt (key f12)" in header.state_text)
        assert header.state.has_class("-halted")
        await until(pilot, lambda: any(a.kind == "halt" for a in engine.snapshot().alerts))


async def test_halt_fires_while_a_modal_is_open_and_from_ctrl_backslash(engine_factory):
    engine = await engine_factory()
    app = TradeConsoleApp(engine)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpModal))
        await pilot.press("f12")
        assert latched(engine)
        assert isinstance(app.screen, HelpModal)  # halting does not throw away what was open
        await pilot.press("escape")
        # Re-arm needs a reason: an empty one is refused by the modal, which stays open.
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmModal) and latched(engine)
        await pilot.press(*"feed ok", "enter")
        await until(pilot, lambda: engine.snapshot().trading_state == "active")
        await until(pilot, lambda: "ACTIVE" in app.header.state_text)
        # Nothing to re-arm while active: no dialog, and no limit quietly re-based.
        await pilot.press("R")
        await until(pilot, lambda: any(n.message.startswith("Nothing to re-arm") for n in app._notifications))
        assert not isinstance(app.screen, ConfirmModal)
        # The second key, pressed while a modal's text input has the focus: a re-arm dialog
        # opened before that halt cannot lift it.
        await pilot.press("f12")
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("ctrl+backslash")
        assert latched(engine) and isinstance(app.screen, ConfirmModal)
        await pilot.press(*"stale dialog", "enter")
        await until(pilot, lambda: any(n.title == "Not re-armed" and "came after this re-arm was asked for" in n.message
                                       for n in app._notifications))
        assert latched(engine) and "HALTED" in app.header.state_text
        assert [r.data["reason"] for r in await engine.journal.rows(["rearm"])] == ["feed ok"]
        # The journal names the key each halt came from: its audit trail.
        assert [r.data["reason"] for r in await engine.journal.rows(["halt"])] == [
            "operator halt (key f12)", "operator halt (key f12)", "operator halt (key ctrl+\\)"]


async def test_a_chosen_approval_that_leaves_is_not_replaced_by_the_next_under_the_key(engine_factory):
    engine = await engine_factory(warm_until=lambda s: len(s.approvals) >= 2)
    app = TradeConsoleApp(engine)
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        pane = app.query_one(ApprovalPane)
        await until(pilot, lambda: len(pane.table.row_keys) >= 2)
        chosen = pane.selected().client_order_id
        # Answered elsewhere (the CLI, or its timeout) while the operator reads it.
        assert await engine.reject(chosen, "from another shell")
        app.refresh_snapshot()
        await until(pilot, lambda: chosen not in pane.table.row_keys)
        now_there = pane.selected().client_order_id
        await pilot.press("a")
        await until(pilot, lambda: any("you had selected is gone" in n.message for n in app._notifications))
        assert now_there in {a.client_order_id for a in engine.snapshot().approvals}  # not approved
        await pilot.press("a")  # now it is the operator's choice
        await until(pilot, lambda: now_there not in {a.client_order_id for a in engine.snapshot().approvals})


async def test_approve_and_reject_act_on_the_selected_approval(engine_factory):
    engine = await engine_factory(warm_until=lambda s: len(s.approvals) >= 2)
    app = TradeConsoleApp(engine)
    async with app.run_test(size=(100, 40)) as pilot:
        pane = app.query_one(ApprovalPane)
        # `a` acts on a row once it has been on screen (KeyedTable.STEADY_SECONDS).
        await until(pilot, lambda: len(pane.table.row_keys) >= 2 and pane.table.ready())
        first = pane.selected().client_order_id
        await pilot.press("a")
        await until(pilot, lambda: first not in {a.client_order_id for a in engine.snapshot().approvals})
        await until(pilot, lambda: first not in pane.table.row_keys)
        # Approved and sent, or refused by the gate on a second look; either way the operator is told.
        await until(pilot, lambda: any(n.message.startswith(("Approved", "Not approved"))
                                       for n in app._notifications))
        target = pane.selected().client_order_id
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press(*"too late", "enter")
        await until(pilot, lambda: target not in pane.table.row_keys)
        assert engine.snapshot().counters["rejected_by_operator"] == 1
        # What the operator was told (Textual keeps live toasts in App._notifications).
        await until(pilot, lambda: any("Rejected" in n.message and "too late" in n.message
                                       for n in app._notifications))


async def auto_send_with_a_position(engine_factory) -> Engine:
    return await engine_factory(approval={"required": False}, warm_until=lambda s: len(s.positions) >= 1)


async def press_close_all(pilot, app) -> None:
    await pilot.press("c")
    await until(pilot, lambda: isinstance(app.screen, CloseAllModal))


async def test_close_all_after_confirmation_flattens(engine_factory):
    app = TradeConsoleApp(engine := await auto_send_with_a_position(engine_factory))
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        await press_close_all(pilot, app)
        await pilot.press("escape")  # cancel does nothing
        await press_close_all(pilot, app)
        await pilot.press("y")  # no blind yes: enter/y answers the focused button, which is "stay"
        await until(pilot, lambda: not isinstance(app.screen, CloseAllModal))
        assert engine.snapshot().positions
        await pilot.press("f12", "c")  # halt first so no new entry races the flatten
        await until(pilot, lambda: isinstance(app.screen, CloseAllModal))
        await pilot.press("t")
        await until(pilot, lambda: not engine.snapshot().positions)
        await until(pilot, lambda: not app.query_one(PositionsPane).table.row_keys)
        assert not engine.snapshot().paused  # "keep trading" pauses nothing
        await until(pilot, lambda: any("exits filled" in n.message for n in app._notifications))
        assert any("entries NOT paused" in n.message for n in app._notifications)


async def test_close_all_and_pause_keeps_the_strategy_from_re_entering(engine_factory):
    # Auto-send: without the pause the strategy re-entered within a simulated minute of close-all.
    app = TradeConsoleApp(engine := await auto_send_with_a_position(engine_factory))
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        await press_close_all(pilot, app)
        assert "auto-send is on" in str(app.screen.body)
        await pilot.press("p")
        await until(pilot, lambda: not engine.snapshot().positions)
        assert [p.key for p in engine.snapshot().paused] == ["*"]
        await until(pilot, lambda: "paused: all symbols" in app.header.state_text)
        messages = [n.message for n in app._notifications]
        assert any(m.startswith("Close-all: exit orders sent") and "P resumes" in m for m in messages)
        assert not any("All positions closed" in m for m in messages)  # said before anything filled
        start = engine.clock.now()
        await until(pilot, lambda: (engine.clock.now() - start).total_seconds() > 120, timeout=20)
        assert not engine.snapshot().positions and not engine.snapshot().approvals


async def test_close_all_with_nothing_open_says_so(engine_factory):
    engine = await engine_factory()
    app = TradeConsoleApp(engine, start_engine=False)
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        assert engine.exposure() == (0, 0)
        await pilot.press("c")
        await until(pilot, lambda: any(n.message.startswith("Nothing to close") for n in app._notifications))
        assert not isinstance(app.screen, ConfirmModal)


@pytest.mark.parametrize("choice", ["h", "c"])
async def test_quit_with_positions_asks_what_to_do(engine_factory, choice):
    engine = await engine_factory(approval={"required": False}, warm_until=lambda s: len(s.positions) >= 1)
    app = TradeConsoleApp(engine)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitModal))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, QuitModal))
        assert app.is_running
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitModal))
        await pilot.press(choice)
        await until(pilot, lambda: not app.is_running, timeout=20)
    assert engine._closed
    if choice == "h":  # halt and quit: the latch is set, positions stay (with their stops)
        assert latched(engine) and engine.snapshot().positions
    else:  # close all then quit: it left only once flat
        assert not engine.snapshot().positions


async def test_quit_without_exposure_just_quits(engine_factory):
    engine = await engine_factory()
    app = TradeConsoleApp(engine)
    async with app.run_test(size=(100, 40)) as pilot:
        assert engine.exposure() == (0, 0)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
    assert engine._closed


async def test_remapped_keys_from_the_profile_work(engine_factory):
    engine = await engine_factory(keys={"halt": "f11", "help": "h"})
    app = TradeConsoleApp(engine)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, HelpModal))
        assert app.screen.rows[2].keys == ("f11",)
        await pilot.press("escape", "f12")
        assert not latched(engine)  # f12 was remapped away
        await pilot.press("f11")
        assert latched(engine) and engine.halt_reason == "operator halt (key f11)"


async def test_unknown_key_id_is_a_clear_error(engine_factory):
    engine = await engine_factory(keys={"hlat": "f11"})
    with pytest.raises(ValueError, match="keys.hlat: no such binding id"):
        TradeConsoleApp(engine)


async def test_engine_failure_becomes_an_error_modal(engine_factory):
    engine = await engine_factory()

    async def broken_run(duration=None):
        raise RuntimeError("feed died: https://u:secret@venue/x")

    engine.run = broken_run  # type: ignore[method-assign]
    app = TradeConsoleApp(engine)
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert "feed died" in app.screen.message and "secret" not in app.screen.message
        await pilot.press("enter")
        assert not isinstance(app.screen, ErrorModal) and app.is_running
        await pilot.press("f12")  # the keys still work after the engine loop died
        assert latched(engine)


async def test_exit_when_ready_paints_once_then_exits_and_closes(engine_factory):
    engine = await engine_factory()
    app = TradeConsoleApp(engine, exit_when_ready=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: not app.is_running, timeout=5)
    assert app.snapshots_painted >= 1 and engine._closed


async def test_a_run_that_ends_shows_stopped_not_active_and_closes_what_waits(engine_factory):
    """--duration reached (or a replay's end) with the console left up: the header says STOPPED
    and not running, never ACTIVE and connected, and an approval left on screen cannot be sent."""
    engine = await engine_factory(warm_until=lambda s: len(s.approvals) >= 1)
    app = TradeConsoleApp(engine, duration=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: engine.run_finished != "")
        await until(pilot, lambda: "STOPPED" in app.header.state_text)
        assert "its duration was reached" in app.header.state_text and "ACTIVE" not in app.header.state_text
        assert "not running" in app.header.info_text and "connected" not in app.header.info_text
        assert len(engine.approvals) == 0 and app.approvals.table.row_count == 0
        sent = engine.counters["orders"]
        await pilot.press("a")
        await pilot.pause(0.1)
        assert engine.counters["orders"] == sent
