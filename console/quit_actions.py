"""Quitting with exposure open: the operator chooses halt-and-quit or close-all-then-quit, and the
console never leaves silently with positions it was asked to flatten.

A mixin of `TradeConsoleApp`, beside ConsoleActions (console/actions.py), whose close-all wait it uses.
"""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("tradeconsole.console")

# How long quitting waits for a halt's cancels to be journaled before leaving anyway; the halt
# latch itself is already set, and close() flushes what was written.
QUIT_HALT_WAIT = 10.0


class QuitActions:
    async def action_quit(self) -> None:
        # Overrides App.action_quit so ctrl+q also asks before leaving exposure behind.
        from .modals import QuitModal

        if self._exiting or isinstance(self.screen, QuitModal):
            return
        working, positions = self.engine.exposure()
        if not (working or positions):
            self._exit_now()
            return

        def answered(choice: str | None) -> None:
            if choice == "halt":
                self.command(self._halt_and_quit(), "halt and quit")
            elif choice == "close":
                self.command(self._close_all_and_quit(), "close all and quit")

        self.push_screen(QuitModal(working, positions), answered)

    async def _halt_and_quit(self) -> None:
        task = self.engine.halt("console", "operator quit: halt and quit")
        self.refresh_snapshot()
        try:
            await asyncio.wait_for(asyncio.shield(task), QUIT_HALT_WAIT)
        except asyncio.TimeoutError:
            log.warning("halt still cancelling orders after %ss; quitting anyway", QUIT_HALT_WAIT)
        self._exit_now()

    async def _close_all_and_quit(self) -> None:
        try:
            await self.engine.close_all("console", stop_entries=True)
            self.refresh_snapshot()
            positions = len(await self._await_exits({p.symbol for p in self.engine.snapshot().positions}))
        except BaseException:
            await self._stay("close-all failed")  # the command's error dialog tells the rest
            raise
        if positions:
            # Never leave silently with positions the operator asked to flatten.
            await self._stay("positions still open after close-all")
            self.show_error("Not quitting", f"{positions} position(s) are still open after close-all (their exits"
                            f" are working). Entries resume: the strategy trades again ({self.key_for('pause_all')}"
                            " pauses it).")
            return
        entries = self.engine.entries_working()
        if entries:
            # The venue did not cancel them: leaving now would leave them working with the engine
            # down and armed, and what one fills would have no stop until the next start.
            await self._stay("entries still working after close-all")
            self.show_error("Not quitting", f"Flat, but {len(entries)} entry order(s) are still working at the venue"
                            f" (it did not cancel them): {', '.join(entries)}. Cancel them, or quit with"
                            " 'halt and quit' (the halt is latched: the next start cancels them). Entries resume:"
                            f" the strategy trades again ({self.key_for('pause_all')} pauses it).")
            return
        self._exit_now()

    async def _stay(self, why: str) -> None:
        """The quit is abandoned and the operator stays: the entries stopped for the way out start
        again, as the header (ACTIVE) says; nothing else would ever lift that stop, and the pause
        key is there to hold them."""
        await self.engine.resume_entries("console", f"quit abandoned: {why}")
        self.refresh_snapshot()
