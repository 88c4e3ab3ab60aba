"""The protective stop every position carries: placed after an entry fills, resized with the
position, replaced new-first (never bare), and never loosened by an add.

A mixin of `OrderManager` (engine/orders.py): it reads the portfolio and sends through the
manager's own gated `send`.
"""
from __future__ import annotations

from decimal import Decimal

from .models import Order, OrderPurpose, OrderType, Position, Side


class ProtectiveStops:
    def stop_order(self, symbol: str) -> Order | None:
        pos = self.portfolio.positions.get(symbol)
        if pos is None or pos.stop_order_id is None:
            return None
        return self.working.get(pos.stop_order_id)

    async def ensure_stop(self, symbol: str) -> None:
        """Make the working stop match the position: same size, at the position's stop price."""
        pos = self.portfolio.positions.get(symbol)
        if pos is None or pos.stop_price is None:
            return
        current = self.stop_order(symbol)
        qty = abs(pos.quantity)
        if current is not None and current.remaining == qty and current.stop_price == pos.stop_price:
            return
        if self.has_working(symbol, OrderPurpose.EXIT):
            return  # an exit is flattening it; a stop now could flip the position
        stop = Order(self.new_id(), symbol, Side.SELL if pos.quantity > 0 else Side.BUY, OrderType.STOP,
                     qty, OrderPurpose.STOP, self.clock.now(), stop_price=pos.stop_price,
                     reason="protective stop")
        old = current

        async def retire_old() -> None:
            # Only once the new stop is at the venue does the old one go: never bare.
            if old is not None and not await self.cancel(old.client_order_id, "stop replaced"):
                self.alerts.publish("critical", "stop_not_replaced",
                                    f"{symbol}: two stops working: the venue did not cancel the old stop "
                                    f"{old.client_order_id}; if both fire the position flips. Cancel it by hand",
                                    self.clock.now(), client_order_id=old.client_order_id)

        if await self.send(stop, "system", then=retire_old):
            pos.stop_order_id = stop.client_order_id
        else:
            self.alerts.publish("critical", "stop_refused",
                                f"{symbol}: protective stop refused ({stop.reason}); position has no stop",
                                self.clock.now())

    @staticmethod
    def _stop_after_entry(pos: Position, entry_stop: Decimal) -> Decimal:
        """The stop a position keeps after an entry fill: the tighter of the one it had and the
        entry's own. An add judged at its own stop must not loosen the stop of what was already
        held: taken whole, it moved the held part's loss at the stop past the caps unchecked."""
        held = pos.stop_price
        if held is None:
            return entry_stop
        return max(held, entry_stop) if pos.quantity > 0 else min(held, entry_stop)
