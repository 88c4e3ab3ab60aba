"""What the CLI can do with no engine running: read the journal, and latch a halt into it.

The latch is the last of the journal's halt/rearm rows (engine/engine.py `_restore_latch`), so a
`halt` row appended here makes the next start come up halted. We hold the profile's instance
lock while writing, so an engine starting at that moment waits for us and then re-reads the
latch (engine/control/service.py); it cannot slip in between and come up armed.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from ..clock import EPOCH_SIM_START
from ..journal import Journal
from ..profile import Profile, journal_path
from .paths import InstanceLock, lock_holder, lock_path

LOCK_WAIT = 1.0  # seconds: an engine that holds the lock holds it for good; do not wait long


def engine_pid(profile: Profile) -> int | None:
    """Pid of the engine holding this profile's instance lock (-1: held, pid unknown), or None."""
    return lock_holder(lock_path(profile))


async def _latch_row(journal: Journal):
    return await journal.last(["halt", "rearm"])


async def offline_halt(profile: Profile, reason: str) -> dict[str, Any]:
    """Append a `halt` row (source "cli"). Returns what the latch was before and whether an engine
    held the lock (running but not reachable over the socket) while we wrote."""
    jpath = journal_path(profile)
    try:
        jpath.parent.mkdir(parents=True, exist_ok=True)  # the lock lives beside the journal
    except OSError as exc:  # told as the journal's folder: what is in its way
        raise OSError(exc.errno, exc.strerror, str(jpath)) from None
    lock = InstanceLock(lock_path(profile))
    await lock.acquire(LOCK_WAIT)  # held or not, the row goes in (engine_pid says who holds it)
    try:
        journal = await Journal.open(jpath)
        try:
            prev = await _latch_row(journal)
            was_halted = prev is not None and prev.kind == "halt"
            # The row carries the journal's own clock (a simulated profile's time is not the
            # wall's, and the next start continues its clock from the newest row); the wall time
            # of the operator's command rides along for the reader.
            ts = await journal.last_ts() or EPOCH_SIM_START
            # `offline`: a running engine that the socket could not reach reads it within a second
            # (engine/control/service.py _watch_journal_halts) and halts.
            journal.append("halt", ts, None, {"source": "cli", "reason": reason, "first": not was_halted,
                                              "wall_ts": datetime.now(UTC).isoformat(timespec="seconds"),
                                              "offline": True})
            await journal.flush()
            mine = await journal.last(["halt"])
            held = lock.held
            lock.release()
            pid = None if held else engine_pid(profile)
            # An engine the socket could not reach reads the row within a second and halts
            # (engine/control/service.py): its own halt row after ours says it did.
            seen = pid is not None and await _engine_halted_after(journal, mine.seq if mine else 0)
        finally:
            await journal.close()
    finally:
        lock.release()
    return {"journal": str(jpath), "was_halted": was_halted, "engine_pid": pid, "engine_halted": seen}


ENGINE_HALT_WAIT = 3.0  # seconds the CLI waits for a running engine to read its journal halt
ENGINE_HALT_POLL = 0.1


async def _engine_halted_after(journal: Journal, seq: int) -> bool:
    """Whether the running engine journals a halt of its own after row `seq`, within a bounded wait."""
    for _ in range(int(ENGINE_HALT_WAIT / ENGINE_HALT_POLL)):
        if [r for r in await journal.rows(kinds=["halt"], after_seq=seq) if not r.data.get("offline")]:
            return True
        await asyncio.sleep(ENGINE_HALT_POLL)
    return False


async def offline_status(profile: Profile) -> dict[str, Any]:
    """The state the next start will come up in, and how the last session ended, from the journal."""
    jpath = journal_path(profile)
    out: dict[str, Any] = {"ok": True, "running": False, "profile": profile.name, "mode": profile.mode,
                           "journal": str(jpath), "journal_exists": jpath.exists(), "engine_pid": engine_pid(profile)}
    if not jpath.exists():
        out.update(latched=False, next_start="armed", halt_reason="", sessions=0)
        return out
    journal = await Journal.open(jpath)
    try:
        latch = await _latch_row(journal)
        start = await journal.last(["session"])
        end = await journal.last(["session_end"])
        equity = await journal.last(["equity"])
        sessions = await journal.count("session")
    finally:
        await journal.close()
    latched = latch is not None and latch.kind == "halt"
    out.update(
        latched=latched, next_start="halted" if latched else "armed",
        halt_reason=latch.data.get("reason", "") if latched else "",
        halt_source=latch.data.get("source", "") if latched else "",
        latch_ts=None if latch is None else latch.data.get("wall_ts", latch.ts),
        latch_kind=None if latch is None else latch.kind,
        sessions=sessions,
    )
    if start is not None:
        # A session row after the last session_end means the last run never closed: a crash or kill -9.
        clean = end is not None and end.seq > start.seq
        out["last_session"] = {"session": start.data.get("session"), "started": start.ts, "ended_cleanly": clean}
        if clean:
            out["last_session"].update(ended=end.ts, equity=end.data.get("equity"), positions=end.data.get("positions"),
                                       state=end.data.get("state"))
    if equity is not None:
        out["last_equity"] = {"ts": equity.ts, "equity": equity.data.get("equity"),
                              "positions": equity.data.get("positions")}
    return out
