"""The outbound alerts service: engine alerts -> coalescing -> routing -> one queue per channel.

The trading path's whole cost is the bus subscriber below: one append to a bounded queue. A
dispatcher task (a few turns a second) coalesces and routes; each channel's own task delivers,
retries and journals (engine/notify/worker.py); apprise runs on daemon threads with timeouts
(engine/notify/endpoint.py). Nothing here can stop the engine from starting: a channel whose
variable is missing or whose URL apprise refuses is left out with a warning alert.

Clocks: coalescing windows and the daily summary follow the engine clock (they are about the
alert stream and the venue's day); rate limits, retry backoff, timeouts and the heartbeat follow
the wall clock (they are about real providers, real phones and a real process being alive).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Mapping

from ..journal_errors import JournalError
from ..models import Alert
from .config import AlertsConfig
from .endpoint import Endpoint, build_endpoints
from .routing import BoundedQueue, Coalescer, Message, Router
from .summary import DailySummary, heartbeat
from .undelivered import left_by_last_session, shutdown_row
from .worker import ChannelWorker, Wording

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("tradeconsole.notify")

TICK_SECONDS = 0.1  # dispatcher turn: alerts reach a channel's queue within this
STOP_GRACE_SECONDS = 2.0  # on close, queued alerts get this long to go out
STUCK_SECONDS = 1.0  # ... unless their channel has been in one attempt this long already
CRITICAL_GRACE_SECONDS = 5.0  # a channel holding a critical message is waited for this long, stuck
# or not: a slow SMTP relay takes seconds. The hard bound of a close; what is left is journaled.
FLUSH_DELAY_SECONDS = 0.25  # delivery rows ride the engine's next commit, or ours after this


class NotifyService:
    name = "alerts"

    def __init__(self, engine: "Engine", cfg: AlertsConfig, endpoints: dict[str, Endpoint],
                 heartbeat_endpoint: Endpoint | None, wall: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.cfg = cfg
        wording = Wording(engine.profile.name, engine.portfolio.tz)
        self.workers = {n: ChannelWorker(n, ep, cfg.channels[n], cfg, self, wording, wall)
                        for n, ep in endpoints.items()}
        self.router = Router(cfg, self.workers)
        self.coalescer = Coalescer(cfg.coalesce_seconds)
        self.inbox = BoundedQueue(cfg.queue_size)
        self._inbox_shed = 0
        self.summary = DailySummary(engine) if cfg.daily_summary else None
        self.heartbeat_endpoint = heartbeat_endpoint
        self._stopping = False
        self._stopped = False
        self._stop_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._flush_task: asyncio.Task | None = None

    # -- hooks the workers use ----------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stopping

    async def until_stopping(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the service starts stopping meanwhile (a retry's backoff)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    def journal(self, channel: str, data: dict) -> None:
        if self.engine.closed:
            return
        try:
            self.engine.journal.append("delivery", self.engine.clock.now(), channel, data)
        except JournalError:
            return
        if not self._stopped:  # after stop, the engine's close commits them
            self._flush_soon()

    def publish(self, severity: str, kind: str, message: str, at: datetime | None = None, **data: object) -> None:
        if self._stopping or self.engine.closed:
            return
        self.engine.alerts.publish(severity, kind, message, at or self.engine.clock.now(), **data)
        self._flush_soon()

    # -- life cycle ---------------------------------------------------------------------------
    async def begin(self) -> None:
        if self.summary is not None:
            await self.summary.prime()
        self.engine.alerts.subscribe(self._on_alert)
        await self._resend_undelivered()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._dispatch_loop(), name="tc-notify-dispatch"))
        for w in self.workers.values():
            self._tasks.append(loop.create_task(w.run(), name=f"tc-notify-{w.name}"))
        if self.heartbeat_endpoint is not None:
            self._tasks.append(loop.create_task(
                heartbeat(self.heartbeat_endpoint, self.cfg.heartbeat.interval_seconds, self.engine,
                          self.journal, self.publish), name="tc-notify-heartbeat"))

    async def stop(self) -> None:
        if self._stopping:
            return
        try:
            await self._tick(final=True)  # repeats still counting go out with their counts
        except Exception:  # noqa: BLE001 - shutting down: never in the way
            log.exception("alerts: final dispatch failed")
        self._stopping = True
        self._stop_event.set()  # retries in backoff wake now
        loop = asyncio.get_running_loop()
        began = loop.time()
        while any(self._worth_waiting(w, loop.time() - began) for w in self.workers.values()):
            await asyncio.sleep(0.05)
        tasks = self._tasks + ([self._flush_task] if self._flush_task is not None else [])
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._stopped = True
        for w in self.workers.values():
            # Given up on at shutdown, cut off mid-attempt, still queued: none of it went out.
            lost = w.unsent + ([w.current] if w.current is not None else []) + list(w.queue)
            if lost:
                self.journal(w.name, shutdown_row(lost, w.endpoint.label))
                log.warning("alerts: %d message(s) for %s not delivered at shutdown%s", len(lost), w.name,
                            " (critical ones are sent again at the next start)" if any(
                                m.severity == "critical" for m in lost) else "")

    @staticmethod
    def _worth_waiting(w: ChannelWorker, elapsed: float) -> bool:
        # Healthy channels get the short grace; one already stuck in an attempt is not waited for
        # (its daemon thread ends at its own socket timeout), unless it holds a critical message.
        if w.idle:
            return False
        if w.holds_critical and elapsed < CRITICAL_GRACE_SECONDS:
            return True
        return elapsed < STOP_GRACE_SECONDS and not w.stuck(STUCK_SECONDS)

    async def _resend_undelivered(self) -> None:
        try:
            left = await left_by_last_session(self.engine.journal)
        except Exception:  # noqa: BLE001 - a start is never held up by this
            log.exception("alerts: could not read what the last session left undelivered")
            return
        sent: list[str] = []
        for channel, msgs in left.items():
            names = [channel] if channel in self.workers else self.router.recipients("critical", msgs[0].kind, None)
            for name in names:
                for m in msgs:
                    self.workers[name].queue.put(m)
                sent.append(f"{len(msgs)} on {name}")
        if sent:
            self.publish("info", "delivery_resent", "critical alerts not delivered before the last shutdown "
                         f"are sent again: {', '.join(sent)}")

    # -- the trading path's side: one append ----------------------------------------------------
    def _on_alert(self, alert: Alert) -> None:
        if self._stopping:
            return
        try:
            self.inbox.put(alert)
        except Exception:  # noqa: BLE001 - whatever happens here must not reach the order path
            log.exception("alerts: could not queue alert %s", alert.seq)

    # -- dispatcher ---------------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bad alert must not end delivery of the rest
                log.exception("alerts: dispatch failed")

    async def _tick(self, final: bool = False) -> None:
        if self.inbox.dropped > self._inbox_shed:
            # A burst larger than queue_size inside one dispatcher turn: say what was shed.
            self.journal("*", {"result": "dropped", "reason": "inbox full",
                               "messages": self.inbox.dropped - self._inbox_shed})
            self._inbox_shed = self.inbox.dropped
        while self.inbox:
            a = self.inbox.pop()
            if self.coalescer.offer(a):
                self._route(Message(a.severity, a.kind, a.message, a.ts, (a.seq,), exclude=a.data.get("channel")))
        for m in self.coalescer.due(self.engine.clock.now(), final):
            self._route(m)
        if self.summary is not None and not final and not self.engine.closed and self.summary.crossed():
            text, at = await self.summary.compose()
            self.publish("info", "daily_summary", text, at=at)

    def _route(self, msg: Message) -> None:
        for name in self.router.recipients(msg.severity, msg.kind, msg.exclude):
            self.workers[name].queue.put(msg)

    def _flush_soon(self) -> None:
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        # The engine commits once per batch; when it is idle (paused, feed ended) the rows would
        # sit uncommitted and hold the console's snapshot back, so commit them ourselves.
        await asyncio.sleep(FLUSH_DELAY_SECONDS)
        if self.engine.journal.pending and not self.engine.closed:
            try:
                await self.engine.journal.flush()
            except Exception:  # noqa: BLE001 - the engine's own flush will report a real problem
                log.exception("alerts: journal flush failed")


async def start(engine: "Engine", *, environ: Mapping[str, str] | None = None,
                wall: Callable[[], float] | None = None) -> NotifyService | None:
    cfg = engine.profile.alerts
    if not (cfg.channels or cfg.heartbeat.url_env or cfg.daily_summary):
        return None
    endpoints, hb, problems = build_endpoints(cfg, os.environ if environ is None else environ)
    svc = NotifyService(engine, cfg, endpoints, hb, wall or time.monotonic)
    await svc.begin()
    for line in problems:
        log.warning("alerts: %s; left out", line)
        svc.publish("warning", "alert_config", f"{line}; that channel is left out")
    if endpoints:
        log.info("alerts: channels %s", ", ".join(f"{n} ({e.label})" for n, e in endpoints.items()))
    return svc
