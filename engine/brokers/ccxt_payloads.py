"""Between ccxt's order payloads and the engine's Order: venue states, the request an Order becomes
(rounded to the market, checked against its limits), and an Order read back from the venue."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ..models import Order, OrderPurpose, OrderStatus, OrderType, Side
from .venue_fields import CLIENT_ID, ZERO, UnreadableNumber, number, positive, unreadable_error

log = logging.getLogger("tradeconsole.venue")

STATUS = {"open": OrderStatus.SUBMITTED, "closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELLED,
          "cancelled": OrderStatus.CANCELLED, "expired": OrderStatus.EXPIRED, "rejected": OrderStatus.REJECTED}

BINANCE_STATUS = {"NEW": "open", "PARTIALLY_FILLED": "open", "PENDING_NEW": "open", "FILLED": "closed",
                  "CANCELED": "canceled", "PENDING_CANCEL": "canceled", "REJECTED": "rejected",
                  "EXPIRED": "expired", "EXPIRED_IN_MATCH": "expired"}


def binance_unified(raw: dict) -> dict:
    """The few unified fields `_apply` reads, from a raw Binance order answer."""
    return {"status": BINANCE_STATUS.get(str(raw.get("status"))), "filled": raw.get("executedQty"),
            "cost": raw.get("cummulativeQuoteQty"), "id": raw.get("orderId"),
            "clientOrderId": raw.get("origClientOrderId") or raw.get("clientOrderId")}


class CcxtPayloadMixin:
    """Part of CcxtBroker (engine/brokers/ccxt_broker.py), whose __init__ sets the state read here."""

    def prepare(self, order: Order) -> tuple[str, str, str | None, dict[str, Any]]:
        """(ccxt type, amount, price, params) rounded to the venue; ValueError says why not."""
        ex = self.ex
        cid = order.client_order_id
        if not CLIENT_ID.fullmatch(cid):
            raise ValueError(f"client order id {cid!r} is not accepted by {self.name} (1-36 of A-Z a-z 0-9 _ - . : /)")
        if order.symbol not in ex.markets:
            raise ValueError(f"{self.name} has no market {order.symbol}")
        m = ex.market(order.symbol)
        if order.quantity <= 0:
            raise ValueError("quantity <= 0")
        try:
            amount = ex.amount_to_precision(order.symbol, str(order.quantity))
        except Exception:
            raise ValueError(f"venue minimum: quantity {order.quantity:f} rounds to 0 at {order.symbol}'s step "
                             f"{m['precision'].get('amount')}") from None
        lim = m.get("limits") or {}
        a_min = self._limit(order.symbol, lim, "amount", "min")
        a_max = self._limit(order.symbol, lim, "amount", "max")
        c_min = self._limit(order.symbol, lim, "cost", "min")
        qty = number(amount, "amount")  # UnreadableNumber is a ValueError: the order is refused
        if a_min is not None and qty < a_min:
            raise ValueError(f"venue minimum: quantity {amount} is below {order.symbol}'s minimum {a_min}")
        if a_max is not None and qty > a_max:
            raise ValueError(f"venue maximum: quantity {amount} is above {order.symbol}'s maximum {a_max}")
        params: dict[str, Any] = {"clientOrderId": cid}
        price: str | None = None
        if order.type is OrderType.LIMIT:
            if order.limit_price is None or order.limit_price <= 0:
                raise ValueError("limit order without a limit price")
            price = ex.price_to_precision(order.symbol, str(order.limit_price))
            ref = positive(price, "price")
            ctype = "limit"
        elif order.type is OrderType.STOP:
            if order.stop_price is None or order.stop_price <= 0:
                raise ValueError("stop order without a stop price")
            stop = ex.price_to_precision(order.symbol, str(order.stop_price))
            params["triggerPrice"] = stop
            ref = positive(stop, "triggerPrice")
            ctype = "market"
        else:
            q = self._last.get(order.symbol)
            ref = (q.ask if order.side is Side.BUY else q.bid) if q is not None else ZERO
            ctype = "market"
        if c_min is not None and ref > 0 and qty * ref < c_min:
            raise ValueError(f"venue minimum: order value {(qty * ref).normalize()} is below "
                             f"{order.symbol}'s minimum notional {c_min}")
        return ctype, amount, price, params

    def _limit(self, symbol: str, limits: dict, kind: str, bound: str) -> Decimal | None:
        """A market limit from the loaded markets, None when there is none. One that cannot be read
        is no limit either: the venue enforces its own, and our check only spares it a refusal (a
        made-up 0 would have refused every order as above the maximum)."""
        raw = (limits.get(kind) or {}).get(bound)
        try:
            return number(raw, f"{kind} {bound}", missing=None)
        except UnreadableNumber as bad:
            log.warning("venue %s: %s's %s; not checked here, the venue checks it", self.name, symbol, bad)
            return None

    def _raw_is_stop(self, raw: dict) -> bool:
        cid = raw.get("clientOrderId")
        if cid in self._tracks:
            return self._tracks[cid].is_stop
        info = raw.get("info") or {}
        return (raw.get("triggerPrice") not in (None, 0, "0") or "STOP" in str(info.get("type", "")).upper()
                or bool(info.get("stopOrderType")))

    def _to_order(self, raw: dict) -> Order:
        """The venue's order as ours; a VenueError (final) when its numbers cannot be read, since an
        order with a made-up filled quantity or price would be adopted and reconciled as if true."""
        try:
            return self._read_order(raw)
        except UnreadableNumber as bad:
            cid = raw.get("clientOrderId") or f"venue-{raw.get('id')}"
            raise unreadable_error(self.name, f"order {cid} ({raw.get('symbol')})", bad) from None

    def _read_order(self, raw: dict) -> Order:
        info = raw.get("info") or {}
        trig = raw.get("triggerPrice")
        stop = trig not in (None, 0, "0") or "STOP" in str(info.get("type", "")).upper() or bool(info.get("stopOrderType"))
        otype = OrderType.STOP if stop else (OrderType.LIMIT if raw.get("type") == "limit" else OrderType.MARKET)
        status = STATUS.get(str(raw.get("status") or "").lower(), OrderStatus.SUBMITTED)
        # No figure on an open order is a fresh one: nothing filled. A finished order must say.
        filled = number(raw.get("filled"), "filled", missing=None if status.is_terminal else ZERO)
        if filled is None or filled < 0:
            raise UnreadableNumber("filled", raw.get("filled"))
        if status is OrderStatus.SUBMITTED and filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        ts = raw.get("timestamp")
        created = datetime.fromtimestamp(ts / 1000, timezone.utc) if ts else self.clock.now()
        return Order(
            client_order_id=raw.get("clientOrderId") or f"venue-{raw.get('id')}", symbol=raw.get("symbol"),
            side=Side(raw.get("side")), type=otype, quantity=positive(raw.get("amount"), "amount"),
            purpose=OrderPurpose.STOP if stop else OrderPurpose.ENTRY, created_at=created,
            limit_price=positive(raw.get("price"), "price") if otype is OrderType.LIMIT else None,
            stop_price=positive(trig, "triggerPrice") if stop and trig else None, status=status,
            filled_qty=filled, avg_fill_price=self._average(raw, filled), venue_order_id=str(raw.get("id")),
        )

    @staticmethod
    def _average(raw: dict, filled: Decimal) -> Decimal:
        """The order's average fill price: 0 only when nothing filled (there is none to average)."""
        if filled == 0:
            return number(raw.get("average"), "average", missing=ZERO)
        if raw.get("average") in (None, ""):
            return positive(raw.get("cost"), "average (from cost)") / filled
        return positive(raw.get("average"), "average")
