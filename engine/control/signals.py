"""Signal policy of a running engine, shared by the headless runner and the console.

SIGHUP   the terminal or SSH session went away. control.on_sighup: "halt" (default) latches the
         halt (cancels working entries, keeps every position's stop), lets the journal commit,
         and stops; "ignore" keeps trading (for runs under nohup/tmux that should outlive it).
SIGTERM  control.on_sigterm: "halt" (default) halts then shuts down in order; "shutdown" stops
         without halting, leaving working orders at the venue as they are.
SIGINT   halt and stop (kill -INT, or Ctrl-C on a headless run).

One policy per engine (`policy_for`). The control service installs it as soon as the socket is
up, with `Engine.stop` as the way to end: from then on a client may see the engine as running,
so a signal must already halt rather than kill. The runner then attaches its own way to end
(Engine.stop for headless, the app's exit for the console) and awaits `settle()` before it
closes the engine, so the halt's cancels and journal commit finish first, bounded. A signal that
came before the runner attached is honoured when it does.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("tradeconsole.control")

SETTLE_TIMEOUT = 10.0  # seconds for a signal's halt to finish its cancels (their retries take ~3 s)
ATTACH_GRACE = 1.0  # seconds a runner has, after the halt is committed, to attach and end in order


_POLICIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def policy_for(engine: Engine, stop: Callable[[], None] | None = None) -> SignalPolicy:
    """The engine's one signal policy, created on first use; `stop` attaches a runner's way to end."""
    policy = _POLICIES.get(engine)
    if policy is None:
        policy = _POLICIES[engine] = SignalPolicy(engine, stop or engine.stop)
        policy.attached = stop is not None
    elif stop is not None:
        policy.attach(stop)
    return policy


class SignalPolicy:
    def __init__(self, engine: Engine, stop: Callable[[], None]) -> None:
        self.engine = engine
        self._stop = stop
        self.attached = True  # a runner owns it (False: installed early by the control service)
        self.halt_task: asyncio.Task | None = None
        self.received: list[str] = []
        self.stopping = False
        self._installed: list[signal.Signals] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unattended: asyncio.Task | None = None
        self._kill = os.kill  # replaced in tests

    def attach(self, stop: Callable[[], None]) -> None:
        """The runner's way to end from now on; if a signal already asked to stop, end now."""
        self._stop = stop
        self.attached = True
        if self.stopping:
            stop()

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> list[str]:
        """Register the handlers on the loop (again is harmless); returns the names installed."""
        self._loop = loop or asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            try:
                self._loop.add_signal_handler(sig, self.handle, sig.name)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - non-POSIX / not main thread
                continue
            if sig not in self._installed:
                self._installed.append(sig)
        return [s.name for s in self._installed]

    def uninstall(self) -> None:
        if self._loop is not None:
            for sig in self._installed:
                with contextlib.suppress(Exception):
                    self._loop.remove_signal_handler(sig)
        self._installed.clear()
        # The policy holds its engine, so the weak registry would never let go of it on its own.
        if _POLICIES.get(self.engine) is self:
            del _POLICIES[self.engine]

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
                self._stop_once(name)
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
        self._stop_once(self.received[-1])

    def _stop_once(self, name: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        self._stop()
        if not self.attached:
            # No runner has taken over the ending yet: it attaches within moments, or never (an
            # app that does not know this policy would otherwise live on with a stopped engine).
            self._unattended = asyncio.get_running_loop().create_task(self._end_unattended(name))

    async def _end_unattended(self, name: str) -> None:
        """With the halt committed, end the process as the signal would have, unless a runner
        attached meanwhile and ends it in order."""
        await self.settle()
        await asyncio.sleep(ATTACH_GRACE)
        if self.attached:
            return
        log.error("%s: no runner ended the process after the halt; exiting as the signal would", name)
        for h in logging.getLogger("tradeconsole").handlers:
            with contextlib.suppress(Exception):
                h.flush()
        sig = signal.Signals[name]
        self.uninstall()
        signal.signal(sig, signal.SIG_DFL)
        self._kill(os.getpid(), sig)

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
