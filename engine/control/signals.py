"""Signal policy of a running engine, shared by the headless runner and the console.

SIGHUP   the terminal or SSH session went away. control.on_sighup: "halt" (default) latches the
         halt (cancels working entries, keeps every position's stop), lets the journal commit,
         and stops; "ignore" keeps trading (for runs under nohup/tmux that should outlive it).
SIGTERM  control.on_sigterm: "halt" (default) halts then shuts down in order; "shutdown" stops
         without halting, leaving working orders at the venue as they are.
SIGINT   halt and stop (kill -INT, or Ctrl-C on a headless run).

The runner passes `stop`, its own way to end (Engine.stop for headless, the app's exit for the
console), and awaits `settle()` before it closes the engine, so the halt's cancels and journal
commit finish first, bounded.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("tradeconsole.control")

SETTLE_TIMEOUT = 10.0  # seconds for a signal's halt to finish its cancels (their retries take ~3 s)


class SignalPolicy:
    def __init__(self, engine: "Engine", stop: Callable[[], None]) -> None:
        self.engine = engine
        self._stop = stop
        self.halt_task: asyncio.Task | None = None
        self.received: list[str] = []
        self.stopping = False
        self._installed: list[signal.Signals] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> list[str]:
        """Register the handlers on the loop; returns the names installed (none off POSIX)."""
        self._loop = loop or asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            try:
                self._loop.add_signal_handler(sig, self.handle, sig.name)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - non-POSIX / not main thread
                continue
            self._installed.append(sig)
        return [s.name for s in self._installed]

    def uninstall(self) -> None:
        if self._loop is not None:
            for sig in self._installed:
                with contextlib.suppress(Exception):
                    self._loop.remove_signal_handler(sig)
        self._installed.clear()

    def handle(self, name: str) -> None:
        """What a signal does; called on the loop (add_signal_handler), so it may touch the engine."""
        self.received.append(name)
        cfg = self.engine.profile.control
        if name == "SIGHUP":
            detach_dead_terminal()
            if cfg.on_sighup == "ignore":
                log.warning("SIGHUP received (terminal gone); control.on_sighup is ignore: trading on")
                return
            self._halt_and_stop("SIGHUP received: terminal or SSH session lost")
        elif name == "SIGTERM":
            if cfg.on_sigterm == "shutdown":
                log.warning("SIGTERM received; control.on_sigterm is shutdown: stopping, working orders left as they are")
                self._stop_once()
                return
            self._halt_and_stop("SIGTERM received: orderly shutdown")
        else:
            self._halt_and_stop(f"{name} received")

    def _halt_and_stop(self, reason: str) -> None:
        if self.stopping:
            log.warning("%s while already stopping; the shutdown is under way", self.received[-1])
            return
        # halt() latches before it returns; its task commits the row and cancels the entries.
        task = self.engine.halt("signal", reason)
        if self.halt_task is None:
            self.halt_task = task
        log.warning("halted by signal: %s; stopping", reason)
        self._stop_once()

    def _stop_once(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self._stop()

    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Wait, bounded, for a signal's halt to finish; True if done (or there was none)."""
        task = self.halt_task
        if task is None:
            return True
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            log.error("halt still cancelling after %ss; closing anyway (the latch is journaled)", timeout)
            return False
        if not task.cancelled() and task.exception() is not None:
            log.error("halt after signal failed", exc_info=task.exception())
        return True


def detach_dead_terminal() -> None:
    """Point stdin/stdout/stderr at /dev/null where they are a terminal.

    After a hangup every write to the old tty fails (EIO); the summary and the stdout log lines
    would then raise in the middle of the orderly shutdown. The log file keeps everything."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    try:
        null_dev = os.fstat(null).st_rdev
        for fd in (0, 1, 2):
            with contextlib.suppress(OSError):
                st = os.fstat(fd)
                # isatty() itself fails on a hung-up tty (its ioctl gets EIO), so test the file
                # type: a character device that is not /dev/null is the terminal. Pipes and files
                # (a redirected run, a test) are left alone.
                if stat.S_ISCHR(st.st_mode) and st.st_rdev != null_dev:
                    os.dup2(null, fd)
    finally:
        os.close(null)
