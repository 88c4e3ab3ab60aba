"""Quit, "close all, then quit", when the exits do not fill in time: the console stays, and so the
entries close-all stopped for the way out start again (the header says ACTIVE; nothing else would
ever lift the stop). Journaled as an operator row."""
from __future__ import annotations

import console.actions
from console.app import TradeConsoleApp
from console.modals import ErrorModal, QuitModal
from test_console_keys import desk, until  # noqa: F401  (desk is a fixture)


async def test_an_abandoned_close_all_then_quit_lets_entries_start_again(desk, monkeypatch):
    monkeypatch.setattr(console.actions, "CLOSE_WAIT", 0.3)
    eng = await desk(("BTC/USD",))
    # The engine's loop is not running: no quote comes, so the exit cannot fill.
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.positions.table.row_keys == ["BTC/USD"])
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitModal))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert "Entries resume" in app.screen.message and "P pauses" in app.screen.message
        assert eng.entries_stopped is False
        assert not app._exiting
        await eng.journal.flush()
        (row,) = [r for r in await eng.journal.rows(["operator"]) if r.data["action"] == "resume_entries"]
        assert row.data["reason"] == "quit abandoned: positions still open after close-all"
        assert [r.data["entries_stopped"] for r in await eng.journal.rows(["close_all"])] == [True]
        assert await eng.resume_entries("console", "again") is False  # nothing stopped: no row
