"""An Alpaca order's life at the broker: submit (never twice: an unknown outcome is looked up by client
id first), fills as deltas of the order's filled quantity, terminal states, lookups and cancels."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ..models import Fill, Order, OrderPurpose, OrderStatus, OrderType
from .alpaca_payloads import STATUS
from .alpaca_errors import is_duplicate_id
from .retry import Failure, VenueError
from .venue_fields import ZERO, UnreadableNumber, number, positive


@dataclass
class TrackedOrder:
    order: Order
    is_stop: bool
    terminal_sent: bool = False
    unconfirmed_since: float | None = None
    fill_n: int = 0
    unreadable: str = ""  # a fill of it could not be read: engine/brokers/venue_fields.py
    in_flight: bool = False  # its submit call has not returned yet
    cancel_wanted: bool = False  # cancel asked before the venue's word on it: PollingVenue._cancel_later
    cancelling: bool = False
    closed_locally: bool = False  # ended on our word (refused, never confirmed), not the venue's


class AlpacaOrderLifecycleMixin:
    """Part of AlpacaBroker (engine/brokers/alpaca_broker.py), whose __init__ sets the state used here."""

    async def submit(self, order: Order) -> None:
        track = self._start_submit(order, lambda mine: TrackedOrder(mine, is_stop=order.type is OrderType.STOP))
        if track is None:
            return
        mine, cid = track.order, order.client_order_id
        held = self._entry_held(order)
        if held is not None:
            self._reject(track, held)
            return
        try:
            req = self.build_request(order)
            # Our copy holds what the venue will hold.
            mine.quantity = positive(req.qty, "qty")
        except ValueError as exc:
            self._reject(track, str(exc))
            return
        if order.limit_price is not None:
            mine.limit_price = self.round_price(order.limit_price)
        if order.stop_price is not None:
            mine.stop_price = self.round_price(order.stop_price)
        self._working.add(cid)
        await self._send_new_order(track, lambda: self._call("submit_order", self.client.submit_order, req),
                                   lambda: self._lookup(cid), self._accept)

    async def _lookup(self, cid: str) -> Any | None:
        async def one() -> Any | None:
            try:
                return await self._call("order by client id", self.client.get_order_by_client_id, cid)
            except VenueError as err:
                if err.kind is Failure.NOT_FOUND:
                    return None
                raise

        return await self.retrier.run(f"lookup {cid}", one)

    def _is_duplicate(self, err: VenueError) -> bool:
        return is_duplicate_id(err)

    def _accept(self, track: TrackedOrder, raw: Any) -> None:
        o = track.order
        self._reopen(track, "accepted")
        track.unconfirmed_since = None
        o.venue_order_id = str(raw.id)
        if o.status is OrderStatus.NEW:
            o.status = OrderStatus.SUBMITTED
            self._emit(o.client_order_id, OrderStatus.SUBMITTED, "", o.venue_order_id)
        self._apply(track, raw)
        # Synchronous (the poll round calls it): a cancel asked meanwhile runs beside it.
        self._cancel_soon(track)

    def _apply(self, track: TrackedOrder, raw: Any) -> None:
        o = track.order
        status = STATUS.get(getattr(raw.status, "value", str(raw.status)), OrderStatus.SUBMITTED)
        reopened = self._reopen(track, status.value)
        if track.terminal_sent:
            return
        if o.venue_order_id is None:
            o.venue_order_id = str(raw.id)
        if reopened and not status.is_terminal:
            self._cancel_soon(track)  # an entry given up: it trades no further
        if not track.unreadable:
            try:
                self._fill_delta(track, raw, status)
            except UnreadableNumber as bad:
                self._fill_unreadable(track, "fill", bad)
        if track.unreadable:
            if status.is_terminal:
                # What filled is not known: no end is reported on made-up numbers; the engine holds
                # it open for reconciliation, and polling it stops here.
                self._working.discard(o.client_order_id)
            return
        if status.is_terminal:
            track.terminal_sent = True
            o.status = status
            self._working.discard(o.client_order_id)
            reason = "" if status is OrderStatus.FILLED else f"{status.value} at alpaca"
            self._emit(o.client_order_id, status, reason, o.venue_order_id)

    def _fill_delta(self, track: TrackedOrder, raw: Any, status: OrderStatus) -> None:
        """Book what filled since the last snapshot (Alpaca reports fills only as the order's
        running totals). No fee: equities carry no commission."""
        o = track.order
        # A snapshot without a figure adds no fill, unless it says the order filled: then it must say how much.
        filled = number(raw.filled_qty, "filled_qty", missing=None if status is OrderStatus.FILLED else o.filled_qty)
        if filled is None or filled < 0:
            raise UnreadableNumber("filled_qty", raw.filled_qty)
        if filled <= o.filled_qty:
            return
        avg = positive(raw.filled_avg_price, "filled_avg_price")
        delta = filled - o.filled_qty
        price = (avg * filled - o.avg_fill_price * o.filled_qty) / delta
        if price <= 0:  # an average that the fills already booked cannot have come to
            raise UnreadableNumber("filled_avg_price", raw.filled_avg_price, "does not fit the fills before it")
        o.avg_fill_price, o.filled_qty = avg, filled
        track.fill_n += 1
        self._events.append(Fill(o.client_order_id, o.symbol, o.side, delta, price, ZERO, self.clock.now(),
                                 "maker" if o.type is OrderType.LIMIT else "taker",
                                 f"alpaca:{o.venue_order_id}:{track.fill_n}"))

    async def cancel(self, client_order_id: str) -> bool:
        track = self._tracks.get(client_order_id)
        if track is None:
            found = await self._lookup(client_order_id)
            if found is None:
                return True
            track = self._adopt(found)
        if track.terminal_sent and not track.closed_locally:
            return True
        vid = track.order.venue_order_id
        if vid is None:
            # Not confirmed yet (a submit pending or unconfirmed, or closed on our word): ask.
            try:
                found = await self._lookup(client_order_id)
            except VenueError:
                found = None
                if not (track.in_flight or track.unconfirmed_since is not None):
                    return False
            if found is None:
                # It may still land: cancelled once the venue's answer is known.
                return True if track.closed_locally else self._cancel_later(track)
            if track.in_flight:
                track.cancel_wanted = True  # the submit's end cancels it
            prior, track.cancelling = track.cancelling, True  # cancelled below, not beside
            try:
                self._accept(track, found)
            finally:
                track.cancelling = prior
            if track.terminal_sent or track.in_flight:
                return track.terminal_sent
            vid = track.order.venue_order_id
        try:
            await self._retry(f"cancel {client_order_id}", self.client.cancel_order_by_id, vid)
        except VenueError as err:
            if not err.final:
                return False
        try:
            found = await self._lookup(client_order_id)
        except VenueError:
            return False
        if found is not None:
            self._apply(track, found)
        return track.terminal_sent

    async def cancel_entries(self, symbols: list[str] | None = None) -> list[str]:
        """Cancel every open entry order of the engine's (not stops, not close-all exits), one by
        one with bounded concurrency; never the venue's cancel-all, which would take the protective
        stops too. An open order we do not track is cancelled only when its client id is of the
        profile's family (placed before a restart, or lost track of: `_is_ours`); any other (the
        trader's own, another bot's) is left working, never adopted, and said once
        (`_say_foreign`). Returns what failed."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        syms = symbols or self.symbols
        targets: set[str] = set()
        families = self._own_families()
        foreign: list[tuple[str, str]] = []
        try:
            listed = await self._retry("open orders", self.client.get_orders,
                                       GetOrdersRequest(status=QueryOrderStatus.OPEN, symbols=syms, limit=500))
            for raw in listed:
                cid = raw.client_order_id or ""
                if not self._is_ours(cid, families):
                    foreign.append((cid or f"#{raw.id}", str(raw.symbol)))  # not ours: left working, and said
                    continue
                if getattr(raw.type, "value", str(raw.type)) in ("stop", "stop_limit", "trailing_stop"):
                    continue
                t = self._tracks.get(cid)
                if t is None:
                    t = self._adopt(raw)
                if not t.is_stop and t.order.purpose is OrderPurpose.ENTRY:
                    targets.add(t.order.client_order_id)
        except VenueError:
            pass  # fall back on what we track
        targets |= {c for c in self._working if not self._tracks[c].is_stop and self._tracks[c].order.symbol in syms
                    and self._tracks[c].order.purpose is OrderPurpose.ENTRY}
        sem = asyncio.Semaphore(min(self.venue.timeouts.halt_concurrency, 8))

        async def one(cid: str) -> str | None:
            async with sem:
                try:
                    return None if await self.cancel(cid) else cid
                except VenueError:
                    return cid

        failed = [c for c in await asyncio.gather(*(one(c) for c in sorted(targets))) if c is not None]
        self._say_foreign(foreign, failed)
        return failed
