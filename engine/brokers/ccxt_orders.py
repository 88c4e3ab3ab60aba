"""A ccxt order's life at the broker: submit (never twice: an unknown outcome is looked up by client
id first), acceptance, fills (a base-asset fee converted to quote), terminal states, lookups."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from ..models import Fill, Order, OrderStatus, OrderType, Side
from .ccxt_errors import classify, is_duplicate_id
from .ccxt_payloads import STATUS
from .retry import Failure, VenueError
from .venue_fields import ZERO, UnreadableNumber, number, positive

log = logging.getLogger("tradeconsole.venue")


@dataclass
class TrackedOrder:
    order: Order  # the broker's copy: status, filled, avg price, fees, venue id
    is_stop: bool
    trade_ids: set[str] = field(default_factory=set)
    terminal_sent: bool = False
    unconfirmed_since: float | None = None  # monotonic time a submit's outcome became unknown
    submitted_ms: int = 0
    unreadable: str = ""  # a fill of it could not be read: engine/brokers/venue_fields.py
    in_flight: bool = False  # its submit call has not returned yet
    cancel_wanted: bool = False  # cancel asked before the venue's word on it: PollingVenue._cancel_later
    cancelling: bool = False
    closed_locally: bool = False  # ended on our word (refused, never confirmed), not the venue's


class CcxtOrderLifecycleMixin:
    """Part of CcxtBroker (engine/brokers/ccxt_broker.py), whose __init__ sets the state used here."""

    async def submit(self, order: Order) -> None:
        track = self._start_submit(order, lambda mine: TrackedOrder(
            mine, is_stop=order.type is OrderType.STOP, submitted_ms=self._now_ms()))
        if track is None:
            return
        mine, cid = track.order, order.client_order_id
        held = self._entry_held(order)
        if held is not None:
            self._reject(track, held)
            return
        try:
            ctype, amount, price, params = self.prepare(order)
            # Our copy holds what the venue will hold: the rounded amount and prices.
            mine.quantity = positive(amount, "amount")
            if price is not None:
                mine.limit_price = positive(price, "price")
            if "triggerPrice" in params:
                mine.stop_price = positive(params["triggerPrice"], "triggerPrice")
        except ValueError as exc:
            self._reject(track, str(exc))
            return
        self._working.add(cid)
        self._trade_cursor.setdefault(order.symbol, track.submitted_ms - 5000)
        side = order.side.value
        await self._send_new_order(
            track,
            lambda: self._call("create_order", self.ex.create_order, order.symbol, ctype, side, amount, price,
                               dict(params)),
            lambda: self._lookup(cid, order.symbol),
            self._accept)

    def _is_duplicate(self, err: VenueError) -> bool:
        return is_duplicate_id(err)

    async def _accept(self, track: TrackedOrder, raw: dict) -> None:
        o = track.order
        self._reopen(track, "accepted")
        vid = str(raw.get("id")) if raw.get("id") is not None else o.venue_order_id
        track.unconfirmed_since = None
        if vid:
            o.venue_order_id = vid
            self._by_venue_id[vid] = o.client_order_id
        if o.status is OrderStatus.NEW:
            o.status = OrderStatus.SUBMITTED
            self._emit(o.client_order_id, OrderStatus.SUBMITTED, "", vid)
        embedded = [t for t in (raw.get("trades") or []) if t.get("id")]
        for t in embedded:
            self._apply_trade(track, t)
        if raw.get("status") is None and o.type is OrderType.MARKET:
            # Bybit acknowledges with ids only: read the state now so a market fill is not a poll away.
            try:
                looked = await self._lookup(o.client_order_id, o.symbol)
            except VenueError:
                looked = None
            if looked is not None:
                raw = looked
        await self._apply(track, raw)
        await self._cancel_if_wanted(track)

    def _apply_trade(self, track: TrackedOrder, t: dict) -> None:
        tid = str(t.get("id"))
        if tid not in track.trade_ids:
            self._reopen(track, f"trade {tid}")
        if tid in track.trade_ids or track.terminal_sent:
            return
        track.trade_ids.add(tid)
        o = track.order
        if track.unreadable:
            log.error("venue %s: trade %s of %s not booked: an earlier fill of the order could not be read",
                      self.name, tid, o.client_order_id)
            return
        fee = t.get("fee") or {}
        try:
            qty = positive(t.get("amount"), "amount")
            price = positive(t.get("price"), "price")
            # No fee reported is no fee charged. One that is there must be read: for a fee in the
            # base asset it decides how much the fill moved, so a guess would drift from the venue.
            fee_cost = number(fee.get("cost"), "fee cost", missing=ZERO)
        except UnreadableNumber as bad:
            self._fill_unreadable(track, f"trade {tid}", bad)
            return
        fee_ccy = fee.get("currency")
        m = self.ex.market(o.symbol)
        moved = qty
        unbooked = ""
        if fee_cost and fee_ccy == m["base"]:
            # Paid in the asset bought: the fill moves less base; the fee is its quote value.
            moved = qty - fee_cost if o.side is Side.BUY else qty + fee_cost
            if moved <= 0:  # a fee that eats the whole fill is no reading of one
                self._fill_unreadable(track, f"trade {tid}", UnreadableNumber("fee cost", fee.get("cost"),
                                                                              "is not below the amount"))
                return
            fee_q = fee_cost * price
        elif fee_cost and fee_ccy not in (None, m["quote"]):
            unbooked = f"{fee_cost:f} {fee_ccy}"  # no price for it here: the engine says so (orders.py)
            fee_q = ZERO
        else:
            fee_q = fee_cost
        total = o.filled_qty + qty
        o.avg_fill_price = (o.avg_fill_price * o.filled_qty + price * qty) / total
        o.filled_qty = total
        o.fees += fee_q
        if o.status is OrderStatus.SUBMITTED:
            o.status = OrderStatus.PARTIALLY_FILLED
        self._events.append(Fill(o.client_order_id, o.symbol, o.side, moved, price, fee_q, self.clock.now(),
                                 t.get("takerOrMaker") or "taker", f"{self.name}:{tid}", unbooked))

    async def _apply(self, track: TrackedOrder, raw: dict) -> None:
        """Bring our copy up to the venue's order: missing fills first, then a terminal state."""
        o = track.order
        status = STATUS.get(str(raw.get("status") or "").lower())
        if status is not None:
            self._reopen(track, status.value)
        if track.terminal_sent or status is None or not status.is_terminal:
            return
        if o.venue_order_id is None and raw.get("id") is not None:
            # A cancel that beat the submit's reply: its trades are found by this id.
            o.venue_order_id = str(raw["id"])
            self._by_venue_id[o.venue_order_id] = o.client_order_id
        if not track.unreadable:
            try:
                filled = self._filled(raw, status, o)
            except UnreadableNumber as bad:
                self._fill_unreadable(track, "order", bad)
            else:
                if filled > o.filled_qty:
                    await self._catch_up_fills(track, raw, filled)
        if track.unreadable:
            # The venue is done with it, but what filled is not known: no end is reported on made-up
            # numbers; the engine holds it open for reconciliation, and polling it stops here.
            self._working.discard(o.client_order_id)
            return
        track.terminal_sent = True
        o.status = status
        self._working.discard(o.client_order_id)
        reason = "" if status is OrderStatus.FILLED else f"{status.value} at {self.name}"
        self._emit(o.client_order_id, status, reason, o.venue_order_id)

    @staticmethod
    def _filled(raw: dict, status: OrderStatus, o: Order) -> Decimal:
        """How much of a finished order the venue says filled. A cancel answer may carry no figure
        (ours is built so after a lookup found nothing): then the trades already read are all we know.
        A filled order must say how much."""
        missing = None if status is OrderStatus.FILLED else o.filled_qty
        filled = number(raw.get("filled"), "filled", missing=missing)
        if filled is None or filled < 0:
            raise UnreadableNumber("filled", raw.get("filled"))
        return filled

    async def _catch_up_fills(self, track: TrackedOrder, raw: dict, filled: Decimal) -> None:
        o = track.order
        try:
            trades = await self._retry("order trades", self.ex.fetch_my_trades, o.symbol, None, None,
                                       self._order_trade_params(o))
            for t in trades:
                if str(t.get("order")) == str(o.venue_order_id):
                    self._apply_trade(track, t)
        except VenueError as err:
            log.warning("venue %s: trades of %s unavailable (%s)", self.name, o.client_order_id, err.kind.value)
        if filled > o.filled_qty and not track.unreadable:
            # The venue says more filled than its trades show: book the rest at the order's numbers.
            rest = filled - o.filled_qty
            tid = f"{o.venue_order_id}-rest"
            try:
                price = self._rest_price(raw, filled, rest, o)
            except UnreadableNumber as bad:
                self._fill_unreadable(track, "order totals", bad)
                return
            self._apply_trade(track, {"id": tid, "amount": rest, "price": price, "fee": None})

    @staticmethod
    def _rest_price(raw: dict, filled: Decimal, rest: Decimal, o: Order) -> Decimal:
        """The price of what the order's totals show beyond its trades read; UnreadableNumber when
        the totals cannot price it (never 0: a market order has no price of its own)."""
        cost = number(raw.get("cost"), "cost", missing=ZERO)
        if cost <= 0:  # not given (Bybit leaves it out): the average says it
            cost = positive(raw.get("average"), "average") * filled
        known = o.avg_fill_price * o.filled_qty
        if cost > known:
            return (cost - known) / rest
        # Totals that do not cover what was booked: the average, else the limit, if either is there.
        field = "average" if raw.get("average") not in (None, "") else "price"
        return positive(raw.get(field), field)

    def _order_trade_params(self, o: Order) -> dict:
        return {"orderId": o.venue_order_id} if o.venue_order_id else {}

    async def _lookup(self, cid: str, symbol: str) -> dict | None:
        """The venue's order with this client id (retried), or None if the venue has none."""
        async def one() -> dict | None:
            try:
                if self.name == "binance":
                    return await self._call("fetch_order", self.ex.fetch_order, None, symbol,
                                            {"origClientOrderId": cid})
                m = self.ex.market(symbol)
                for fn in (self.ex.privateGetV5OrderRealtime, self.ex.privateGetV5OrderHistory):
                    res = await self._call("order lookup", fn, {"category": "spot", "symbol": m["id"],
                                                                "orderLinkId": cid})
                    items = ((res or {}).get("result") or {}).get("list") or []
                    if items:
                        try:
                            return self.ex.parse_order(items[0], m)
                        except Exception as exc:  # noqa: BLE001 - ccxt refusing garbage: as fetch_order's would
                            raise classify(exc, self.name) from None
                return None
            except VenueError as err:
                if err.kind is Failure.NOT_FOUND:
                    return None
                raise

        return await self.retrier.run(f"lookup {cid}", one)
