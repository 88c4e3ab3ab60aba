"""The order manager: every order's lifecycle, from a client id fixed before submission to a
terminal state, and the protective stop that every position carries.

Every path to the broker goes through `send`, which refuses an order that has no approving
risk-gate decision and journals the intent (the outbox row) before the broker sees it.
"""
from __future__ import annotations

import hashlib
import logging
from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Awaitable, Callable, Mapping

from .alerts import AlertBus
from .brokers.base import Broker, OrderUpdate
from .clock import Clock
from .journal import Journal
from .models import TERMINAL_STATUSES, Fill, Order, OrderPurpose, OrderStatus, OrderType, Side
from .money import ZERO
from .portfolio import Portfolio
from .profile import OrderConfig
from .order_events import OrderEvents
from .protective_stops import ProtectiveStops
from .risk.gate import Decision

log = logging.getLogger("tradeconsole.orders")
# How long a finished order stays in memory after its last change: long enough for any late venue
# event about it (a fill racing its cancel); after that only the journal has it. Without a bound,
# an engine running for weeks kept every order it ever decided, refusals included (thousands a day).
KEEP_FINISHED = timedelta(days=1)
# How soon a timed-out limit's cancel is asked again when the venue has not ended the order.
CANCEL_RETRY = timedelta(seconds=5)

Authorize = Callable[[Order, str], Decision]


def order_record(o: Order) -> dict:
    return {
        "client_order_id": o.client_order_id, "symbol": o.symbol, "side": o.side, "type": o.type,
        "purpose": o.purpose, "quantity": o.quantity, "limit_price": o.limit_price,
        "stop_price": o.stop_price, "status": o.status, "filled_qty": o.filled_qty,
        "avg_fill_price": o.avg_fill_price, "fees": o.fees, "venue_order_id": o.venue_order_id,
        "reason": o.reason, "protective_stop": o.protective_stop, "parent_id": o.parent_id,
    }


class OrderManager(OrderEvents, ProtectiveStops):
    def __init__(
        self,
        broker: Broker,
        journal: Journal,
        clock: Clock,
        portfolio: Portfolio,
        alerts: AlertBus,
        authorize: Authorize,
        cfg: OrderConfig,
        profile_name: str,
        session: int,
    ) -> None:
        self.broker = broker
        self.journal = journal
        self.clock = clock
        self.portfolio = portfolio
        self.alerts = alerts
        self.authorize = authorize
        self.cfg = cfg
        tag = hashlib.sha1(profile_name.encode()).hexdigest()[:4]
        # Unique per profile and per session, so a restart never reuses an id the venue has seen.
        self.id_prefix = f"tc{tag}-{session}-"
        self._n = 0
        self.orders: dict[str, Order] = {}
        self._working: dict[str, Order] = {}
        # Read-only outside: `track` and `untrack` keep the per-symbol index in step with it.
        self.working: Mapping[str, Order] = MappingProxyType(self._working)
        self._working_by_symbol: dict[str, dict[str, Order]] = {}
        # Entries sent and not finished: what they will buy is taken already, and the gate counts
        # it (engine/gate_wiring.py); read-only outside, kept by `track` and `untrack`.
        self._working_entries: dict[str, Order] = {}
        self.working_entries: Mapping[str, Order] = MappingProxyType(self._working_entries)
        self._limit_deadline: dict[str, object] = {}
        self._cancel_retried: set[str] = set()  # timed-out orders whose cancel is being asked again
        self._stale_entries: set[str] = set()  # restored limit entries: no market fallback (track_restored)
        self.fills = 0
        self.on_fill: Callable[[Fill, Order, Decimal], None] | None = None
        # How much more of a symbol an entry may buy/sell now under the position cap (engine-set).
        self.entry_room: Callable[[str, Side], Decimal] | None = None
        self.latched: Callable[[], bool] = lambda: False  # the halt latch, engine-set
        self._unbooked_assets: set[str] = set()  # third-asset fees the operator has been told of
        self.batching = False
        self._outbox: dict[str, tuple[Order, Callable[[], Awaitable[None]] | None]] = {}
        self._finished: deque[tuple[datetime, str]] = deque()  # (when, id) as orders reach an end state
        # The venue's events not handled yet, in the order it told them. One queue, so a call made
        # while one is being handled (a stop's replacement hearing its answer) takes the older
        # ones first, and one that failed midway leaves the rest for the next call.
        self._events: deque[Fill | OrderUpdate] = deque()
        # A replacement stop's id -> the stop it replaces, until the venue takes or refuses it
        # (protective_stops.py): the old one goes only once the new one is working.
        self._replacing: dict[str, Order] = {}
        # A whole-position stop placed after the old one came off (a balance refusal) -> the old
        # stop's size, re-placed if the venue refuses the whole one too (protective_stops.py).
        self._old_first: dict[str, Decimal] = {}

    def new_id(self) -> str:
        self._n += 1
        return f"{self.id_prefix}{self._n}"

    # -- working orders -----------------------------------------------------------------------
    def track(self, order: Order) -> None:
        """`order` is working (sent, or found working at the venue)."""
        self._working[order.client_order_id] = order
        self._working_by_symbol.setdefault(order.symbol, {})[order.client_order_id] = order
        if order.purpose is OrderPurpose.ENTRY:
            self._working_entries[order.client_order_id] = order

    def track_restored(self, order: Order, now: datetime) -> None:
        """`order` was found working at a restart (the journal's, or one adopted from the venue).
        A limit keeps a timeout, counted from now: without one it rested for good, holding room
        in the gate. An entry's is not chased at market: its signal is from before the restart."""
        self.track(order)
        if order.type is OrderType.LIMIT and order.purpose in (OrderPurpose.ENTRY, OrderPurpose.EXIT):
            self._limit_deadline[order.client_order_id] = now + timedelta(seconds=self.cfg.limit_timeout_seconds)
            if order.purpose is OrderPurpose.ENTRY:
                self._stale_entries.add(order.client_order_id)

    def untrack(self, cid: str) -> Order | None:
        """`cid` is working no more; returns the order if it was."""
        order = self._working.pop(cid, None)
        if order is not None:
            self._working_entries.pop(cid, None)
            same = self._working_by_symbol.get(order.symbol)
            if same is not None:
                same.pop(cid, None)
                if not same:
                    del self._working_by_symbol[order.symbol]
            if self._cancel_retried:
                self._cancel_retried.discard(cid)
        return order

    def has_working(self, symbol: str, purpose: OrderPurpose) -> bool:
        """Whether an order of this purpose is working in `symbol` (asked per signal: indexed)."""
        same = self._working_by_symbol.get(symbol)
        return same is not None and any(o.purpose is purpose for o in same.values())

    def _journal_order(self, o: Order) -> None:
        now = self.clock.now()
        self.journal.append("order", now, o.client_order_id, order_record(o))
        if o.status in TERMINAL_STATUSES:
            self._finished.append((now, o.client_order_id))

    def forget_finished(self, now: datetime) -> list[str]:
        """Drop from memory the orders finished more than KEEP_FINISHED ago; returns their ids."""
        horizon = now - KEEP_FINISHED
        finished, gone = self._finished, []
        while finished and finished[0][0] < horizon:
            cid = finished.popleft()[1]
            o = self.orders.get(cid)
            if o is not None and o.status in TERMINAL_STATUSES and cid not in self.working:
                del self.orders[cid]
                gone.append(cid)
        return gone

    # -- sending ------------------------------------------------------------------------------
    async def send(self, order: Order, source: str, decision: Decision | None = None,
                   then: Callable[[], Awaitable[None]] | None = None) -> bool:
        """Gate (unless the caller just did), journal the intent, then hand it to the broker.

        While `batching` (inside one market-data batch) the order waits in the outbox and
        `dispatch()` commits the journal once for all of them before any is sent; otherwise it
        is committed and sent now. `then` runs right after the broker has it."""
        if decision is None:
            decision = self.authorize(order, source)
        if not decision.approved:
            order.status = OrderStatus.REJECTED
            order.reason = f"risk gate: {decision.failed}"
            self.orders[order.client_order_id] = order
            self._journal_order(order)
            return False
        order.status = OrderStatus.SUBMITTED
        order.submitted_at = self.clock.now()
        self.orders[order.client_order_id] = order
        self.track(order)
        if order.type is OrderType.LIMIT and order.purpose in (OrderPurpose.ENTRY, OrderPurpose.EXIT):
            self._limit_deadline[order.client_order_id] = order.submitted_at + timedelta(
                seconds=self.cfg.limit_timeout_seconds
            )
        self._journal_order(order)
        self._outbox[order.client_order_id] = (order, then)
        if not self.batching:
            await self.dispatch()
        return True

    def stage(self, order: Order) -> None:
        """An approved exit, working from now (so no second closer sends another) with its order
        row journaled: the next commit carries it before the venue hears of it (`submit_staged`)."""
        order.status = OrderStatus.SUBMITTED
        order.submitted_at = self.clock.now()
        self.orders[order.client_order_id] = order
        self.track(order)
        if order.type is OrderType.LIMIT:
            self._limit_deadline[order.client_order_id] = order.submitted_at + timedelta(
                seconds=self.cfg.limit_timeout_seconds)
        self._journal_order(order)

    async def submit_staged(self, order: Order, *, persist: bool = True) -> None:
        """To the venue; `persist=False` leaves the paper venue's write to the caller, once for
        many (every commit awaits it: journal.before_commit)."""
        await self.broker.submit(order)
        if persist:
            self.broker.persist_soon()

    def unstage(self, order: Order, reason: str) -> None:
        """An exit that never left (staged or only decided): not working, its end journaled."""
        self.orders[order.client_order_id] = order
        self._drop_unsent(order, reason)

    async def send_committed(self, order: Order, source: str, decision: Decision) -> bool:
        """Send an approved exit now, its intent committed already (its decision row, before its
        position's stop came off: engine/exits.py). Its own order row is committed first, as
        every order's; a journal that stopped committing since does not keep it back: the stop
        is off, and a bare position is the worse risk (the row commits when the journal can;
        the next commit raises the error to whoever asked). Not batched: a batch's later commit
        could fail the same way."""
        self.stage(order)
        try:
            await self.journal.flush()
        except Exception as exc:  # noqa: BLE001 - the exit goes; the next commit raises it again
            log.error("%s: exit %s sent before its order row was committed (its decision is): %s",
                      order.symbol, order.client_order_id, exc)
        await self.submit_staged(order)
        return True

    async def dispatch(self) -> None:
        """Commit the journal (the outbox rows), then send every order waiting in the outbox."""
        if not self._outbox:
            return
        # Outbox: committed before the venue can know of it (and after the venue's books hold
        # whatever the rows being committed learned from it: journal.before_commit).
        await self.journal.flush()
        while self._outbox:
            cid = next(iter(self._outbox))
            order, then = self._outbox.pop(cid)
            if order.purpose is OrderPurpose.ENTRY and self.latched():
                # A halt landed between the decision and the send: the entry never leaves.
                self._drop_unsent(order, "halted before sending")
                continue
            await self.broker.submit(order)
            if then is not None:
                await then()
        self.broker.persist_soon()  # under way while the engine goes on; every commit awaits it

    def _drop_unsent(self, order: Order, reason: str) -> None:
        order.status = OrderStatus.CANCELLED
        order.reason = reason
        self.untrack(order.client_order_id)
        self._limit_deadline.pop(order.client_order_id, None)
        self._journal_order(order)

    def record(self, order: Order) -> None:
        """Track an order that never reaches the broker (pending approval, refused)."""
        self.orders[order.client_order_id] = order
        self._journal_order(order)

    async def cancel(self, cid: str, reason: str) -> bool:
        order = self.working.get(cid)
        if order is None:
            return True
        if cid in self._outbox:  # never sent: nothing to ask the venue
            del self._outbox[cid]
            self._drop_unsent(order, reason)
            return True
        ok = await self.broker.cancel(cid)
        if ok:
            log.debug("cancel %s (%s)", cid, reason)
        return ok

    async def cancel_where(self, pred: Callable[[Order], bool], reason: str) -> list[str]:
        """Cancel every working order the predicate picks; returns the ids the venue refused."""
        failed = []
        for cid, order in list(self.working.items()):
            if pred(order) and not await self.cancel(cid, reason):
                failed.append(cid)
        return failed

    async def cancel_entries_in(self, symbol: str, reason: str) -> list[str]:
        """Cancel the symbol's working entries; returns the ids the venue refused."""
        same = self._working_by_symbol.get(symbol)
        entries = [cid for cid, o in same.items() if o.purpose is OrderPurpose.ENTRY] if same else []
        return [cid for cid in entries if not await self.cancel(cid, reason)]

    def position_qty(self, symbol: str) -> Decimal:
        pos = self.portfolio.positions.get(symbol)
        return ZERO if pos is None else pos.quantity

    # -- timers -------------------------------------------------------------------------------
    async def on_time(self) -> None:
        """Limit entries past their timeout fall back to market for what is left."""
        if not self._limit_deadline:
            return
        now = self.clock.now()
        due = [cid for cid, dl in self._limit_deadline.items() if dl <= now]
        for cid in due:
            self._limit_deadline.pop(cid, None)
            order = self.working.get(cid)
            if order is None:
                continue
            ended = await self.cancel(cid, "limit timeout")
            await self.process_events()
            if cid in self.working:
                # The venue has not ended it (the cancel refused, or sent with its outcome unknown):
                # it may still fill, and a fallback or a stop sized now would trade the rest twice.
                # Asked again shortly; the operator hears once.
                self._limit_deadline[cid] = now + CANCEL_RETRY
                if cid not in self._cancel_retried:
                    self._cancel_retried.add(cid)
                    self.alerts.publish("warning", "entry_not_cancelled" if order.purpose is OrderPurpose.ENTRY
                                        else "exit_not_cancelled",
                                        f"{order.symbol}: {order.purpose.value} {cid} timed out but the venue has not "
                                        f"ended it ({'cancel refused' if not ended else 'outcome unknown'}); "
                                        f"asking again every {CANCEL_RETRY.total_seconds():g} s, nothing else sent "
                                        "until it ends", now, client_order_id=cid)
                continue
            self._cancel_retried.discard(cid)
            if order.purpose is OrderPurpose.EXIT:
                # The market moved past the slippage bound: the position must not stay bare.
                await self.ensure_stop(order.symbol)
                if order.symbol in self.portfolio.positions:
                    self.alerts.publish("critical", "exit_unfilled",
                                        f"{order.symbol}: exit not filled within its slippage bound; "
                                        f"{order.remaining} left, protective stop restored", now,
                                        client_order_id=cid)
                continue
            remaining = order.remaining
            if remaining <= 0 or order.status is OrderStatus.FILLED:
                continue
            if cid in self._stale_entries:
                self._stale_entries.discard(cid)
                self.alerts.publish("info", "fallback_skipped",
                                    f"{order.symbol}: limit entry from before the restart timed out; {remaining} "
                                    "left unbought (its signal is too old to chase at market)", now, client_order_id=cid)
                continue
            if self.entry_room is not None:
                # The price has moved since the limit was sized: shrink the rest to fit the cap
                # rather than let the gate refuse all of it.
                remaining = min(remaining, self.entry_room(order.symbol, order.side))
            if remaining <= 0:
                self.alerts.publish("warning", "fallback_skipped",
                                    f"{order.symbol}: limit timed out, no room left under the position cap",
                                    now, client_order_id=cid)
                continue
            child = Order(self.new_id(), order.symbol, order.side, OrderType.MARKET, remaining,
                          OrderPurpose.ENTRY, now, protective_stop=order.protective_stop,
                          parent_id=cid, reason="limit timeout: market fallback")
            if not await self.send(child, "strategy"):
                self.alerts.publish("warning", "fallback_refused",
                                    f"{order.symbol}: market fallback for {remaining} refused ({child.reason})",
                                    now, client_order_id=child.client_order_id)
