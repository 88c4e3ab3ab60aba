"""Which channels hear an alert, and the anti-flood parts: coalescing of identical alerts, a
per-channel token bucket, and bounded queues that shed info before warnings and criticals.

Pure logic, no I/O: time is passed in, so tests drive it directly.
"""
from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable

from ..models import Alert
from .config import AlertsConfig

RANK = {"info": 0, "warning": 1, "critical": 2}
# Alerts about a channel's own failure never go back to that channel: it would fail again and,
# without this rule, feed a loop of failures about failures.
SELF_EXCLUDING_KINDS = frozenset({"delivery_failed"})


@dataclass(slots=True)
class Message:
    """What a channel sends: one alert, a coalesced repeat, or a digest of several."""
    severity: str
    kind: str
    text: str
    ts: datetime
    seqs: tuple[int, ...] = ()
    parts: list["Message"] = field(default_factory=list)  # a digest's messages
    exclude: object = None  # the channel a delivery_failed alert is about

    @property
    def count(self) -> int:
        return len(self.parts) or 1


class Router:
    def __init__(self, cfg: AlertsConfig, live: Iterable[str]) -> None:
        self._live = set(live)  # channels that resolved; a disabled one is simply skipped
        self._by_sev: dict[str, list[str]] = {
            sev: [n for n, c in cfg.channels.items() if sev in c.severities and n in self._live] for sev in RANK}
        self._routes = cfg.routes

    def recipients(self, severity: str, kind: str, exclude: object = None) -> list[str]:
        out = list(self._by_sev.get(severity, ()))
        rule = self._routes.get(kind)
        if rule is not None:
            out += [n for n in rule.add if n in self._live and n not in out]
            out = [n for n in out if n not in rule.mute]
        if kind in SELF_EXCLUDING_KINDS and exclude is not None:
            out = [n for n in out if n != exclude]
        return out


class Coalescer:
    """The first of a run of identical alerts (severity + kind + message) goes out at once; the
    rest within `window` seconds of engine time are counted, and when the window closes one more
    message says how many there were in all: "text (x12)"."""

    def __init__(self, window_seconds: float) -> None:
        self._window = timedelta(seconds=window_seconds)
        self._open: dict[tuple[str, str, str], list] = {}  # key -> [first alert, count, window end]
        self._ready: list[Message] = []

    def offer(self, alert: Alert) -> bool:
        """True: send this alert now. False: counted into an open window."""
        if not self._window:
            return True
        key = (alert.severity, alert.kind, alert.message)
        w = self._open.get(key)
        if w is not None:
            if alert.ts < w[2]:
                w[1] += 1
                return False
            self._close(key, w)
        self._open[key] = [alert, 1, alert.ts + self._window]
        return True

    def due(self, now: datetime, final: bool = False) -> list[Message]:
        """Repeat messages of the windows closed by `now` (all of them when `final`)."""
        for key, w in list(self._open.items()):
            if final or now >= w[2]:
                self._close(key, w)
        out, self._ready = self._ready, []
        return out

    def _close(self, key: tuple[str, str, str], w: list) -> None:
        del self._open[key]
        first, count = w[0], w[1]
        if count > 1:
            self._ready.append(Message(first.severity, first.kind, f"{first.message} (x{count})", first.ts,
                                       (first.seq,), exclude=first.data.get("channel")))


class TokenBucket:
    """`per_minute` messages a minute, as a bucket of that size refilling evenly. Wall time: the
    limit protects a real phone and a real provider, and a simulated day run flat out must not
    send a day's alerts in one second."""

    def __init__(self, per_minute: int, wall: Callable[[], float]) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._wall = wall
        self._tokens = self.capacity
        self._at = wall()

    def _refill(self) -> None:
        now = self._wall()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self) -> bool:
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def wait_time(self) -> float:
        self._refill()
        return max(0.0, (1 - self._tokens) / self.rate)


class BoundedQueue:
    """Messages waiting for one consumer. When full, the oldest info message makes room (the
    oldest of any severity when there is no info left); `dropped` counts what was shed."""

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self.dropped = 0
        self._items: deque = deque()
        self._event = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(list(self._items))

    def put(self, item: Message | Alert) -> None:
        if len(self._items) >= self.maxlen:
            victim = next((m for m in self._items if m.severity == "info"), self._items[0])
            self._items.remove(victim)
            self.dropped += 1
        self._items.append(item)
        self._event.set()

    def pop(self) -> Message | Alert:
        return self._items.popleft()

    def take(self, n: int) -> list:
        out = []
        while self._items and len(out) < n:
            out.append(self._items.popleft())
        return out

    async def wait(self) -> None:
        while not self._items:
            self._event.clear()
            await self._event.wait()
