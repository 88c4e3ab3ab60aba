"""What every polled venue broker shares: the event inbox and the polling loop with backoff."""
from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import replace
from typing import Any, Awaitable, Callable

from ..models import Order, OrderPurpose, OrderStatus, OrderType, Side
from ..tasks import stop_task
from .base import Broker, BrokerEvent, OrderUpdate
from .keys import redact
from .retry import Failure, RateLimitHold, VenueError
from .venue_fields import ENGINE_ID_EXACT, ZERO, id_family

log = logging.getLogger("tradeconsole.venue")

# How long, in unconfirmed graces, an order closed on our word is still looked up: a venue's queue
# or a slow gateway places an order seconds late, not hours.
LATE_WATCH_GRACES = 10


FOREIGN_SAID_FOR = 60.0  # seconds one halt's retried sweeps share one foreign-orders warning


class PollingVenue(Broker):
    """Subclasses set `self.venue` (a VenueSection), `self.connected`, `self._events`,
    `self._working` (ids of working orders), `self._tracks` (by client id), `self.clock`,
    `self._poll_task` (None) and implement `poll()` and `cancel()`; the loop backs off while the
    venue errors and never dies of one error. Tracks carry `in_flight`, `cancel_wanted`,
    `cancelling`, `closed_locally` (see `_send_new_order`, `_reopen`)."""

    # The profile's client-id family ("tc<tag>-"), told by the engine when it wires the broker
    # (venue_wiring.py): known from the start, before anything is tracked.
    own_family: str | None = None

    def drain_events(self) -> list[BrokerEvent]:
        events, self._events = self._events, []
        return events

    def _now_ms(self) -> int:
        """The engine's clock in the venue's epoch milliseconds (trade cursors, submit times)."""
        return int(self.clock.now().timestamp() * 1000)

    def _emit(self, cid: str, status: OrderStatus, reason: str = "", vid: str | None = None,
              reopened: bool = False) -> None:
        # A venue's error text can echo request parameters: redacted and bounded before it
        # becomes an order's reason on screen and in the journal.
        self._events.append(OrderUpdate(cid, status, self.clock.now(), redact(reason)[:300], vid, reopened))

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
        # Our word, not the venue's: should the venue show it after all, it is booked (_reopen).
        track.closed_locally = True
        self._working.discard(track.order.client_order_id)
        if not track.terminal_sent:
            track.terminal_sent = True
            self._emit(track.order.client_order_id, OrderStatus.REJECTED, reason, track.order.venue_order_id)

    async def _send_new_order(self, track, send: Callable[[], Awaitable[Any]],
                              lookup: Callable[[], Awaitable[Any | None]],
                              accept: Callable[[Any, Any], Any]) -> None:
        """Send a tracked order once, and never twice; then carry out a cancel asked meanwhile.

        While the call is pending (`track.in_flight`) a cancel cannot know whether the venue has
        the order: it is recorded (`track.cancel_wanted`) and done here once the outcome is known
        (accepted: cancelled at the venue; unknown: when the poller finds it)."""
        track.in_flight = True
        try:
            await self._send_once(track, send, lookup, accept)
        except asyncio.CancelledError:
            if not track.terminal_sent and track.order.status is OrderStatus.NEW:
                self._unconfirmed(track, "submit interrupted")  # the request may have gone out
            raise
        finally:
            track.in_flight = False
        await self._cancel_if_wanted(track)

    async def _send_once(self, track, send, lookup, accept) -> None:
        """A failure the venue surely did not act on is retried with backoff; one it may have
        acted on (a timeout, a dropped connection) is first looked up by client id, and sent
        again only when a second copy could not trade (`_resend_safe`): Binance refuses a reused
        client id among open orders only. A refusal of the client id as taken, or any final
        refusal of a copy sent after an ambiguous failure, means the first one may have landed: it
        is looked up, never reported refused. Out of retries, or with the lookup failing too, the
        order is left unconfirmed: the poller keeps looking for it. `accept(track, raw)` takes the
        venue's answer (it may be a coroutine)."""
        cid = track.order.client_order_id
        attempt = 0
        maybe_landed = False  # an earlier copy may be at the venue
        while True:
            try:
                raw = await send()
            except VenueError as err:
                self.retrier.note(err, f"submit {cid}")
                if self._is_duplicate(err) or (maybe_landed and err.final):
                    log.warning("venue %s: %s refused as sent before (%s); looking it up", self.name, cid, err)
                    await self._find_landed(track, lookup, accept)
                    return
                if err.final:
                    self._reject(track, f"refused by {self.name}: {err}")
                    return
                if isinstance(err, RateLimitHold) and not maybe_landed:
                    # Not sent at all: the venue asked for longer quiet than an order may wait.
                    self._reject(track, f"{self.name} rate limit: {err}")
                    return
                maybe_landed = maybe_landed or err.ambiguous
                if attempt >= self.retrier.policy.retries:
                    if err.kind is Failure.RATE_LIMIT and not maybe_landed:  # never processed: safe to give up
                        self._reject(track, f"{self.name} rate limit: gave up after {attempt + 1} tries")
                    else:
                        self._unconfirmed(track, err.kind.value)
                    return
                await self.retrier.backoff(attempt, err.kind)
                attempt += 1
                if err.ambiguous and not await self._find_landed(track, lookup, accept,
                                                                  resend=self._resend_safe(track.order)):
                    return
                continue
            await self._take(accept, track, raw)
            return

    async def _find_landed(self, track, lookup, accept, *, resend: bool = False) -> bool:
        """Look a copy that may have landed up by client id: found, it is taken; missing, it is sent
        again only if `resend` (True returned), else left unconfirmed: it may still land (a venue's
        queue, a slow gateway), and a copy sent now could trade beside it."""
        try:
            raw = await lookup()
        except VenueError as err:
            self._unconfirmed(track, err.kind.value)
            return False
        if raw is None:
            if not resend:
                self._unconfirmed(track, "not found yet; not sent again")
            return resend
        log.info("venue %s: %s found after an unknown outcome; not sent again", self.name, track.order.client_order_id)
        await self._take(accept, track, raw)
        return False

    @staticmethod
    async def _take(accept, track, raw) -> None:
        accepted = accept(track, raw)
        if inspect.isawaitable(accepted):
            await accepted

    def _is_duplicate(self, err: VenueError) -> bool:
        """The venue refused the order because its client id is taken (each broker says how)."""
        return False

    def _resend_safe(self, order: Order) -> bool:
        """Whether a second copy could not trade at once, should the first have landed unseen.
        A market order always could; a limit or stop could when the last quote (if this broker
        keeps one) reaches its price: then the order is only ever looked up."""
        if order.type is OrderType.MARKET:
            return False
        q = getattr(self, "_last", {}).get(order.symbol)
        if q is None:
            return True
        buy = order.side is Side.BUY
        if order.type is OrderType.STOP:
            return order.stop_price is not None and (order.stop_price > q.ask if buy else order.stop_price < q.bid)
        return order.limit_price is not None and (order.limit_price < q.ask if buy else order.limit_price > q.bid)

    def _never_confirmed(self, track, reason: str) -> None:
        """Give an unconfirmed order up as not at the venue, on our word: a venue's queue may still
        place it, so it stays on the late watch."""
        track.unconfirmed_since = None
        self._reject(track, reason)
        self._watch_late(track)

    # -- the late watch: orders closed on our word that the venue may still show -----------------
    @property
    def late_watch(self) -> dict[str, float]:
        """Client id -> until (monotonic) of orders closed on our word; each poll round looks them up.
        Bounded in time: a lookup per order and round is weight spent toward the rate limits."""
        return self.__dict__.setdefault("_late_watch", {})

    def _watch_late(self, track) -> None:
        span = LATE_WATCH_GRACES * self.venue.timeouts.unconfirmed_grace_seconds
        self.late_watch[track.order.client_order_id] = self.clock.monotonic() + span

    async def _look_late(self) -> None:
        """One poll round's lookups of the late watch: one found is re-opened and booked
        (`_late_found`, then `_reopen`); a failed lookup waits for the next round."""
        watch = self.late_watch
        now = self.clock.monotonic()
        for cid, until in list(watch.items()):
            t = self._tracks[cid]
            if not t.closed_locally:  # re-opened meanwhile (a listing, a cancel's lookup)
                watch.pop(cid, None)
                continue
            if now > until:
                watch.pop(cid, None)
                log.info("venue %s: %s still not at the venue; no longer looked up", self.name, cid)
                continue
            try:
                found = await self._lookup_track(t)
            except VenueError as err:
                log.warning("venue %s: late-watch lookup of %s failed (%s)", self.name, cid, err.kind.value)
                return  # the venue is failing: the rest waits for the next round
            if found is not None:
                await self._late_found(t, found)  # a VenueError: still watched, found again next round
                watch.pop(cid, None)

    async def _late_found(self, track, raw) -> None:
        """The venue has an order closed on our word: taken like an acceptance (`_reopen`)."""
        await self._take(self._accept, track, raw)

    async def _lookup_track(self, track) -> Any | None:
        """The venue's order with this track's client id, or None if it has none (each broker)."""
        raise NotImplementedError

    def _unconfirmed(self, track, why: str) -> None:
        """The venue may or may not have it: never send again; the poller keeps looking."""
        if track.unconfirmed_since is None:
            track.unconfirmed_since = self.clock.monotonic()
        log.warning("venue %s: %s outcome unknown (%s); looking it up by client id", self.name,
                    track.order.client_order_id, why)

    # -- whose orders a halt's sweep may cancel ----------------------------------------------------
    def _own_families(self) -> set[str]:
        """The id families ("tc<tag>-", engine/brokers/venue_fields.py `ENGINE_ID`) of the orders
        this broker was given to place or to track: the profile's, whatever the session."""
        told = {self.own_family} if self.own_family else set()
        return told | {f for f in map(id_family, self._tracks) if f}

    def _is_ours(self, cid: str, families: set[str]) -> bool:
        """An order the engine placed: one this broker tracks, or one with an id of the profile's
        family that it lost track of (placed before a restart, a submit closed on our word). With
        no family known (a broker the engine never wired, nothing tracked yet), an id of exactly
        the engine's form. Any other
        order on the account (the trader's own, another bot's, one with no client id) is not the
        engine's to cancel."""
        if not cid:
            return False
        if cid in self._tracks:
            return True
        return id_family(cid) in families if families else ENGINE_ID_EXACT.match(cid) is not None

    def _say_foreign(self, foreign: list[tuple[str, str]], failed: list[str]) -> None:
        """Say, once per halt, how many open orders of the account in the swept symbols (client id
        or `#venue id`, symbol) the sweep left working because the engine did not place them. One
        halt may sweep several times (retries until nothing is left failing): said on the first,
        said again after a sweep that left nothing failing (the next halt or close-all), or once
        FOREIGN_SAID_FOR has passed: a halt whose last sweep still failed must not silence the next."""
        now = self.clock.monotonic()
        said = self.__dict__.get("_foreign_said", False) and now - self.__dict__.get("_foreign_said_at", now) \
            < FOREIGN_SAID_FOR
        if foreign and not said:
            said = True
            self._foreign_said_at = now
            by_symbol: dict[str, list[str]] = {}
            for key, sym in foreign:
                by_symbol.setdefault(sym, []).append(key)
            shown = "; ".join(f"{sym}: {', '.join(k[:40] for k in keys[:5])}" + (f" and {len(keys) - 5} more"
                                                                                   if len(keys) > 5 else "")
                              for sym, keys in sorted(by_symbol.items()))
            n = len(foreign)
            them, they = ("them", "they") if n != 1 else ("it", "it")
            msg = redact(f"{self.name}: {n} open order{'s' if n != 1 else ''} on the account that tradeconsole did "
                         f"not place left working by the entry sweep (halt, close-all) ({shown}): not the "
                         f"engine's to cancel; cancel {them} at {self.name} if {they} should go")[:600]
            log.warning("venue %s", msg)
            if getattr(self, "alerts", None) is not None:
                self.alerts.publish("warning", "venue_foreign_orders", msg, self.clock.now(), venue=self.name,
                                    count=n, symbols=sorted(by_symbol))
        self._foreign_said = said and bool(failed)

    # -- cancels asked while the venue's word on the order is missing ---------------------------
    def _cancel_later(self, track) -> bool:
        """A cancel asked while the submit is pending or its outcome unknown: recorded, carried
        out once the venue's answer is known. False: the order is outstanding meanwhile."""
        if not track.cancel_wanted:
            track.cancel_wanted = True
            log.warning("venue %s: cancel of %s waits for its submit's outcome", self.name,
                        track.order.client_order_id)
        return False

    async def _cancel_if_wanted(self, track) -> None:
        """Carry out a recorded cancel once the venue has confirmed the order (at most one at a
        time); a failure leaves it recorded for the next answer or the next cancel asked."""
        if (not track.cancel_wanted or track.cancelling or track.terminal_sent or track.in_flight
                or track.unconfirmed_since is not None):
            return
        track.cancelling = True
        try:
            await self.cancel(track.order.client_order_id)
        except VenueError as err:
            log.warning("venue %s: wanted cancel of %s failed (%s)", self.name, track.order.client_order_id, err)
        finally:
            track.cancelling = False

    def _cancel_soon(self, track) -> None:
        """`_cancel_if_wanted` from a synchronous path (a poll's acceptance)."""
        if not track.cancel_wanted or track.in_flight or track.cancelling or track.terminal_sent:
            return
        task = asyncio.get_running_loop().create_task(self._cancel_if_wanted(track))
        held = self.__dict__.setdefault("_side_tasks", set())
        held.add(task)  # held until done: a bare task may be collected mid-flight
        task.add_done_callback(held.discard)

    def _reopen(self, track, what: str) -> bool:
        """The venue shows an order this broker had closed on its own word (never reached the
        venue, never confirmed): re-open it so what it does is booked, and say so loudly. An
        entry the engine had given up is cancelled once confirmed. True if re-opened."""
        if not (track.terminal_sent and track.closed_locally):
            return False
        o = track.order
        was = f"{o.status.value} ({o.reason or 'no reason'})"
        track.terminal_sent = track.closed_locally = False
        track.unconfirmed_since = None
        o.status = OrderStatus.SUBMITTED
        self._working.add(o.client_order_id)
        if not track.is_stop and o.purpose is OrderPurpose.ENTRY:
            track.cancel_wanted = True
        msg = redact(f"{self.name}: {o.client_order_id} ({o.symbol} {o.side.value} {o.quantity}) was reported {was} "
                     f"but the venue has it ({what}): it is booked now; check the {o.symbol} position and its stop")
        log.critical("venue %s", msg)
        if getattr(self, "alerts", None) is not None:
            self.alerts.publish("critical", "venue_late_order", msg, self.clock.now(),
                                client_order_id=o.client_order_id, symbol=o.symbol, venue=self.name)
        self._emit(o.client_order_id, OrderStatus.SUBMITTED, f"found at {self.name} after {was}", o.venue_order_id,
                   reopened=True)
        return True

    def _start_polling(self) -> None:
        if self.venue.timeouts.poll_seconds > 0:
            self._poll_task = asyncio.get_running_loop().create_task(self._poll_loop(), name=f"poll-{self.name}")

    async def _stop_polling(self) -> None:
        task, self._poll_task = self._poll_task, None
        await stop_task(task)
        for side in list(self.__dict__.get("_side_tasks", ())):  # wanted cancels still under way
            await stop_task(side)

    async def _poll_loop(self) -> None:
        delay = self.venue.timeouts.poll_seconds
        while self.connected:
            await asyncio.sleep(delay)
            try:
                await self.poll()
                delay = self.venue.timeouts.poll_seconds
            except VenueError as err:
                delay = min(self.venue.timeouts.backoff_max_seconds, delay * 2)
                if not isinstance(err, RateLimitHold):  # a window of quiet is logged once, when it opens
                    log.warning("venue %s: poll failed (%s)", self.name, err.kind.value)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("venue %s: poll crashed", self.name)

    async def poll(self) -> None:
        raise NotImplementedError
