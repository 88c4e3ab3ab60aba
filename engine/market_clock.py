"""A venue's own market clock (Alpaca `GET /v2/clock`), for the trading-hours check.

The exchange calendar knows the scheduled sessions; the venue's clock says whether its market is
open now and when it next opens and closes (an unscheduled close or a late open included). With
a venue that has one (`broker.get_clock`) and `market_hours.venue_clock_seconds > 0`, the venue
run loop reads it at most once per that many seconds (one read in flight at a time, on a task of
its own, never awaited by the loop) and `TradingHoursCheck` judges regular hours by the last
reading (engine/risk/hours.py). A reading holds until the transition it announced, and for three
refresh intervals at most: after that, or when no read has succeeded, the check falls back to
the calendar, and says so in its detail. Extended hours are the calendar's (the clock describes
the regular session only).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from .tasks import stop_task

log = logging.getLogger("tradeconsole.venue")


@dataclass(frozen=True, slots=True)
class ClockReading:
    is_open: bool
    next_open: datetime
    next_close: datetime
    read_at: float  # time.monotonic() of the read


def _utc(x: Any) -> datetime:
    if isinstance(x, str):
        x = datetime.fromisoformat(x.replace("Z", "+00:00"))
    if not isinstance(x, datetime):
        raise ValueError(f"not a time: {x!r}")
    return x.replace(tzinfo=timezone.utc) if x.tzinfo is None else x.astimezone(timezone.utc)


class VenueMarketClock:
    def __init__(self, read: Callable[[], Awaitable[dict]], interval: float, venue: str = "alpaca",
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self.interval = interval
        self.venue = venue
        self._monotonic = monotonic
        self.reading: ClockReading | None = None
        self.reads = 0
        self.failures = 0
        self.last_error = ""
        self._task: asyncio.Task | None = None
        self._next = 0.0  # monotonic time the next read is due

    @property
    def max_age(self) -> float:
        return 3 * self.interval

    async def refresh(self) -> bool:
        """Read the clock once; False (and the old reading kept) when the venue cannot answer."""
        self._next = self._monotonic() + self.interval
        self.reads += 1
        try:
            c = await self._read()
            reading = ClockReading(bool(c["is_open"]), _utc(c["next_open"]), _utc(c["next_close"]), self._monotonic())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the calendar covers; said once per outage
            from .brokers.keys import redact

            self.failures += 1
            was = self.last_error
            self.last_error = f"{type(exc).__name__}: {redact(str(exc))[:200]}"
            if not was:
                log.warning("venue %s: market clock unavailable (%s); trading hours from the calendar "
                            "once the last reading is too old", self.venue, self.last_error)
            return False
        if self.last_error:
            log.info("venue %s: market clock answers again", self.venue)
        self.last_error = ""
        self.reading = reading
        return True

    def maybe_refresh(self) -> None:
        """Start a read when one is due and none is in flight (the venue loop calls this per batch)."""
        if (self._task is None or self._task.done()) and self._monotonic() >= self._next:
            self._next = self._monotonic() + self.interval
            self._task = asyncio.get_running_loop().create_task(self.refresh(), name=f"clock-{self.venue}")

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    def state(self, now: datetime) -> tuple[bool, datetime | None] | None:
        """(open, the next transition) at `now` by the last reading, or None when it cannot tell:
        nothing read yet, the reading older than three intervals, or the market due to have
        opened (the venue has not confirmed it: the calendar decides until it does). Past an
        announced close it is closed, with the next open unknown."""
        r = self.reading
        if r is None or self._monotonic() - r.read_at > self.max_age:
            return None
        if r.is_open:
            return (True, r.next_close) if now < r.next_close else (False, None)
        return (False, r.next_open) if now < r.next_open else None
