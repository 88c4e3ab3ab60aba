"""The ccxt broker's view kept in step with the venue: the poll round (new trades, orders that left
the book, unconfirmed submits), open orders and lookups, and adopting orders placed before a restart."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from ..models import Order, OrderType
from .ccxt_orders import TrackedOrder
from .restored import RestoredOrdersMixin
from .venue_fields import ZERO, UnreadableNumber, number


class CcxtPollingMixin(RestoredOrdersMixin):
    """Part of CcxtBroker (engine/brokers/ccxt_broker.py), whose __init__ sets the state used here."""

    def _adopt(self, raw: dict) -> TrackedOrder:
        """Track a venue order we did not place this session, so its fills and end are reported."""
        cid = raw.get("clientOrderId") or f"venue-{raw.get('id')}"
        if cid in self._tracks:
            return self._tracks[cid]
        # The venue's filled quantity and average are the baseline: what filled before is someone
        # else's to book (the journal's, or reconciliation's), and an end's catch-up books only
        # beyond it (with the trades that made it known: `_trades_so_far`).
        o = self._to_order(raw)
        t = TrackedOrder(o, is_stop=self._raw_is_stop(raw), submitted_ms=int(raw.get("timestamp") or self._now_ms()))
        self._tracks[cid] = t
        if o.venue_order_id:
            self._by_venue_id[o.venue_order_id] = cid
        if not o.status.is_terminal:
            self._working.add(cid)
            self._trade_cursor.setdefault(o.symbol, self._now_ms() - 5000)
            for tr in raw.get("trades") or []:
                t.trade_ids.add(str(tr.get("id")))
        return t

    # -- reads ----------------------------------------------------------------------------------
    async def _open_raw(self, symbol: str) -> list[dict]:
        return await self._retry(f"open orders {symbol}", self.ex.fetch_open_orders, symbol)

    async def open_orders(self) -> list[Order]:
        out: list[Order] = []
        for sym in self.symbols:
            for raw in await self._open_raw(sym):
                cid = raw.get("clientOrderId")
                t = self._tracks.get(cid) if cid else None
                out.append(replace(t.order) if t is not None else self._to_order(raw))
        return out

    async def fetch_order(self, client_order_id: str) -> Order | None:
        t = self._tracks.get(client_order_id)
        if t is not None and (t.terminal_sent or t.unconfirmed_since is None):
            return replace(t.order)
        symbols = [t.order.symbol] if t is not None else self.symbols
        for sym in symbols:
            found = await self._lookup(client_order_id, sym)
            if found is None:
                continue
            if t is None:
                known = await self._trades_so_far(found)  # before tracking: a failure leaves nothing half-adopted
                t = self._adopt(found)
                t.trade_ids |= known
            else:
                await self._accept(t, found)
            return replace(t.order) if t is not None else self._to_order(found)
        return None

    async def _trades_so_far(self, raw: dict) -> set[str]:
        """Ids of the trades that make up a working order's filled quantity as `raw` reads it: the
        earliest ones (a later trade, made since `raw` was read, is new and booked)."""
        v = self._to_order(raw)  # a figure that cannot be read: a VenueError, as the adoption's would be
        filled = v.filled_qty
        if filled <= 0 or raw.get("id") is None or v.status.is_terminal:
            return set()
        known, total = set(), ZERO
        for t in await self._order_trades(raw.get("symbol"), str(raw["id"])):
            try:
                total += number(t.get("amount"), "amount", missing=ZERO) or ZERO
            except UnreadableNumber:
                break  # booking it says so (ccxt_orders._apply_trade): not taken as known here
            if total > filled:
                break
            known.add(str(t.get("id")))
        return known

    async def _order_trades(self, symbol: str, vid: str) -> list[dict]:
        """The venue's trades of one order, oldest first."""
        trades = await self._retry("order trades", self.ex.fetch_my_trades, symbol, None, None, {"orderId": vid})
        return sorted((t for t in trades if str(t.get("order")) == vid),
                      key=lambda t: (int(t.get("timestamp") or 0), _id_key(t.get("id"))))

    # -- orders restored from the journal after a restart (engine/brokers/restored.py) ------------
    def track_restored(self, order: Order, fill_ids: set[str]) -> None:
        """Track an order the journal holds as working (placed by an earlier broker) from the
        engine's copy, with no request: the poller confirms it at the venue, round after round
        until the venue answers, so no failed lookup leaves it unheard. The trades the journal has
        booked (`fill_ids`, as `<venue>:<trade id>`) are known, so none is booked again."""
        cid = order.client_order_id
        prefix = f"{self.name}:"
        ids = {i[len(prefix):] for i in fill_ids if i.startswith(prefix)}
        t = self._tracks.get(cid)
        if t is not None:  # reconciliation looked it up already
            t.trade_ids |= ids
            return
        mine = replace(order)
        t = TrackedOrder(mine, is_stop=order.type is OrderType.STOP, trade_ids=ids, submitted_ms=self._now_ms())
        self._tracks[cid] = t
        if mine.venue_order_id:
            self._by_venue_id[mine.venue_order_id] = cid
        self._working.add(cid)
        self._trade_cursor.setdefault(mine.symbol, self._now_ms() - 5000)
        self._restored_pending_since_now(cid)

    async def _lookup_track(self, t: TrackedOrder) -> dict | None:
        return await self._lookup(t.order.client_order_id, t.order.symbol)

    async def _restored_found(self, t: TrackedOrder, raw: dict) -> None:
        """The venue answered for a restored order: its venue id is known, what it filled before
        the restart is rebased on the venue's own trades (the journal's quantities are net of a fee
        paid in the base asset; an end's catch-up compares gross), and what it filled while the
        engine was down (trades the journal lacks) is booked now, each trade once."""
        await self._take_trades(t, raw)  # VenueError: still pending, tried again
        self.restored_pending.pop(t.order.client_order_id, None)
        await self._accept(t, raw)

    async def _late_found(self, t: TrackedOrder, raw: dict) -> None:
        # Its trades went by while its venue id was unknown (mapped to nothing, the cursor past
        # them): read from the order itself, or a part filled before it was found waited for its end.
        await self._take_trades(t, raw)
        await self._accept(t, raw)

    async def _take_trades(self, t: TrackedOrder, raw: dict) -> None:
        """Bring our copy of an order the poller could not follow (placed by an earlier broker, or
        found late) up to the venue's trades of it: those known by id (the journal's) are the
        baseline, the others are booked. Whenever the venue shows anything filled: trades made
        while the engine was down are an hour behind the poll's cursor, and one left for the end's
        catch-up was booked again on top of a quantity the operator had adopted meanwhile."""
        o = t.order
        vid = str(raw.get("id")) if raw.get("id") is not None else o.venue_order_id
        try:
            ahead = (number(raw.get("filled"), "filled", missing=ZERO) or ZERO) > 0
        except UnreadableNumber:
            ahead = True  # the trades say what filled; booking reports what is unreadable
        if not vid or not (ahead or o.filled_qty > 0):
            return
        trades = await self._order_trades(o.symbol, vid)
        o.venue_order_id = vid
        self._by_venue_id[vid] = o.client_order_id
        booked = [x for x in trades if str(x.get("id")) in t.trade_ids]
        try:
            qty = sum((number(x.get("amount"), "amount") for x in booked), ZERO)
            cost = sum((number(x.get("amount"), "amount") * number(x.get("price"), "price") for x in booked), ZERO)
        except UnreadableNumber:
            qty = ZERO  # the journal's figures stay; booking the rest reports what is unreadable
        if qty > 0:
            o.filled_qty, o.avg_fill_price = qty, cost / qty
        for x in trades:
            self._apply_trade(t, x)  # a trade the journal booked is known by id: skipped

    # -- polling (the loop is PollingVenue's) -----------------------------------------------
    async def poll(self) -> None:
        """One round: restored orders not yet confirmed, new trades, orders that left the book,
        and unconfirmed submits."""
        async with self._poll_lock:
            if self._restored:
                await self.confirm_restored()
            if self.late_watch:
                await self._look_late()
            syms = sorted({self._tracks[c].order.symbol for c in self._working})
            for sym in syms:
                await self._poll_symbol(sym)
            for cid in [c for c in self._working if self._tracks[c].unconfirmed_since is not None]:
                await self._resolve_unconfirmed(self._tracks[cid])

    async def _poll_symbol(self, sym: str) -> None:
        since = self._trade_cursor.get(sym)
        trades = await self._retry(f"trades {sym}", self.ex.fetch_my_trades, sym, since)
        newest = since or 0
        for t in trades:
            cid = self._by_venue_id.get(str(t.get("order")))
            if cid is not None:
                self._apply_trade(self._tracks[cid], t)
            newest = max(newest, int(t.get("timestamp") or 0))
        if newest:
            self._trade_cursor[sym] = newest - 1000  # overlap; trade ids dedupe
        open_raw = await self._open_raw(sym)
        open_ids = {str(o.get("id")) for o in open_raw}
        pending = self._restored or {}
        for raw in open_raw:
            t = self._tracks.get(raw.get("clientOrderId") or "")
            if t is None:
                continue
            if t.order.client_order_id in pending:  # listed open: a restored order confirmed without a lookup
                await self._restored_found(t, raw)
            elif t.closed_locally and t.terminal_sent:  # closed on our word, open at the venue
                await self._late_found(t, raw)
                self.late_watch.pop(t.order.client_order_id, None)
        for cid in [c for c in self._working if self._tracks[c].order.symbol == sym]:
            t = self._tracks[cid]
            if t.unconfirmed_since is not None or t.order.venue_order_id in open_ids or cid in pending:
                continue
            found = await self._lookup(cid, sym)
            if found is not None:
                await self._apply(t, found)

    async def _resolve_unconfirmed(self, track: TrackedOrder) -> None:
        o = track.order
        found = await self._lookup(o.client_order_id, o.symbol)
        if found is not None:
            await self._accept(track, found)
            return
        if self.clock.monotonic() - (track.unconfirmed_since or 0) > self.venue.timeouts.unconfirmed_grace_seconds:
            self._never_confirmed(track, f"{self.name} never confirmed the order after a timeout; it is not at the venue")



def _id_key(tid) -> tuple[int, Decimal | str]:
    """Trade ids in the venue's order: numeric ones (Binance) by value, others as text."""
    try:
        d = Decimal(str(tid))
    except ArithmeticError:
        d = None
    return (0, d) if d is not None and d.is_finite() else (1, str(tid))
