"""One injectable clock. Everything that asks the time asks this, so tests and replays run in
simulated time, fast and deterministic."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

EPOCH_SIM_START = datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc)


class Clock:
    """Base: `now()` is aware UTC; `monotonic()` is seconds for measuring intervals."""

    def now(self) -> datetime:
        raise NotImplementedError

    def monotonic(self) -> float:
        return self.now().timestamp()


class WallClock(Clock):
    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()


class SimClock(Clock):
    """Simulated time, advanced only by the feed that drives it."""

    def __init__(self, start: datetime = EPOCH_SIM_START) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock start must be timezone-aware")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now = self._now + timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError(f"time does not run backwards ({when} < {self._now})")
        self._now = when
