"""The ccxt broker's view kept in step with the venue: the poll round (new trades, orders that left
the book, unconfirmed submits), open orders and lookups, and adopting orders placed before a restart."""
from __future__ import annotations

from dataclasses import replace

from ..models import Order
from .ccxt_orders import TrackedOrder
from .venue_fields import ZERO


class CcxtPollingMixin:
    """Part of CcxtBroker (engine/brokers/ccxt_broker.py), whose __init__ sets the state used here."""

    def _adopt(self, raw: dict) -> TrackedOrder:
        """Track a venue order we did not place this session, so its fills and end are reported."""
        cid = raw.get("clientOrderId") or f"venue-{raw.get('id')}"
        if cid in self._tracks:
            return self._tracks[cid]
        o = self._to_order(raw)
        o.filled_qty = ZERO  # its past fills are already in the journal
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
                t = self._adopt(found)
            else:
                await self._accept(t, found)
            return replace(t.order) if t is not None else self._to_order(found)
        return None

    # -- polling (the loop is PollingVenue's) -----------------------------------------------
    async def poll(self) -> None:
        """One round: new trades, orders that left the book, and unconfirmed submits."""
        async with self._poll_lock:
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
        open_ids = {str(o.get("id")) for o in await self._open_raw(sym)}
        for cid in [c for c in self._working if self._tracks[c].order.symbol == sym]:
            t = self._tracks[cid]
            if t.unconfirmed_since is not None or t.order.venue_order_id in open_ids:
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
            track.unconfirmed_since = None
            self._reject(track, f"{self.name} never confirmed the order after a timeout; it is not at the venue")

