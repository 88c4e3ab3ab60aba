"""The Alpaca broker's view kept in step with the venue: the poll round (one list request, lookups for
the rest), open orders and lookups, and adopting orders placed before a restart."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, timezone
from typing import Any

from ..models import Order, OrderType
from .alpaca_orders import TrackedOrder


class AlpacaPollingMixin:
    """Part of AlpacaBroker (engine/brokers/alpaca_broker.py), whose __init__ sets the state used here."""

    def _adopt(self, raw: Any) -> TrackedOrder:
        o = self._to_order(raw)  # its filled quantity and average: fills before adoption are the journal's
        t = TrackedOrder(o, is_stop=o.type is OrderType.STOP)
        self._tracks[o.client_order_id] = t
        if not o.status.is_terminal:
            self._working.add(o.client_order_id)
        return t

    async def open_orders(self) -> list[Order]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        listed = await self._retry("open orders", self.client.get_orders,
                                   GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500))
        out = []
        for raw in listed:
            t = self._tracks.get(raw.client_order_id)
            out.append(replace(t.order) if t is not None else self._to_order(raw))
        return out

    async def fetch_order(self, client_order_id: str) -> Order | None:
        t = self._tracks.get(client_order_id)
        if t is not None and (t.terminal_sent or t.unconfirmed_since is None):
            return replace(t.order)
        found = await self._lookup(client_order_id)
        if found is None:
            return None
        if t is None:
            t = self._adopt(found)
        else:
            self._accept(t, found)
        return replace(t.order)

    # -- polling (the loop is PollingVenue's) -----------------------------------------------
    async def poll(self) -> None:
        """One list request for every order since the oldest working one; lookups for the rest."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        async with self._poll_lock:
            working = [self._tracks[c] for c in self._working]
            if not working:
                return
            confirmed = [t for t in working if t.unconfirmed_since is None]
            seen: set[str] = set()
            if confirmed:
                after = min(t.order.created_at for t in confirmed) - timedelta(minutes=1)
                if after.tzinfo is None:
                    after = after.replace(tzinfo=timezone.utc)
                after = min(after, self.clock.now() - timedelta(minutes=1))
                listed = await self._retry("orders", self.client.get_orders,
                                           GetOrdersRequest(status=QueryOrderStatus.ALL, after=after, limit=500))
                for raw in listed:
                    t = self._tracks.get(raw.client_order_id)
                    if t is not None:
                        seen.add(raw.client_order_id)
                        self._apply(t, raw)
            for t in working:
                cid = t.order.client_order_id
                if cid in seen or t.terminal_sent:
                    continue
                found = await self._lookup(cid)
                if found is not None:
                    self._accept(t, found)
                elif t.unconfirmed_since is not None and (
                        self.clock.monotonic() - t.unconfirmed_since > self.venue.timeouts.unconfirmed_grace_seconds):
                    t.unconfirmed_since = None
                    self._reject(t, "alpaca never confirmed the order after a timeout; it is not at the venue")
