"""Between alpaca-py's orders and the engine's Order: venue states, the request an Order becomes
(quantity and prices rounded as Alpaca takes them), and an Order read back from the venue."""
from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from ..models import Order, OrderPurpose, OrderStatus, OrderType, Side
from .venue_fields import CLIENT_ID, ZERO, UnreadableNumber, number, positive, unreadable_error

QTY_STEP = Decimal("0.000000001")
STATUS = {
    "new": OrderStatus.SUBMITTED, "accepted": OrderStatus.SUBMITTED, "pending_new": OrderStatus.SUBMITTED,
    "accepted_for_bidding": OrderStatus.SUBMITTED, "calculated": OrderStatus.SUBMITTED, "held": OrderStatus.SUBMITTED,
    "pending_cancel": OrderStatus.SUBMITTED, "pending_replace": OrderStatus.SUBMITTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED, "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED, "replaced": OrderStatus.CANCELLED, "done_for_day": OrderStatus.EXPIRED,
    "expired": OrderStatus.EXPIRED, "rejected": OrderStatus.REJECTED, "suspended": OrderStatus.REJECTED,
    "stopped": OrderStatus.SUBMITTED,
}


class AlpacaPayloadMixin:
    """Part of AlpacaBroker (engine/brokers/alpaca_broker.py), whose __init__ sets the state read here."""

    @staticmethod
    def round_price(p: Decimal) -> Decimal:
        """Alpaca: two decimals at or above $1, four below."""
        return p.quantize(Decimal("0.01") if p >= 1 else Decimal("0.0001"), rounding=ROUND_HALF_UP)

    def build_request(self, order: Order) -> Any:
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, StopOrderRequest

        if not CLIENT_ID.fullmatch(order.client_order_id) or len(order.client_order_id) > 48:
            raise ValueError(f"client order id {order.client_order_id!r} is not accepted by alpaca")
        qty = order.quantity.quantize(QTY_STEP, rounding=ROUND_DOWN)
        if qty <= 0:
            raise ValueError(f"venue minimum: quantity {order.quantity:f} rounds to 0")
        whole = qty == qty.to_integral_value()
        tif = TimeInForce.GTC if (order.type is OrderType.STOP and whole) else TimeInForce.DAY
        common = dict(symbol=order.symbol, qty=float(qty) if not whole else int(qty),
                      side=OrderSide.BUY if order.side is Side.BUY else OrderSide.SELL,
                      time_in_force=tif, client_order_id=order.client_order_id)
        if order.type is OrderType.LIMIT:
            if not order.limit_price:
                raise ValueError("limit order without a limit price")
            return LimitOrderRequest(limit_price=float(self.round_price(order.limit_price)), **common)
        if order.type is OrderType.STOP:
            if not order.stop_price:
                raise ValueError("stop order without a stop price")
            return StopOrderRequest(stop_price=float(self.round_price(order.stop_price)), **common)
        return MarketOrderRequest(**common)

    def _to_order(self, raw: Any) -> Order:
        """The venue's order as ours; a VenueError (final) when its numbers cannot be read, since an
        order with a made-up filled quantity or average would be adopted and reconciled as if true."""
        try:
            return self._read_order(raw)
        except UnreadableNumber as bad:
            raise unreadable_error("alpaca", f"order {raw.client_order_id} ({raw.symbol})", bad) from None

    def _read_order(self, raw: Any) -> Order:
        typ = getattr(raw.type, "value", str(raw.type))
        otype = {"limit": OrderType.LIMIT, "stop": OrderType.STOP}.get(typ, OrderType.MARKET)
        side = Side.BUY if getattr(raw.side, "value", str(raw.side)) == "buy" else Side.SELL
        status = STATUS.get(getattr(raw.status, "value", str(raw.status)), OrderStatus.SUBMITTED)
        # No figure on an open order is a fresh one: nothing filled. A finished order must say.
        filled = number(raw.filled_qty, "filled_qty", missing=None if status.is_terminal else ZERO)
        if filled is None or filled < 0:
            raise UnreadableNumber("filled_qty", raw.filled_qty)
        # Alpaca sends no average until something fills: 0 then, and only then.
        avg = positive(raw.filled_avg_price, "filled_avg_price") if filled else ZERO
        return Order(raw.client_order_id, raw.symbol, side, otype, positive(raw.qty, "qty"),
                     OrderPurpose.STOP if otype is OrderType.STOP else OrderPurpose.ENTRY,
                     raw.created_at or self.clock.now(),
                     limit_price=positive(raw.limit_price, "limit_price") if raw.limit_price is not None else None,
                     stop_price=positive(raw.stop_price, "stop_price") if raw.stop_price is not None else None,
                     status=status, filled_qty=filled, avg_fill_price=avg, venue_order_id=str(raw.id))
