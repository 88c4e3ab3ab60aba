"""One channel's delivery task: its queue, its rate limit, retries with backoff, the journal
row of every attempt, and the in-console warning when it fails.

Each channel has its own task and queue, so a channel that hangs holds up nobody but itself, and
the trading path only ever appends to a queue.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol
from zoneinfo import ZoneInfo

from .config import AlertsConfig, ChannelConfig
from .endpoint import Endpoint, Outcome
from .routing import RANK, BoundedQueue, Message, TokenBucket

log = logging.getLogger("tradeconsole.notify")

MAX_BACKOFF_SECONDS = 300.0  # doubling stops here: a channel down for hours is retried every 5 min
DIGEST_MAX = 50  # messages folded into one digest; the rest wait for the next one
RATE_POLL_SECONDS = 0.5  # how often a rate-limited channel looks at its bucket again


class Hooks(Protocol):
    """What a worker needs from the service: the journal, the alert bus, and the wording."""

    def journal(self, channel: str, data: dict) -> None: ...
    def publish(self, severity: str, kind: str, message: str, **data: object) -> None: ...
    @property
    def stopping(self) -> bool: ...
    async def until_stopping(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Wording:
    profile: str
    tz: ZoneInfo

    def stamp(self, ts: datetime) -> str:
        return ts.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S %Z")

    def render(self, msg: Message) -> tuple[str, str]:
        """(title, body) of a message; a digest lists its parts, one line each."""
        if not msg.parts:
            title = f"tradeconsole {self.profile}: {msg.severity.upper()} {msg.kind}"
            return title, f"{msg.text}\n{self.stamp(msg.ts)}"
        title = f"tradeconsole {self.profile}: {len(msg.parts)} alerts (highest {msg.severity.upper()})"
        lines = [f"{self.stamp(p.ts)} {p.severity.upper()} {p.kind}: {p.text}" for p in msg.parts]
        return title, "\n".join(lines)


def digest(parts: list[Message]) -> Message:
    top = max(parts, key=lambda m: RANK[m.severity])
    seqs = tuple(s for p in parts for s in p.seqs)
    return Message(top.severity, "digest", f"{len(parts)} alerts", parts[-1].ts, seqs, parts)


class ChannelWorker:
    def __init__(self, name: str, endpoint: Endpoint, ch: ChannelConfig, cfg: AlertsConfig, hooks: Hooks,
                 wording: Wording, wall: Callable[[], float]) -> None:
        self.name = name
        self.endpoint = endpoint
        self.queue = BoundedQueue(cfg.queue_size)
        self.bucket = TokenBucket(ch.rate_limit_per_minute, wall)
        self._attempts = cfg.retry_attempts
        self._backoff = cfg.retry_backoff_seconds
        self._hooks = hooks
        self._wording = wording
        self.failing = False
        self.lost = 0  # messages given up on since the channel last delivered
        self._shed_reported = 0
        self.sending = False
        self._attempt_started = 0.0
        self.delivered = 0
        # At shutdown: the message an attempt was cut off in (cancelled mid-send), and the ones
        # given up on because the engine was stopping; the service journals both as undelivered.
        self.current: Message | None = None
        self.unsent: list[Message] = []

    @property
    def idle(self) -> bool:
        return not self.sending and not self.queue

    @property
    def holds_critical(self) -> bool:
        return any(m.severity == "critical" for m in ([self.current] if self.current else []) + list(self.queue))

    def stuck(self, longer_than: float) -> bool:
        """In one attempt for longer than `longer_than` wall seconds: likely hung."""
        return self.sending and time.monotonic() - self._attempt_started > longer_than

    async def run(self) -> None:
        while True:
            await self.queue.wait()
            congested = self.failing
            if not self.bucket.take():
                congested = True
                while not self.bucket.take():
                    if self._hooks.stopping:
                        break  # shutting down: the backlog goes now, as one digest
                    await asyncio.sleep(min(self.bucket.wait_time(), RATE_POLL_SECONDS))
            self._report_shed()
            # Over the rate, or behind a dead channel: what queued up goes as one digest, so the
            # reader gets every alert without a flood.
            if congested and len(self.queue) > 1:
                msg = digest(self.queue.take(DIGEST_MAX))
            else:
                msg = self.queue.pop()
            self.sending, self.current = True, msg
            try:
                await self.deliver(msg)
            finally:
                self.sending = False
            self.current = None  # left set when cancelled mid-send: that one did not go out

    async def deliver(self, msg: Message) -> bool:
        title, body = self._wording.render(msg)
        out = Outcome(False, "not attempted")
        for attempt in range(1, self._attempts + 1):
            last_try = self._hooks.stopping
            self._attempt_started = time.monotonic()
            out = await self.endpoint.send(title, body, msg.severity)
            self._hooks.journal(self.name, {
                "result": "ok" if out.ok else "failed", "attempt": attempt, "of": self._attempts,
                "error": out.error, "endpoint": self.endpoint.label, "severity": msg.severity,
                "kind": msg.kind, "messages": msg.count, "alerts": list(msg.seqs[:DIGEST_MAX])})
            if out.ok:
                self.delivered += msg.count
                self._recovered()
                return True
            log.warning("alert channel %s (%s) attempt %d/%d failed: %s", self.name, self.endpoint.label,
                        attempt, self._attempts, out.error)
            if attempt == self._attempts or last_try:
                break
            await self._hooks.until_stopping(min(self._backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))
            # Shutting down cuts the backoff short: a critical message gets one last attempt within
            # the service's grace, the rest are left for the journal as undelivered.
            if self._hooks.stopping and msg.severity != "critical":
                break
        if self._hooks.stopping:
            self.unsent.append(msg)
            return False
        self._failed(out.error, msg.count)
        return False

    def _report_shed(self) -> None:
        """A full queue made room by dropping messages (info first): say so in the journal."""
        shed = self.queue.dropped - self._shed_reported
        if shed:
            self._shed_reported = self.queue.dropped
            self.lost += shed
            self._hooks.journal(self.name, {"result": "dropped", "reason": "queue full", "messages": shed,
                                            "endpoint": self.endpoint.label})

    def _failed(self, error: str, count: int) -> None:
        self.lost += count
        if self.failing:
            return  # one warning per outage: the recovery message carries the count
        self.failing = True
        self._hooks.publish("warning", "delivery_failed",
                            f"alert channel {self.name} ({self.endpoint.label}) is failing: {error}",
                            channel=self.name)

    def _recovered(self) -> None:
        if not self.failing:
            return
        lost, self.failing, self.lost = self.lost, False, 0
        self._hooks.publish("info", "delivery_recovered",
                            f"alert channel {self.name} ({self.endpoint.label}) delivers again; "
                            f"{lost} message(s) were lost while it failed", channel=self.name, lost=lost)
