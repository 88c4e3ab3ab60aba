"""The control service: the instance lock and the Unix socket of a running engine.

`start(engine)` is called by the runners after `Engine.open` (engine/services.py). It
1. makes the run dir private (0700) and takes `<profile>.lock` (flock): one engine per profile;
2. re-reads the latch, in case `tradeconsole halt` wrote one while this engine was opening, and
   carries it out as a halt (`Engine.halt`: working entries cancelled, stops kept, a critical
   alert): shown HALTED with the restored entries still working, one filled after the halt;
3. with `control.socket` on, removes a stale socket file (nobody answers on it), refuses if a live
   engine answers, binds, chmods the socket 0600 before listening, and serves.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ..risk.gate import TradingState
from .differences import open_count
from .paths import (
    ControlPathError,
    InstanceLock,
    default_run_dir,
    ensure_run_dir,
    lock_holder,
    lock_path,
    socket_path,
    sun_address,
)
from .server import ControlServer
from .signals import SignalPolicy, policy_for

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("tradeconsole.control")

LOCK_WAIT = 2.0  # seconds: a CLI writing a halt holds the lock for milliseconds; an engine, for ever
LIVE_CHECK_TIMEOUT = 1.0
LATCH_HALT_WAIT = 5.0  # seconds start waits for a picked-up halt's cancels; they go on after that
JOURNAL_HALT_EVERY = 1.0  # seconds between looks for a `tradeconsole halt` written into the journal

_late_halts: set[asyncio.Task] = set()  # a picked-up halt still cancelling after LATCH_HALT_WAIT


class ControlStartError(Exception):
    """Another engine runs this profile. `fatal` asks the runner not to start a second engine on
    the same journal (engine/services.py decides; today it reports and carries on)."""

    fatal = True


class ControlService:
    name = "control"

    def __init__(self, lock: InstanceLock | None, path: Path | None, server: ControlServer | None,
                 inode: tuple[int, int] | None) -> None:
        self.lock = lock  # None: the runner's lock, which the runner releases after the engine closed
        self.path = path
        self.server = server
        self._inode = inode
        self.signals: SignalPolicy | None = None
        self.watch: asyncio.Task | None = None  # _watch_journal_halts

    async def stop(self) -> None:
        if self.watch is not None:
            self.watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.watch
        try:
            if self.server is not None:
                await self.server.close()
        finally:
            if self.path is not None and self._inode is not None:
                # Only our own socket file: a newer engine may already have replaced it.
                with contextlib.suppress(OSError):
                    st = os.lstat(self.path)
                    if (st.st_dev, st.st_ino) == self._inode:
                        os.unlink(self.path)
            if self.lock is not None:
                self.lock.release()
            if self.signals is not None and not self.signals.attached:
                self.signals.uninstall()  # ours alone; a runner that attached uninstalls it itself
            log.info("control service stopped")


async def start(engine: Engine) -> ControlService | None:
    return await start_control(engine, install_signals=True, serve_or_alert=True)


async def start_control(engine: Engine, *, install_signals: bool = False, serve_or_alert: bool = False,
                        **server_options: float) -> ControlService:
    """The service; `install_signals` (the runners' path) puts the signal policy on the loop before
    the socket serves: once a client can see the engine running, a signal must halt it, not kill
    it, even before the runner attaches its own way to end (engine/control/signals.py).

    `serve_or_alert` (the runners' path): a socket that cannot be served safely (a folder another
    user owns or can write, a file in the way) is refused as always, but the engine keeps its
    instance lock and signal policy and raises a CRITICAL alert that `tradeconsole halt` cannot
    reach it, instead of a warning nobody reads. Without it the ControlPathError is raised."""
    cfg = engine.profile.control
    path = socket_path(engine.profile)
    runners = getattr(engine, "instance_lock", None)
    # The runner took the lock before it opened the journal, and keeps it until the journal is
    # closed (console/cli.py); an engine opened otherwise (a test, a tool) takes it here.
    ours = None if runners is not None and runners.held else \
        await _acquire(InstanceLock(lock_path(engine.profile)), engine.profile.name)
    lock = ours or runners
    signals: SignalPolicy | None = None
    try:
        if engine.state is not TradingState.HALTED:
            # Engine.open read the latch before we held the lock; a CLI halt may have landed since.
            await _pick_up_latch(engine)
        if install_signals:
            signals = policy_for(engine)
            signals.install()
        if not cfg.socket:
            log.info("control socket off (control.socket: false); instance lock %s held", lock.path)
            return await _watching(engine, ControlService(ours, None, None, None), signals)
        try:
            ensure_run_dir(path.parent, ours=path.parent == default_run_dir(engine.profile))
            await _clear_stale(path)
            sock, inode = _bind(path)
        except (ControlPathError, OSError) as exc:
            if not serve_or_alert:
                raise
            _no_socket_alert(engine, path, exc)
            return await _watching(engine, ControlService(ours, None, None, None), signals)
        server = ControlServer(engine, **server_options)
        try:
            await server.serve(sock)
        except BaseException:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
    except BaseException:
        if ours is not None:
            ours.release()
        if signals is not None and not signals.attached:
            signals.uninstall()
        raise
    log.info("control socket listening on %s", path)
    left = open_count(engine)
    if left:  # headless, this log line on stdout is the operator's only prompt
        log.warning("%d reconciliation difference(s) between journal and venue: reduce-only until each is answered "
                    "(the console's dialog, or `tradeconsole reconcile --profile ...` from any shell)", left)
    return await _watching(engine, ControlService(ours, path, server, inode), signals)


async def _watching(engine: Engine, svc: ControlService, signals: SignalPolicy | None) -> ControlService:
    svc.signals = signals
    last = await engine.journal.last(["halt"])
    svc.watch = asyncio.get_running_loop().create_task(_watch_journal_halts(engine, last.seq if last else 0))
    return svc


async def _watch_journal_halts(engine: Engine, after: int) -> None:
    """`tradeconsole halt` that cannot reach the socket (switched off, refused, not answering)
    writes its halt into the journal: a running engine reads it within a second and halts
    (entries cancelled, stops kept), rather than leaving it to the next start. Only the CLI's
    rows (`offline`), never the engine's own halts, which follow theirs."""
    while True:
        await asyncio.sleep(JOURNAL_HALT_EVERY)
        try:
            rows = await engine.journal.rows(kinds=["halt"], after_seq=after, where=("offline", True))
        except Exception:  # noqa: BLE001 - a journal read that failed is tried again next second
            log.exception("reading the journal for a CLI halt failed")
            continue
        for row in rows:
            after = row.seq
            reason = str(row.data.get("reason") or "").strip() or "halt latched in the journal"
            log.warning("a halt by %s was written into the journal: halting now", row.data.get("source") or "cli")
            task = engine.halt(str(row.data.get("source") or "cli"), f"{reason} (written into the journal)")
            _late_halts.add(task)
            task.add_done_callback(_halt_done)


async def _pick_up_latch(engine: Engine) -> None:
    """A halt row that `tradeconsole halt` wrote while this engine was opening is a halt: carried
    out as one (entries cancelled, stops kept, critical alert, counted in `trips`), not only shown.
    Start waits a bounded time for its cancels; a slow venue's retries go on after that."""
    row = await engine.journal.last(["halt", "rearm"])
    if row is None or row.kind != "halt":
        return
    reason = str(row.data.get("reason") or "").strip() or "halt latched in the journal"
    source = str(row.data.get("source") or "cli")
    log.warning("a halt by %s was latched while this engine was starting: halting now", source)
    task = engine.halt(source, f"{reason} (latched while the engine was starting)")
    done, _ = await asyncio.wait({task}, timeout=LATCH_HALT_WAIT)
    if task in done:
        _halt_done(task)
        return
    log.warning("the picked-up halt is still cancelling entries after %g s; it goes on", LATCH_HALT_WAIT)
    _late_halts.add(task)
    task.add_done_callback(_halt_done)


def _halt_done(task: asyncio.Task) -> None:
    _late_halts.discard(task)
    if not task.cancelled() and task.exception() is not None:  # latched in memory all the same
        log.error("the picked-up halt did not complete", exc_info=task.exception())


def _no_socket_alert(engine: Engine, path: Path, exc: BaseException) -> None:
    why = str(exc) or type(exc).__name__
    log.critical("NO CONTROL SOCKET: %s; refused to serve on %s", why, path)
    engine.alerts.publish(
        "critical", "service_failed",
        f"trading with NO control socket: {why}. `tradeconsole halt` reaches this engine only through its "
        f"journal (read every second; status, re-arm and reconcile do not reach it): if that fails, halt with F12 "
        f"or kill -HUP {os.getpid()}. Fix control.socket_path (a folder only you own, mode 0700) and restart",
        engine.clock.now())


async def _acquire(lock: InstanceLock, profile: str) -> InstanceLock:
    if not await lock.acquire(LOCK_WAIT):
        pid = lock_holder(lock.path)
        who = f"pid {pid}" if pid and pid > 0 else "another process"
        raise ControlStartError(f"another engine ({who}) is running profile {profile!r}: {lock.path} is locked")
    return lock


async def _clear_stale(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlPathError(f"{path}: exists and is not a socket; not touching it")
    if await answers(path):
        raise ControlStartError(f"another engine answers on {path}; not starting a second control socket")
    log.info("removing stale control socket %s", path)
    os.unlink(path)


async def answers(path: Path, timeout: float = LIVE_CHECK_TIMEOUT) -> bool:
    """True if something accepts connections on the socket at `path` (a live engine)."""
    try:
        with sun_address(path) as addr:
            _, writer = await asyncio.wait_for(asyncio.open_unix_connection(addr), timeout)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), timeout)
    return True


def _bind(path: Path) -> tuple[socket.socket, tuple[int, int]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with sun_address(path) as addr:
            sock.bind(addr)
        # The run dir is 0700 already, so nobody else can reach the socket during this window;
        # 0600 before listen() means no connection is ever accepted on a looser mode.
        os.chmod(path, 0o600)
        sock.listen(64)
        sock.setblocking(False)
        st = os.lstat(path)
    except BaseException:
        sock.close()
        raise
    return sock, (st.st_dev, st.st_ino)
