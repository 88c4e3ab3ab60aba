"""Under load: the engine runs flat out (speed 0) in the app's loop while keys are pressed; every
key must act, the screen must keep refreshing at its bounded rate, and the market must keep moving.
Also: the layout at 80x24 and 160x48 and across a resize, and the mouse and theme switches."""
from __future__ import annotations

import time

import pytest
from textual import events
from textual.app import App
from textual.command import CommandPalette

from conftest import LOOSE_RISK
from console.app import TradeConsoleApp
from console.modals import HelpModal, NoteModal
from console.order_form import OrderEntryScreen
from console.screens import HistoryScreen, PerformanceScreen
from engine.engine import Engine
from test_console_frozen import frozen_engine

CHARS = {"question_mark": "?", "colon": ":", "escape": "\x1b"}


def send_key(app, key: str) -> None:
    event = events.Key(key, CHARS.get(key, key if len(key) == 1 else None))
    event.set_sender(app)
    app._driver.send_message(event)


PANES = ("#header", "#positions", "#orders", "#approvals", "#pnl", "#capital", "#breakers", "#alerts", "#log")


async def until(pilot, condition, timeout: float = 8.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in time {what}".strip())
        await pilot.pause(0.01)


async def test_every_key_acts_while_the_engine_runs_flat_out(make_profile, open_engine):
    engine: Engine = await open_engine(make_profile(approval={"required": True, "timeout_seconds": 86400},
                                                    risk=LOOSE_RISK, feed={"speed": 0}), seed=3)
    app = TradeConsoleApp(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: engine.counters["ticks"] > 2000)  # warmed up and trading
        ticks0, painted0, t0 = engine.counters["ticks"], app.snapshots_painted, time.monotonic()
        acted: list[str] = []

        async def press(key: str, check) -> None:
            # As a terminal delivers it: through the driver, without Pilot's wait for an idle
            # CPU (which never comes while the engine runs flat out).
            send_key(app, key)
            await until(pilot, check, timeout=8, what=f"after key {key!r} (acted so far: {acted})")
            acted.append(key)

        tail, alerts = app.log_tail, app.alerts
        await press("l", lambda: tail.paused)
        await press("l", lambda: not tail.paused)
        await press("L", lambda: tail.min_level == "INFO")
        await press("v", lambda: alerts.min_severity == "warning")
        await press("P", lambda: "*" in engine.pause_book.reasons)
        await press("P", lambda: "*" not in engine.pause_book.reasons)
        for key, screen in (("question_mark", HelpModal), ("t", HistoryScreen), ("m", PerformanceScreen),
                            ("o", OrderEntryScreen), ("n", NoteModal)):
            await press(key, lambda screen=screen: isinstance(app.screen, screen))
            await press("escape", lambda screen=screen: not isinstance(app.screen, screen))
        await press("colon", lambda: CommandPalette.is_open(app))
        await press("escape", lambda: not CommandPalette.is_open(app))
        await press("f12", lambda: engine.state.value == "halted")
        elapsed = time.monotonic() - t0
        assert len(acted) == 19
        # The market kept moving while the keys were handled, and the screen refreshed at its
        # bounded rate (4 Hz), not once per market event.
        ticks, painted = engine.counters["ticks"] - ticks0, app.snapshots_painted - painted0
        assert ticks > 1000, ticks
        assert elapsed * app.refresh_hz / 4 <= painted <= elapsed * app.refresh_hz + 5 + len(acted), (painted, elapsed)


@pytest.mark.parametrize("first,second", [((80, 24), (160, 48)), ((160, 48), (80, 24))])
async def test_layout_fits_from_80x24_up_and_follows_a_resize(tmp_path, first, second):
    app = TradeConsoleApp(frozen_engine(tmp_path, "approval"), start_engine=False)
    async with app.run_test(size=first) as pilot:
        for width, height in (first, second):
            await pilot.resize_terminal(width, height)
            await pilot.pause(0.1)
            assert app.screen.has_class("-short") == (height < 32)
            assert app.screen.has_class("-narrow") == (width < 100)
            for pane in PANES:
                region = app.query_one(pane).region
                assert region.width > 0 and region.height > 0, (pane, width, height)
                assert region.right <= width and region.bottom <= height
            # every position row and the approval are on the screen at either size
            assert app.positions.table.row_count == 3 and app.approvals.table.row_count == 1
            assert app.query_one("#positions").region.height >= 5


async def test_mouse_and_theme_switches(tmp_path, monkeypatch):
    seen = {}

    async def fake_run_async(self, *, mouse=True, **kwargs):
        seen["mouse"] = mouse

    monkeypatch.setattr(App, "run_async", fake_run_async)
    monkeypatch.setenv("TRADECONSOLE_NO_MOUSE", "1")
    monkeypatch.setenv("TRADECONSOLE_THEME", "ansi")
    app = TradeConsoleApp(frozen_engine(tmp_path))
    assert not app.mouse_enabled and app.theme == "ansi-dark"
    await app.run_async()
    assert seen["mouse"] is False
    monkeypatch.delenv("TRADECONSOLE_NO_MOUSE")
    monkeypatch.delenv("TRADECONSOLE_THEME")
    app = TradeConsoleApp(frozen_engine(tmp_path), mouse=True, theme="ansi-light")
    await app.run_async()
    assert seen["mouse"] is True and app.theme == "ansi-light"
    assert TradeConsoleApp(frozen_engine(tmp_path), mouse=False).mouse_enabled is False
    with pytest.raises(ValueError, match="unknown theme 'neon'"):
        TradeConsoleApp(frozen_engine(tmp_path), theme="neon")
