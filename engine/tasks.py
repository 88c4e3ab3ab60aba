"""Stopping things: a background task (a venue's poll loop, a quote stream, a clock reading), and
what a failed start had opened."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("tradeconsole.tasks")


async def stop_task(task: asyncio.Task | None) -> None:
    """Cancel `task` and wait for it to end.

    What the task itself raised on its way out is of no use to a caller that is stopping it
    (logged at debug); the caller's own cancellation, arriving meanwhile, is not swallowed."""
    if task is None:
        return
    if not task.done():
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:  # noqa: BLE001 - it ended; we were stopping it anyway
        log.debug("task %s failed while stopping", task.get_name(), exc_info=True)


async def close_after_failed_start(broker: Any, journal: Any) -> None:
    """Close the venue, then the journal, however the first goes: an open journal's thread would
    keep the process from exiting after the start's error is told. A failure closing either is
    logged, not raised: the start's own error is the one to tell (a journal that cannot be
    written failed the start's commit, then its close's again)."""
    try:
        await broker.close()
    except Exception:  # noqa: BLE001
        log.exception("closing the venue after a failed start")
    try:
        await journal.close()  # its connections are closed whatever its last commit does
    except Exception as exc:  # noqa: BLE001
        log.error("closing the journal after a failed start: %s", exc)
