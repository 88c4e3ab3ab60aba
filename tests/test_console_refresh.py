"""How the console paints a snapshot (console/app.py): the timer's refresh feeds the panes one group
per frame, top of the screen first, so no single paint holds a key press for long; a command's own
refresh feeds them all at once and an older staggered one never paints over it; panes under an
opaque screen are not fed, and catch up the moment they show again.

The app runs with a refresh rate so low that its timer never fires during a test: each refresh is
the test's own call, so what the screen shows between two frames is deterministic.
"""
from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal as D

from console.app import TradeConsoleApp
from console.refresh import STAGGER_GIVE_UP
from console.screens import PerformanceScreen
from test_console_frozen import frozen_engine

NO_TIMER = 0.001  # Hz: one tick every 1,000 s


async def until(pilot, condition, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await pilot.pause(0.01)


def later(snap):
    """The next state: BTC closed, equity up; shown by the header, the positions and the P&L."""
    return replace(snap, positions=snap.positions[1:], equity=D("10500.00"))


async def test_a_tick_paints_the_header_first_and_the_rest_a_group_per_frame(tmp_path):
    eng = frozen_engine(tmp_path)
    app = TradeConsoleApp(eng, refresh_hz=NO_TIMER, start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.snapshots_painted >= 1)
        painted = app.snapshots_painted
        eng.snap = later(eng.snap)
        app._tick()
        # This frame: the header only. The positions still show the old state.
        assert "$10,500.00" in app.header.info_text
        assert app.positions.table.row_count == 3 and app.pnl.figures["equity"] != "$10,500.00"
        await until(pilot, lambda: app.snapshots_painted == painted + 1)
        assert app.positions.table.row_keys == ["ETH/USD", "SOL/USD"]
        assert app.pnl.figures["equity"] == "$10,500.00"


async def test_a_commands_refresh_supersedes_a_staggered_one(tmp_path):
    eng = frozen_engine(tmp_path)
    app = TradeConsoleApp(eng, refresh_hz=NO_TIMER, start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.snapshots_painted >= 1)
        old = eng.snap
        eng.snap = later(old)
        app._tick()  # the header now; the rest would follow frame by frame
        eng.snap = replace(old, positions=old.positions[2:], equity=D("11000.00"))
        app.refresh_snapshot()  # e.g. after a command: everything, now
        assert app.positions.table.row_keys == ["SOL/USD"] and "$11,000.00" in app.header.info_text
        for _ in range(10):  # frames in which the superseded refresh would have gone on
            await pilot.pause(0.02)
        assert app.positions.table.row_keys == ["SOL/USD"] and app.pnl.figures["equity"] == "$11,000.00"


async def test_a_refresh_whose_frame_never_comes_is_abandoned(tmp_path, monkeypatch):
    eng = frozen_engine(tmp_path)
    app = TradeConsoleApp(eng, refresh_hz=NO_TIMER, start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.snapshots_painted >= 1)
        painted = app.snapshots_painted
        # The screen it waited on went away (a dismissed palette drops its pending callbacks).
        monkeypatch.setattr(app, "call_after_refresh", lambda *a, **k: True)
        eng.snap = later(eng.snap)
        app._tick()
        monkeypatch.undo()
        app._tick()  # still waiting, and not for long yet: this tick leaves it be
        await pilot.pause(0.05)
        assert app.positions.table.row_count == 3 and app.snapshots_painted == painted
        app._stagger_started -= STAGGER_GIVE_UP  # long enough: the next tick starts afresh
        app._tick()
        await until(pilot, lambda: app.snapshots_painted == painted + 1)
        assert app.positions.table.row_keys == ["ETH/USD", "SOL/USD"]


async def test_panes_under_an_opaque_screen_wait_and_catch_up_when_it_closes(tmp_path):
    eng = frozen_engine(tmp_path)
    app = TradeConsoleApp(eng, refresh_hz=NO_TIMER, start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.snapshots_painted >= 1)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, PerformanceScreen))
        painted = app.snapshots_painted
        eng.snap = later(eng.snap)
        app._tick()
        await until(pilot, lambda: app.snapshots_painted == painted + 1)
        assert app.screen._shown is not None  # the screen on top is fed
        assert app.positions.table.row_count == 3  # the covered panes are not
        await pilot.press("escape")
        # No tick comes (the timer is slower than the test): the uncovering itself refreshes.
        await until(pilot, lambda: app.positions.table.row_keys == ["ETH/USD", "SOL/USD"])
        assert "$10,500.00" in app.header.info_text
