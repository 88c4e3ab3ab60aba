"""What every polled venue broker shares: the event inbox and the polling loop with backoff."""
from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import replace
from typing import Any, Awaitable, Callable

from ..models import Order, OrderStatus
from ..tasks import stop_task
from .base import Broker, BrokerEvent, OrderUpdate
from .keys import redact
from .retry import Failure, VenueError
from .venue_fields import ZERO

log = logging.getLogger("tradeconsole.venue")


class PollingVenue(Broker):
    """Subclasses set `self.venue` (a VenueSection), `self.connected`, `self._events`,
    `self._working` (ids of working orders), `self._tracks` (by client id), `self.clock`,
    `self._poll_task` (None) and implement `poll()`; the loop backs off while the venue errors
    and never dies of one error."""

    def drain_events(self) -> list[BrokerEvent]:
        events, self._events = self._events, []
        return events

    def _now_ms(self) -> int:
        """The engine's clock in the venue's epoch milliseconds (trade cursors, submit times)."""
        return int(self.clock.now().timestamp() * 1000)

    def _emit(self, cid: str, status: OrderStatus, reason: str = "", vid: str | None = None) -> None:
        # A venue's error text can echo request parameters: redacted and bounded before it
        # becomes an order's reason on screen and in the journal.
        self._events.append(OrderUpdate(cid, status, self.clock.now(), redact(reason)[:300], vid))

    def _start_submit(self, order: Order, make_track: Callable[[Order], Any]) -> Any | None:
        """Track the broker's own copy of a submitted order (the venue's `TrackedOrder`, from
        `make_track`), or refuse it at once: a client id seen before, or no connection."""
        cid = order.client_order_id
        if cid in self._tracks:
            self._emit(cid, OrderStatus.REJECTED, "duplicate client order id")
            return None
        track = make_track(replace(order, status=OrderStatus.NEW, filled_qty=ZERO, avg_fill_price=ZERO, fees=ZERO))
        self._tracks[cid] = track
        if not self.connected:
            self._reject(track, f"{self.name} is not connected")
            return None
        return track

    def _reject(self, track, reason: str) -> None:
        """Refuse a tracked order (the venue's own `TrackedOrder`) once: one terminal event."""
        track.order.status = OrderStatus.REJECTED
        track.order.reason = reason
        self._working.discard(track.order.client_order_id)
        if not track.terminal_sent:
            track.terminal_sent = True
            self._emit(track.order.client_order_id, OrderStatus.REJECTED, reason, track.order.venue_order_id)

    async def _send_new_order(self, track, send: Callable[[], Awaitable[Any]],
                              lookup: Callable[[], Awaitable[Any | None]],
                              accept: Callable[[Any, Any], Any]) -> None:
        """Send a tracked order once, and never twice.

        A failure the venue surely did not act on is retried with backoff; one it may have
        acted on (a timeout, a dropped connection) is first looked up by client id. Out of
        retries, or with the lookup failing too, the order is left unconfirmed: the poller keeps
        looking for it. `accept(track, raw)` takes the venue's answer (it may be a coroutine)."""
        cid = track.order.client_order_id
        attempt = 0
        while True:
            try:
                raw = await send()
            except VenueError as err:
                self.retrier.note(err, f"submit {cid}")
                if err.kind in (Failure.FINAL, Failure.NOT_FOUND):
                    self._reject(track, f"refused by {self.name}: {err}")
                    return
                if attempt >= self.retrier.policy.retries:
                    if err.kind is Failure.RATE_LIMIT:  # never processed: safe to give up
                        self._reject(track, f"{self.name} rate limit: gave up after {attempt + 1} tries")
                    else:
                        self._unconfirmed(track, err)
                    return
                await self.retrier.backoff(attempt, err.kind)
                attempt += 1
                if not err.ambiguous:
                    continue
                try:
                    raw = await lookup()
                except VenueError as lerr:
                    self._unconfirmed(track, lerr)
                    return
                if raw is None:
                    continue
                log.info("venue %s: %s found after %s; not sent again", self.name, cid, err.kind.value)
            accepted = accept(track, raw)
            if inspect.isawaitable(accepted):
                await accepted
            return

    def _unconfirmed(self, track, err: VenueError) -> None:
        """The venue may or may not have it: never send again; the poller keeps looking."""
        if track.unconfirmed_since is None:
            track.unconfirmed_since = self.clock.monotonic()
        log.warning("venue %s: %s outcome unknown (%s); looking it up by client id", self.name,
                    track.order.client_order_id, err.kind.value)

    def _start_polling(self) -> None:
        if self.venue.timeouts.poll_seconds > 0:
            self._poll_task = asyncio.get_running_loop().create_task(self._poll_loop(), name=f"poll-{self.name}")

    async def _stop_polling(self) -> None:
        task, self._poll_task = self._poll_task, None
        await stop_task(task)

    async def _poll_loop(self) -> None:
        delay = self.venue.timeouts.poll_seconds
        while self.connected:
            await asyncio.sleep(delay)
            try:
                await self.poll()
                delay = self.venue.timeouts.poll_seconds
            except VenueError as err:
                delay = min(self.venue.timeouts.backoff_max_seconds, delay * 2)
                log.warning("venue %s: poll failed (%s)", self.name, err.kind.value)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("venue %s: poll crashed", self.name)

    async def poll(self) -> None:
        raise NotImplementedError
