"""Opening the engine for `tradeconsole run`, console or headless: the journal's instance lock
first, stop signals held until the engine's own policy is installed, then the engine and its
services. A start that is refused says why in one line and exits 2, with nothing left locked.
"""
from __future__ import annotations

import asyncio
import sys


LOCK_WAIT = 2.0  # seconds a start waits for the instance lock


async def instance_lock(profile):
    """The journal's instance lock, taken before the journal is opened and held for the engine's
    life (Engine.close lets it go): two engines on one journal would interleave two sessions and
    share a venue account. Returns None when the lock file cannot be made at all (the journal's
    own open then says why)."""
    from engine.control.paths import InstanceLock, lock_holder, lock_path

    lock = InstanceLock(lock_path(profile))
    try:
        lock.path.parent.mkdir(parents=True, exist_ok=True)
        taken = await lock.acquire(LOCK_WAIT)
    except OSError:
        return None
    if not taken:
        holder = lock_holder(lock.path)
        shown = f" (pid {holder})" if holder and holder > 0 else ""
        print(f"tradeconsole: profile {profile.name!r} is already running{shown}: its journal is in use "
              f"({lock.path} is locked); see `tradeconsole status --profile ...`", file=sys.stderr)
        raise SystemExit(2)
    return lock



def start_refusals() -> tuple[type[Exception], ...]:
    """What a start refuses with (one line to print). Looked up only once a start has failed, so a
    paper start does not import the venue wiring just to name its error."""
    from engine.brokers.paper_store import PaperStoreError
    from engine.feeds.csv_replay import CsvFeedError
    from engine.journal_errors import JournalError
    from engine.logsetup import LogFileError
    from engine.risk.hours import CalendarError
    from engine.stages import StageNotGranted
    from engine.venue_wiring import VenueStartError

    return CsvFeedError, CalendarError, VenueStartError, JournalError, PaperStoreError, LogFileError, StageNotGranted


def hold_signals() -> list[str]:
    """Keep the stop signals that arrive while the engine opens, for its signal policy.

    Until the policy is installed asyncio's own SIGINT handler would cancel the start half way,
    wherever it is (an aiosqlite connection left open keeps the process alive; a cancellation
    caught on the way was a Ctrl-C lost), and SIGTERM/SIGHUP would kill it outright."""
    import signal

    held: list[str] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            loop.add_signal_handler(sig, held.append, sig.name)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - not POSIX / main thread
            continue
    return held


async def open_engine(profile, seed, speed, *, stdout: bool):
    from engine.control.signals import policy_for
    from engine.engine import Engine
    from engine.services import start_services

    lock = await instance_lock(profile)
    held = hold_signals()
    try:
        engine = await Engine.open(profile, seed=seed, speed=speed, log_to_stdout=stdout)
    except BaseException as exc:
        if lock is not None:
            lock.release()
        if isinstance(exc, start_refusals()):  # evaluated only when an exception is being matched
            print(f"tradeconsole: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        raise
    if lock is None:  # the journal opened, yet no lock file can be made beside it: never unlocked
        from engine.control.paths import lock_path

        await engine.close()
        print(f"tradeconsole: {lock_path(profile)}: cannot create the instance lock beside the journal",
              file=sys.stderr)
        raise SystemExit(2)
    engine.instance_lock = lock
    try:
        await start_services(engine)
    except BaseException as exc:  # a fatal service error: nothing may trade this profile twice
        await engine.close()
        if not isinstance(exc, Exception):
            raise
        print(f"tradeconsole: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # The engine's policy from here on (the control service may have installed it already; again
    # is harmless), and what came during the start is acted on now: halt, then stop, as configured.
    policy = policy_for(engine)
    policy.install(asyncio.get_running_loop())
    for name in held:
        policy.handle(name)
    return engine
