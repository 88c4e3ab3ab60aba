"""The Alpaca broker's view kept in step with the venue: the poll round (one list request, lookups for
the rest), open orders and lookups, and adopting orders placed before a restart."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, timezone
from typing import Any

from ..models import Order, OrderType
from .alpaca_orders import TrackedOrder
from .restored import RestoredOrdersMixin


class AlpacaPollingMixin(RestoredOrdersMixin):
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

    # -- orders restored from the journal after a restart (engine/brokers/restored.py) ------------
    def track_restored(self, order: Order, fill_ids: set[str]) -> None:
        """Track an order the journal holds as working from the engine's copy (its filled quantity
        and average are the journal's, so only what filled beyond them is booked), with no request:
        the poller confirms it at the venue until the venue answers. Fill ids go on from the
        journal's (`alpaca:<venue id>:<n>`), so a new fill never reuses a booked one's id."""
        cid = order.client_order_id
        if cid in self._tracks:  # reconciliation looked it up already
            return
        ns = [int(i.rsplit(":", 1)[1]) for i in fill_ids if i.startswith("alpaca:") and i.rsplit(":", 1)[1].isdigit()]
        t = TrackedOrder(replace(order), is_stop=order.type is OrderType.STOP, fill_n=max(ns, default=0))
        self._tracks[cid] = t
        self._working.add(cid)
        self._restored_pending_since_now(cid)

    async def _lookup_track(self, t: TrackedOrder) -> Any | None:
        return await self._lookup(t.order.client_order_id)

    async def _restored_found(self, t: TrackedOrder, raw: Any) -> None:
        self.restored_pending.pop(t.order.client_order_id, None)
        await self._late_found(t, raw)  # its venue id; what filled while the engine was down is booked now

    async def _late_found(self, t: TrackedOrder, raw: Any) -> None:
        if raw.created_at:
            t.order.created_at = raw.created_at  # so the poll's one list request covers it
        self._accept(t, raw)

    # -- polling (the loop is PollingVenue's) -----------------------------------------------
    async def poll(self) -> None:
        """One list request for every order since the oldest working one; lookups for the rest."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        async with self._poll_lock:
            if self._restored:
                await self.confirm_restored()
            if self.late_watch:  # run even with nothing working: an order given up may land late
                await self._look_late()
            pending = self._restored or {}
            working = [self._tracks[c] for c in self._working if c not in pending]
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
                    if t is None:
                        continue
                    seen.add(raw.client_order_id)
                    if raw.client_order_id in pending:  # listed: confirmed without a lookup
                        await self._restored_found(t, raw)
                    else:
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
                    self._never_confirmed(t, "alpaca never confirmed the order after a timeout; it is not at the venue")
