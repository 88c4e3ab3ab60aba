"""The venue's events applied to the books: order states, fills into the portfolio and the
journal, and what each one asks for next (a stop placed or resized, the stops and exits of a
symbol gone flat cancelled, the operator told of a refusal).

A mixin of `OrderManager` (engine/orders.py): it reads the manager's orders, portfolio, journal
and alerts, and places stops through its ProtectiveStops.
"""
from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from .brokers.base import OrderUpdate
from .models import Fill, Order, OrderPurpose, OrderStatus
from .money import ZERO

log = logging.getLogger("tradeconsole.orders")
# Rounds of the venue's events one `process_events` works through: its own reactions (a stop
# placed, a replaced one cancelled) make a few more; bounded, so a venue that never falls quiet
# cannot hold the loop (the rest waits for the next call).
EVENT_ROUNDS = 8


class OrderEvents:
    async def process_events(self, events: list[Fill | OrderUpdate] | None = None) -> None:
        """The broker's events since the last call, or `events` the venue reported otherwise (a
        fill made while the engine was down, booked at reconciliation): the same path for both."""
        queue = self._events
        queue.extend(self.broker.drain_events() if events is None else events)
        if not queue:
            return  # the common case, once per batch: nothing said
        for _ in range(EVENT_ROUNDS):
            while queue:
                ev = queue.popleft()
                if isinstance(ev, Fill):
                    await self._on_fill(ev)
                else:
                    await self._on_update(ev)
            # What the handling itself made the venue say (a replaced stop's cancel, a stop placed
            # after a fill) is heard too, so the books are whole when this returns.
            queue.extend(self.broker.drain_events())
            if not queue:
                return

    async def _on_update(self, ev: OrderUpdate) -> None:
        order = self.orders.get(ev.client_order_id)
        if order is None:
            log.warning("update for unknown order %s: %s", ev.client_order_id, ev.status.value)
            self.journal.append("unknown_order", ev.ts, ev.client_order_id, {"status": ev.status})
            return
        if ev.venue_order_id:
            order.venue_order_id = ev.venue_order_id
        if ev.client_order_id in self._replacing and not (ev.status is OrderStatus.SUBMITTED and order.status.is_terminal):
            await self._replaced(order, ev.status, ev.reason)
        if ev.reopened and order.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED):
            # The broker had ended it on its own word and the venue has it after all: working
            # again, so its fills and its end are booked on it, and its row says so (the broker
            # raises the alert and cancels an entry the engine had given up).
            order.status = OrderStatus.SUBMITTED
            order.reason = ev.reason
            self.track(order)
            self._journal_order(order)
            return
        if ev.status is OrderStatus.SUBMITTED or order.status.is_terminal:
            return
        order.status = ev.status
        order.reason = ev.reason or order.reason
        if ev.status.is_terminal:
            self.untrack(order.client_order_id)
            self._limit_deadline.pop(order.client_order_id, None)
        self._journal_order(order)
        if ev.status.is_terminal and order.client_order_id in self._old_first:
            await self._whole_stop_ended(order, ev.status, ev.reason)
        if ev.status is OrderStatus.REJECTED:
            self._say_rejected(order, ev.reason, ev.ts)
        if order.purpose is OrderPurpose.EXIT and ev.status.is_terminal:
            # Whatever is left when an exit ends (refused, cancelled, or filled while an entry
            # filled beside it) gets its stop: an exit that ends must never leave it bare.
            await self.ensure_stop(order.symbol)

    def _say_rejected(self, order: Order, why: str, ts: datetime) -> None:
        pos = self.portfolio.positions.get(order.symbol)
        if order.purpose is OrderPurpose.STOP and pos is not None and not self.has_working(order.symbol, OrderPurpose.STOP):
            # The replacement is kept off until the venue takes it (ensure_stop); a first stop
            # refused leaves the position bare, and only the operator can judge why.
            self.alerts.publish("critical", "stop_rejected",
                                f"{order.symbol}: the venue refused its protective stop at {order.stop_price} ({why}); "
                                f"the position of {pos.quantity} has NO stop. Close it or move the stop",
                                ts, client_order_id=order.client_order_id)
            return
        self.alerts.publish("warning", "order_rejected",
                            f"{order.symbol} {order.side.value} {order.quantity} rejected by venue: {why}",
                            ts, client_order_id=order.client_order_id)

    # -- fills booked once ------------------------------------------------------------------------
    # The venue's fill ids already booked, per order: a broker that reads an order's trades again
    # (the catch-up at its end, an order picked up again after a restart) must not book one twice.
    # Kept for working orders only (pruned as orders end); a restart seeds them from the journal's
    # fill rows of the orders it restores (engine/recovery.py: `remember_fills`).
    FILL_IDS_PRUNE_AT = 256
    _booked_fill_ids: dict[str, set[str]] | None = None  # made on first use, per manager

    def _fill_ids(self) -> dict[str, set[str]]:
        ids = self._booked_fill_ids
        if ids is None:
            ids = self._booked_fill_ids = {}
        return ids

    def remember_fills(self, cid: str, fill_ids: set[str]) -> None:
        """`fill_ids` of `cid` are booked already (journaled before a restart)."""
        if fill_ids:
            self._fill_ids().setdefault(cid, set()).update(fill_ids)

    def booked_fill_ids(self, cid: str) -> set[str]:
        return set(self._fill_ids().get(cid, ()))

    def _first_booking(self, f: Fill) -> bool:
        """True the first time this fill id of this order is seen; a repeat is journaled, not booked."""
        if not f.fill_id:
            return True  # nothing to know it by (a broker that gives none): booked as before
        ids = self._booked_fill_ids
        if ids is None:
            ids = self._fill_ids()
        seen = ids.get(f.client_order_id)
        if seen is None:
            if len(ids) >= self.FILL_IDS_PRUNE_AT + len(self.working):  # amortized: a scan per 256 new orders
                for cid in [c for c in ids if c not in self.working]:
                    del ids[cid]
            seen = ids[f.client_order_id] = set()
        elif f.fill_id in seen:
            log.warning("duplicate fill %s of %s (%s %s @ %s) not booked again", f.fill_id, f.client_order_id,
                        f.side.value, f.quantity, f.price)
            self.journal.append("duplicate_fill", f.ts, f.client_order_id, {
                "symbol": f.symbol, "side": f.side, "quantity": f.quantity, "price": f.price, "fee": f.fee,
                "fill_id": f.fill_id})
            return False
        seen.add(f.fill_id)
        return True

    async def _on_fill(self, f: Fill) -> None:
        order = self.orders.get(f.client_order_id)
        if order is None:
            self.journal.append("unknown_fill", f.ts, f.client_order_id, {"qty": f.quantity, "price": f.price})
            return
        if not self._first_booking(f):
            return
        total = order.filled_qty + f.quantity
        order.avg_fill_price = (order.avg_fill_price * order.filled_qty + f.price * f.quantity) / total
        order.filled_qty = total
        order.fees += f.fee
        if order.remaining > 0:
            order.status = OrderStatus.PARTIALLY_FILLED
            # On record as it stands: a restart before the next checkpoint rebuilds the order
            # from its last row, and one that said "submitted, 0 filled" over-counted what the
            # working entry would still take and averaged its price wrong once the rest filled.
            self._journal_order(order)
        dust_before = self.portfolio.dust_quantity(f.symbol)
        realized = self.portfolio.apply_fill(f)
        self.fills += 1
        row = {
            "symbol": f.symbol, "side": f.side, "quantity": f.quantity, "price": f.price,
            "fee": f.fee, "liquidity": f.liquidity, "fill_id": f.fill_id, "realized": realized,
            "purpose": order.purpose, "position_after": self.position_qty(f.symbol),
        }
        if f.unbooked_fee:
            row["unbooked_fee"] = f.unbooked_fee
        if order.parent_id:
            row["parent_id"] = order.parent_id  # a restart credits the position the same way
            self.portfolio.credit_opening(f.symbol, f.client_order_id, order.parent_id)
        self.journal.append("fill", f.ts, f.client_order_id, row)
        if f.unbooked_fee:
            self._say_unbooked_fee(f)
        if self.portfolio.dust_quantity(f.symbol) != dust_before:
            self._journal_dust(f.symbol, dust_before, f)
        if f.symbol not in self.portfolio.positions:
            # Flat: a stop or exit still working would trade what is no longer held (a stop that
            # filled while it was being replaced, an exit sized before it).
            await self.cancel_orphans(f.symbol, f"{order.purpose.value} {order.client_order_id} filled")
        log.info("fill %s %s %s %s @ %s fee %s", f.client_order_id, f.symbol, f.side.value, f.quantity, f.price, f.fee)
        if order.purpose is OrderPurpose.ENTRY and order.protective_stop is not None:
            pos = self.portfolio.positions.get(order.symbol)
            if pos is not None:
                pos.stop_price = self._stop_after_entry(pos, order.protective_stop)
            await self.ensure_stop(order.symbol)
        elif order.purpose is OrderPurpose.STOP and order.symbol not in self.portfolio.positions:
            self.alerts.publish("warning", "stop_filled",
                                f"{order.symbol} stopped out at {f.price}", f.ts, client_order_id=order.client_order_id)
        if self.on_fill is not None:
            self.on_fill(f, order, realized)

    def _say_unbooked_fee(self, f: Fill) -> None:
        """A fee paid in an asset the engine cannot price (on the fill's row): the operator is told
        once per asset, since P&L, the loss limits and the fee figures all leave it out."""
        asset = f.unbooked_fee.rsplit(" ", 1)[-1]
        if asset in self._unbooked_assets:
            return
        self._unbooked_assets.add(asset)
        self.alerts.publish("warning", "unbooked_fee",
                            f"{f.symbol}: fee paid in {asset} ({f.unbooked_fee}) is not in P&L, the loss limits or "
                            f"the fee figures; each one is on its fill's journal row (unbooked_fee)",
                            f.ts, client_order_id=f.client_order_id)

    def _journal_dust(self, symbol: str, before: Decimal, f: Fill) -> None:
        """The symbol's dust pile changed (portfolio.py): journal it (a restart restores the pile
        from the last row) and say so once, as information: dust is not a bare position."""
        d = self.portfolio.dust.get(symbol)
        qty = d.quantity if d is not None else ZERO
        self.journal.append("dust", f.ts, f.client_order_id, {
            "symbol": symbol, "quantity": qty, "avg": d.avg_price if d is not None else ZERO,
            "price": d.last_price if d is not None else f.price, "before": before})
        if qty > before:
            self.alerts.publish("info", "dust", f"{symbol}: {qty - before:f} left below the venue's minimum order; "
                                f"held as dust ({qty:f} in all, ~{qty * f.price:.2f})", f.ts,
                                client_order_id=f.client_order_id)

