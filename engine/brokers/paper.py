"""The paper broker: a simulated venue that fills against the simulated book.

It keeps its own account (cash, positions, orders) apart from the engine's portfolio, as a real
venue would, so reconciliation has two independent views to compare. Fills honour the spread,
slippage, maker/taker fees, top-of-book size (so large orders fill partially over several
quotes) and a small latency before an order can trade.
"""
from __future__ import annotations

import asyncio
import functools
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from ..clock import Clock
from ..models import Fill, Order, OrderStatus, OrderType, Quote, Side
from ..money import ZERO
from ..profile import PaperConfig
from .base import Broker, BrokerError, BrokerEvent, OrderUpdate
from .paper_store import PaperStore

BPS = Decimal("0.0001")
PRICE_Q = Decimal("0.00000001")


class PaperBroker(Broker):
    name = "paper"

    def __init__(self, cfg: PaperConfig, clock: Clock, store: PaperStore | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.cash: Decimal = cfg.starting_cash
        self._positions: dict[str, Decimal] = {}
        self._orders: dict[str, Order] = {}
        # working orders by symbol: matching touches only the symbol that ticked
        self._working: dict[str, dict[str, Order]] = {}
        self._eligible_at: dict[str, object] = {}
        self._events: list[BrokerEvent] = []
        self._last: dict[str, Quote] = {}
        self._latency = timedelta(milliseconds=cfg.latency_ms)
        self._taker = cfg.taker_fee_bps * BPS
        self._maker = cfg.maker_fee_bps * BPS
        self._slip = cfg.slippage_bps * BPS
        self._fill_seq = 0
        self._cash_dirty = False
        self._rested: set[str] = set()
        self.connected = True
        self._store = store
        self._dirty: dict[str, Order] = {}
        self._dirty_positions: set[str] = set()  # only these are rewritten on persist
        self._writing: set[asyncio.Future] = set()  # writes queued on the store's thread
        self._write_error: BaseException | None = None  # a write that failed since the last persist()
        self._unsaved = False  # closed with changes its file does not hold
        if store is not None:
            self._load(store)

    # -- durable account ----------------------------------------------------------------------
    def _load(self, store: PaperStore) -> None:
        cash, positions, orders, fill_seq = store.load()
        if cash is None:
            return  # a new account
        self.cash = cash
        self._positions = positions
        self._orders = orders
        self._fill_seq = fill_seq
        now = self.clock.now()
        for o in orders.values():
            if not o.status.is_terminal:
                self._working.setdefault(o.symbol, {})[o.client_order_id] = o
                self._eligible_at[o.client_order_id] = now

    def persist_soon(self) -> None:
        """Start writing what changed since the last call, on the store's thread, and return."""
        if self._store is None or (not self._dirty and not self._cash_dirty):
            return
        orders, positions = self._dirty, self._dirty_positions
        self._dirty, self._dirty_positions, self._cash_dirty = {}, set(), False
        write = self._store.save_soon(self.cash, self._fill_seq, {s: self._positions[s] for s in positions},
                                      list(orders.values()))
        self._writing.add(write)
        write.add_done_callback(functools.partial(self._written, orders, positions))

    def _written(self, orders: dict[str, Order], positions: set[str], write: asyncio.Future) -> None:
        self._writing.discard(write)
        error = BrokerError("paper venue write cancelled", final=False) if write.cancelled() else write.exception()
        if error is not None:
            # Not in the file: marked again for the next write. Changes made meanwhile are to
            # the same objects, so nothing is written twice in one go.
            self._dirty = {**orders, **self._dirty}
            self._dirty_positions |= positions
            self._cash_dirty = True
            self._write_error = self._write_error or error

    async def persist(self) -> None:
        """Write what changed, and wait until every write asked so far is in the venue's file; the
        engine awaits it before each journal commit. Raises if one of them failed."""
        self.persist_soon()
        while self._writing:
            # Each write's `_written` was added before this wait's own callback, so it has run
            # (and taken the write out of the set) by the time the wait returns.
            await asyncio.wait(list(self._writing))
        error, self._write_error = self._write_error, None
        if error is not None:
            raise error
        if self._unsaved:
            raise BrokerError("the paper venue closed without saving its last changes", final=True)

    async def close(self) -> None:
        try:
            await self.persist()
        finally:
            if self._store is not None:
                self._store.close()
                self._store = None
                # What its file never got: no later journal commit may claim it (persist raises).
                self._unsaved = bool(self._dirty) or self._cash_dirty

    # -- requests -----------------------------------------------------------------------------
    async def submit(self, order: Order) -> None:
        now = self.clock.now()
        if order.client_order_id in self._orders:
            # Idempotent by client id, like a venue that enforces unique client ids.
            self._events.append(
                OrderUpdate(order.client_order_id, OrderStatus.REJECTED, now, "duplicate client order id")
            )
            return
        if order.quantity <= 0:
            self._events.append(OrderUpdate(order.client_order_id, OrderStatus.REJECTED, now, "quantity <= 0"))
            return
        # The venue's own copy: its fills and status never write into the engine's Order.
        mine = Order(order.client_order_id, order.symbol, order.side, order.type, order.quantity, order.purpose,
                     order.created_at, order.limit_price, order.stop_price, OrderStatus.SUBMITTED)
        mine.venue_order_id = f"P{len(self._orders) + 1}"
        self._orders[mine.client_order_id] = mine
        self._dirty[mine.client_order_id] = mine
        self._working.setdefault(mine.symbol, {})[mine.client_order_id] = mine
        self._eligible_at[mine.client_order_id] = now + self._latency
        self._events.append(OrderUpdate(mine.client_order_id, OrderStatus.SUBMITTED, now, "", mine.venue_order_id))
        if self._latency.total_seconds() == 0 and mine.symbol in self._last:
            self._match(mine, self._last[mine.symbol])

    async def cancel(self, client_order_id: str) -> bool:
        order = self._orders.get(client_order_id)
        if order is None:
            return True
        if order.status.is_terminal:
            return True
        self._close(order, OrderStatus.CANCELLED, "cancelled")
        return True

    async def open_orders(self) -> list[Order]:
        return [replace(o) for w in self._working.values() for o in w.values()]

    async def fetch_order(self, client_order_id: str) -> Order | None:
        o = self._orders.get(client_order_id)
        return None if o is None else replace(o)

    async def positions(self) -> dict[str, Decimal]:
        return {s: q for s, q in self._positions.items() if q != 0}

    async def balances(self) -> dict[str, Decimal]:
        return {"USD": self.cash}

    def drain_events(self) -> list[BrokerEvent]:
        events, self._events = self._events, []
        return events

    # -- matching -----------------------------------------------------------------------------
    def remember_quote(self, quote: Quote) -> None:
        """The last price, from history the engine reads before it trades (the simulated market's
        warm-up): nothing is matched on it, since no one would hear what it filled."""
        self._last[quote.symbol] = quote

    def on_quote(self, quote: Quote) -> None:
        self._last[quote.symbol] = quote
        working = self._working.get(quote.symbol)
        if not working:
            return
        now = quote.ts
        for order in list(working.values()):
            if self._eligible_at[order.client_order_id] <= now:
                self._match(order, quote)

    def _match(self, order: Order, q: Quote) -> None:
        if q.bid <= 0 or q.ask <= 0:
            return  # a broken quote never fills anything
        buy = order.side is Side.BUY
        if order.type is OrderType.STOP:
            triggered = (q.ask >= order.stop_price) if buy else (q.bid <= order.stop_price)
            if not triggered:
                return
            self._fill(order, q, taker=True)
        elif order.type is OrderType.MARKET:
            self._fill(order, q, taker=True)
        else:
            touch = q.ask if buy else q.bid
            marketable = touch <= order.limit_price if buy else touch >= order.limit_price
            if not marketable:
                self._rested.add(order.client_order_id)
                return
            # Crossing on arrival takes liquidity; a resting limit that the market reaches makes it.
            arrival = order.client_order_id not in self._rested
            self._fill(order, q, taker=arrival, limit=order.limit_price)

    def _fill(self, order: Order, q: Quote, *, taker: bool, limit: Decimal | None = None) -> None:
        buy = order.side is Side.BUY
        available = q.ask_size if buy else q.bid_size
        qty = min(order.remaining, available) if available > 0 else order.remaining
        if qty <= 0:
            return
        if limit is not None and not taker:
            price = limit
        else:
            touch = q.ask if buy else q.bid
            slip = touch * self._slip
            price = (touch + slip) if buy else (touch - slip)
            if limit is not None:
                price = min(price, limit) if buy else max(price, limit)
        price = price.quantize(PRICE_Q)
        fee = (qty * price * (self._taker if taker else self._maker)).quantize(PRICE_Q)
        if buy and qty * price + fee > self.cash:
            # A cash account: a venue refuses what the balance cannot pay for (Binance "insufficient
            # balance"), it never lends. The engine's gate reckons fees and slippage beforehand;
            # this is the venue's own word when the market moved past that reckoning.
            self._close(order, OrderStatus.REJECTED, f"insufficient balance: needs {qty * price + fee:.2f}, "
                                                     f"cash {self.cash:.2f}")
            return
        held = self._positions.get(order.symbol, ZERO)
        if not buy and qty > held:
            # Nor does it lend the asset: a spot venue refuses a sell beyond what is held, so two
            # sells racing for one position (a stop firing as an exit fills) never open a short.
            self._close(order, OrderStatus.REJECTED, f"insufficient balance: sells {qty}, holds {held}")
            return
        signed = qty if buy else -qty
        self._positions[order.symbol] = self._positions.get(order.symbol, ZERO) + signed
        self._dirty_positions.add(order.symbol)
        self.cash -= signed * price + fee
        self._cash_dirty = True
        self._dirty[order.client_order_id] = order
        total = order.filled_qty + qty
        order.avg_fill_price = ((order.avg_fill_price * order.filled_qty) + price * qty) / total
        order.filled_qty = total
        order.fees += fee
        self._fill_seq += 1
        self._events.append(
            Fill(order.client_order_id, order.symbol, order.side, qty, price, fee, q.ts,
                 "taker" if taker else "maker", f"F{self._fill_seq}")
        )
        if order.remaining <= 0:
            self._close(order, OrderStatus.FILLED, "")
        else:
            order.status = OrderStatus.PARTIALLY_FILLED

    def _close(self, order: Order, status: OrderStatus, reason: str) -> None:
        order.status = status
        self._dirty[order.client_order_id] = order
        self._working.get(order.symbol, {}).pop(order.client_order_id, None)
        self._eligible_at.pop(order.client_order_id, None)
        self._rested.discard(order.client_order_id)
        if status is not OrderStatus.FILLED:
            self._events.append(OrderUpdate(order.client_order_id, status, self.clock.now(), reason))
        else:
            self._events.append(OrderUpdate(order.client_order_id, status, self.clock.now(), ""))
