"""Operator actions beyond the emergency keys: manual orders, per-position and per-order actions,
pauses, notes, alert acknowledgements. A mixin of `Engine` (next to `OperatorCommands`).

Every action runs the same machinery the strategy uses (the request built by `Engine._request`,
the context of `Engine._context`, the one gate, the approval queue, `OrderManager.send`) so an
operator's order can never skip a check the strategy's orders face. Each action journals an
`operator` row (notes a `note` row), flushes, and returns None when done or a one-line refusal.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from .models import Alert, Order, OrderPurpose, OrderStatus, OrderType, Position, Side, Signal
from .money import ZERO
from .risk.checks_operator import PauseBook, SymbolPausedCheck
from .risk.gate import CheckResult, Decision, OrderRequest
from .sizing import size_position
from .manual import ManualOrderSpec, ManualPreview, preview_of, spec_dict
from .snapshot import HistoryView
from .snapshot_build import history_view, stage_history

log = logging.getLogger("tradeconsole.engine")

HUNDRED = Decimal(100)
PRICE_STEP = Decimal("0.00000001")
NOTE_KINDS = ("day", "trade", "alert")
NOTE_MAX_CHARS = 2000
WHAT_IF_ID = "what-if"  # a what-if never takes a real client id: it is never sent


@dataclass(slots=True)
class OperatorState:
    """What the operator actions remember between calls, created on first use."""

    stage_pnl_before: Decimal | None = None  # P&L of earlier sessions in this stage
    stage_started: datetime | None = None  # when the first session at this stage began
    session_start_equity: Decimal | None = None
    max_drawdown_pct: Decimal = ZERO
    # Client ids of the operator's entry orders (queued or sent), this session's and, from the
    # journal, every earlier one: a position one of them opened is the operator's.
    manual_orders: set[str] = field(default_factory=set)


class OperatorActions:
    # -- shared plumbing ----------------------------------------------------------------------
    @property
    def operator_state(self) -> OperatorState:
        # Engine.__init__ belongs to the engine proper; this mixin keeps its state lazily.
        st = self.__dict__.get("_operator_state")
        if st is None:
            st = self.__dict__["_operator_state"] = OperatorState()
        return st

    @property
    def pause_book(self) -> PauseBook | None:
        for check in self.gate.checks:
            if isinstance(check, SymbolPausedCheck):
                return check.book
        return None

    async def _journal_action(self, action: str, ref: str | None, refusal: str | None, **data: object) -> str | None:
        self.journal.append("operator", self.clock.now(), ref, {
            "action": action, "result": "refused" if refusal else "done", "refusal": refusal, **data})
        await self.journal.flush()
        if refusal:
            log.info("operator %s refused: %s", action, refusal)
        return refusal

    def _entry_in_flight(self, symbol: str) -> bool:
        return symbol in self.approvals.symbols() or self.orders.has_working(symbol, OrderPurpose.ENTRY)

    # -- manual orders ------------------------------------------------------------------------
    def preview(self, spec: ManualOrderSpec) -> ManualPreview:
        """The order `spec` becomes and the gate's full decision on it; nothing is sent or
        journaled (the form asks this on every keystroke)."""
        built = self._build_manual(spec, WHAT_IF_ID)
        if isinstance(built, ManualPreview):
            return built
        order, sig, sizing = built
        self._signals[order.client_order_id] = sig
        try:
            req = self._request(order, "operator")
        finally:
            self._signals.pop(order.client_order_id, None)
        decision = self.gate.evaluate(req, self._context(req))
        return preview_of(spec, order, req.price, sizing, decision)

    def what_if(self, spec: ManualOrderSpec) -> Decision:
        """The gate's decision on `spec` without sending it. A spec that cannot become an order
        at all is refused by a pseudo-check `order_spec`, so the answer is always a Decision."""
        p = self.preview(spec)
        if p.decision is not None:
            return p.decision
        check = CheckResult("order_spec", False, "{problem}", {"problem": p.problem})
        return Decision(False, (check,), "order_spec")

    async def submit_manual(self, spec: ManualOrderSpec) -> str | None:
        """Gate it as a strategy order is gated; then the approval queue (if the profile asks
        for approval) or the order manager. Journaled with source `operator`."""
        if self.run_finished:
            return await self._journal_action("submit_manual", None, f"the run has ended ({self.run_finished}): "
                                              "nothing would handle this order; start again to trade",
                                              spec=spec_dict(spec))
        built = self._build_manual(spec, None)
        if isinstance(built, ManualPreview):
            return await self._journal_action("submit_manual", None, built.problem, spec=spec_dict(spec))
        order, sig, sizing = built
        cid = order.client_order_id
        self._signals[cid] = sig  # approve() and the limit fallback re-gate it with these numbers
        req = self._request(order, "operator")
        decision = self.gate.evaluate(req, self._context(req))
        self._journal_decision(order, req, decision, sizing)
        preview = preview_of(spec, order, req.price, sizing, decision)
        if not decision.approved:
            self.counters["refused"] += 1
            order.status = OrderStatus.REJECTED
            order.reason = f"risk gate: {decision.failed}"
            self.orders.record(order)
            return await self._journal_action("submit_manual", cid, preview.refusal, spec=spec_dict(spec))
        self.counters["approved"] += 1
        self.operator_state.manual_orders.add(cid)  # before it can fill: the position is the operator's
        if self.profile.approval.required:
            order.status = OrderStatus.PENDING_APPROVAL
            self.orders.record(order)
            self.approvals.add(order, sig, decision, sizing, self.clock.now())
            self.alerts.publish("info", "approval_needed",
                                f"{order.symbol} {order.side.value} {order.quantity} (operator) awaits approval",
                                self.clock.now(), client_order_id=cid)
        else:
            await self._send_entry(order, decision)
        return await self._journal_action("submit_manual", cid, None, spec=spec_dict(spec),
                                          queued=self.profile.approval.required)

    def _build_manual(self, spec: ManualOrderSpec, cid: str | None) -> tuple[Order, Signal, str] | ManualPreview:
        def no(problem: str) -> ManualPreview:
            return ManualPreview(spec, problem=problem)

        if spec.symbol not in self.profile.symbols:
            return no(f"{spec.symbol or '(none)'} is not a traded symbol ({', '.join(self.profile.symbols)})")
        if spec.side not in ("buy", "sell"):
            return no(f"side must be buy or sell (got {spec.side!r})")
        if spec.type not in ("market", "limit"):
            return no(f"type must be market or limit (got {spec.type!r})")
        if spec.quantity is not None and spec.risk_usd is not None:
            return no("give a quantity or a risk in $, not both")
        for name, value in (("quantity", spec.quantity), ("risk", spec.risk_usd), ("stop", spec.stop_price)):
            if value is not None and not (value.is_finite() and value > 0):
                return no(f"{name} must be a number above 0 (got {value})")
        side = Side(spec.side)
        pos_qty = self.orders.position_qty(spec.symbol)
        if pos_qty != 0 and (pos_qty > 0) != (side is Side.BUY):
            return no(f"{spec.symbol} has an open {'long' if pos_qty > 0 else 'short'}: close it rather than "
                      "enter against it")
        if self._entry_in_flight(spec.symbol):
            return no(f"an entry in {spec.symbol} is already waiting or working")
        q = self.quotes.get(spec.symbol)
        if spec.type == "limit":
            if spec.limit_price is None or not spec.limit_price.is_finite() or spec.limit_price <= 0:
                return no("a limit order needs a limit price above 0")
            ref = spec.limit_price.quantize(PRICE_STEP)
        elif q is None:
            return no(f"no quote for {spec.symbol} yet")
        else:
            ref = q.ask if side is Side.BUY else q.bid
        stop = spec.stop_price
        if stop is None:
            # The distance the strategy itself uses, so a manual order is sized like its orders.
            frac = self.profile.risk.stop_loss_default_pct / HUNDRED
            stop = ref * (1 - frac) if side is Side.BUY else ref * (1 + frac)
        stop = stop.quantize(PRICE_STEP)
        qty, sizing = self._manual_size(spec, ref, stop)
        if qty <= 0:
            return no(f"no size: {sizing}")
        now = self.clock.now()
        reason = f"operator: {spec.note.strip() or 'manual order'}"
        order = Order(cid or self.orders.new_id(), spec.symbol, side,
                      OrderType.LIMIT if spec.type == "limit" else OrderType.MARKET, qty, OrderPurpose.ENTRY,
                      now, limit_price=ref if spec.type == "limit" else None, protective_stop=stop, reason=reason)
        # A manual order carries no edge estimate: full edge and confidence, as the gate assumes for
        # any order without a signal, and strategy "operator" so pausing a strategy leaves it alone.
        sig = Signal(spec.symbol, side, 1.0, 1.0, stop, ref, reason, "operator", now)
        return order, sig, sizing

    def _manual_size(self, spec: ManualOrderSpec, price: Decimal, stop: Decimal) -> tuple[Decimal, str]:
        if spec.quantity is not None:
            return spec.quantity, f"operator quantity {spec.quantity}"
        risk = self.profile.risk
        equity = self.portfolio.equity
        if spec.risk_usd is not None:
            if equity <= 0:
                return ZERO, f"equity {equity}"
            pct = (spec.risk_usd / equity * HUNDRED).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
            risk = risk.model_copy(update={"risk_per_trade_pct": pct})
        size = size_position(equity, price, stop, risk, self.profile.sizing)
        prefix = f"operator risk ${spec.risk_usd}: " if spec.risk_usd is not None else ""
        return size.quantity, prefix + size.rationale

    # -- per position / per order -------------------------------------------------------------
    async def close_position(self, symbol: str, reason: str = "operator close") -> str | None:
        pos = self.portfolio.positions.get(symbol)
        if pos is None or pos.quantity == 0:
            refusal = f"no open position in {symbol}"
        elif self.orders.has_working(symbol, OrderPurpose.EXIT):
            refusal = f"{symbol} is already being closed"
        else:
            ok = await self._exit_position(symbol, "operator", reason)
            refusal = None if ok else (f"the exit for {symbol} was not sent (the risk gate, the venue keeping the "
                                       "stop, or the engine closing): see the alerts; the position keeps its stop")
        return await self._journal_action("close_position", symbol, refusal, reason=reason)

    async def cancel_order(self, client_order_id: str) -> str | None:
        order = self.orders.working.get(client_order_id)
        refusal: str | None = None
        if order is None:
            if client_order_id in self.approvals:
                await self.reject(client_order_id, "cancelled by operator")
            else:
                refusal = f"{client_order_id} is not a working order"
        elif order.purpose is OrderPurpose.STOP:
            refusal = (f"{client_order_id} is the protective stop of {order.symbol}: it cannot be cancelled on "
                       "its own (close the position or move the stop instead)")
        elif order.purpose is OrderPurpose.EXIT:
            refusal = f"{client_order_id} is closing {order.symbol} (its stop was lifted for it): not cancellable"
        else:
            ok = await self.orders.cancel(client_order_id, "operator cancel")
            await self.orders.process_events()
            if not ok:
                refusal = f"the venue refused to cancel {client_order_id}; it is still working"
        return await self._journal_action("cancel_order", client_order_id, refusal)

    async def tighten_stop(self, symbol: str, new_stop: Decimal) -> str | None:
        """Move a position's protective stop. Closer to the price is always allowed; further away
        only within `risk.stop_loss_max_pct` of the average price; never past the price."""
        # The venue's news first: a stop that has fired leaves nothing to move, and a new stop
        # sized from the position before it would open one the other way.
        await self.orders.process_events()
        pos = self.portfolio.positions.get(symbol)
        old = None if pos is None else pos.stop_price
        refusal = self._stop_refusal(symbol, new_stop)
        if refusal is None and new_stop != old:
            pos.stop_price = new_stop
            # The new stop goes to the venue first; only then is the old one cancelled.
            await self.orders.ensure_stop(symbol)
            await self.orders.process_events()  # the old stop's cancel, so one stop shows, not two
            placed = self.orders.stop_order(symbol)
            if placed is None or placed.stop_price != new_stop:
                pos.stop_price = old
                refusal = f"the new stop for {symbol} was refused; the old stop ({old}) stays"
        return await self._journal_action("tighten_stop", symbol, refusal, old=old, new=new_stop)

    def _stop_refusal(self, symbol: str, new_stop: Decimal) -> str | None:
        pos = self.portfolio.positions.get(symbol)
        if pos is None or pos.quantity == 0:
            return f"no open position in {symbol}"
        if not (new_stop.is_finite() and new_stop > 0):
            return f"stop must be a price above 0 (got {new_stop})"
        if self.orders.has_working(symbol, OrderPurpose.EXIT):
            return f"{symbol} is being closed"
        long = pos.quantity > 0
        q = self.quotes.get(symbol)
        price = (q.bid if long else q.ask) if q is not None else pos.last_price
        if (long and new_stop >= price) or (not long and new_stop <= price):
            return (f"stop {new_stop} is on the wrong side of the price {price}: it would fire at once "
                    "(close the position instead)")
        old = pos.stop_price
        tighter = old is not None and (new_stop > old if long else new_stop < old)
        if not tighter and pos.avg_price > 0:
            dist = ((pos.avg_price - new_stop) if long else (new_stop - pos.avg_price)) / pos.avg_price * HUNDRED
            limit = self.profile.risk.stop_loss_max_pct
            if dist > limit:
                return (f"stop {new_stop} is {dist:.2f}% from the average price {pos.avg_price:.2f}; loosening "
                        f"past stop_loss_max_pct ({limit}%) is refused")
            return self._loss_at_stop_refusal(pos, new_stop)
        return None

    def _loss_at_stop_refusal(self, pos: Position, new_stop: Decimal) -> str | None:
        """A looser stop is judged by the gate's own single-trade-loss rule, on the whole position
        from its average price: within stop_loss_max_pct alone, a move could still take the loss
        at the stop past max_single_trade_loss_usd and risk_per_trade_pct."""
        check = next((c for c in self.gate.checks if c.name == "single_trade_loss"), None)
        if check is None:
            return None
        req = OrderRequest(pos.symbol, Side.BUY if pos.quantity > 0 else Side.SELL, abs(pos.quantity),
                           pos.avg_price, new_stop, OrderPurpose.ENTRY, "operator")
        ctx = self._context(req)
        # The request is the whole position: nothing held beside it (the record is refilled per decision).
        ctx.position_qty, ctx.position_stop = ZERO, None
        verdict = check.evaluate(req, ctx)
        if verdict.passed:
            return None
        return f"stop {new_stop} would put {pos.symbol}'s {verdict.detail}: loosening past it is refused"

    # -- pauses -------------------------------------------------------------------------------
    async def pause(self, symbol: str | None = None, *, strategy: str | None = None,
                    reason: str = "operator") -> str | None:
        """Refuse new entries in `symbol` (or from `strategy`, or everywhere when both are None).
        Exits and protective stops keep working."""
        book = self.pause_book
        key = PauseBook.key(symbol, strategy)
        refusal = self._pause_refusal(book, symbol)
        if refusal is None and book.pause(key, reason or "operator"):
            self.alerts.publish("info", "paused", f"entries paused: {PauseBook.label(key)} ({reason})",
                                self.clock.now())
        return await self._journal_action("pause", key, refusal, symbol=symbol, strategy=strategy, reason=reason)

    async def resume(self, symbol: str | None = None, *, strategy: str | None = None) -> str | None:
        book = self.pause_book
        key = PauseBook.key(symbol, strategy)
        refusal = self._pause_refusal(book, symbol)
        if refusal is None:
            if book.resume(key):
                self.alerts.publish("info", "resumed", f"entries resumed: {PauseBook.label(key)}", self.clock.now())
            else:
                refusal = f"{PauseBook.label(key)} was not paused"
        return await self._journal_action("resume", key, refusal, symbol=symbol, strategy=strategy)

    def _pause_refusal(self, book: PauseBook | None, symbol: str | None) -> str | None:
        if book is None:
            return "this engine's risk gate has no symbol_paused check"
        if symbol is not None and symbol not in self.profile.symbols:
            return f"{symbol} is not a traded symbol"
        return None

    async def restore_operator_state(self) -> int:
        """Re-apply the journal's pauses and resumes, and learn which orders were the operator's
        (for Engine.open after a restart); returns how many pause keys are in force."""
        book = self.pause_book
        manual = self.operator_state.manual_orders
        for row in await self.journal.rows(kinds=["operator"]):
            if row.data.get("result") != "done" or row.ref is None:
                continue
            action = row.data.get("action")
            if action == "submit_manual":
                manual.add(row.ref)
            elif book is None:
                continue
            elif action == "pause":
                book.pause(row.ref, row.data.get("reason") or "operator")
            elif action == "resume":
                book.resume(row.ref)
        return 0 if book is None else len(book.reasons)

    # -- whose position -----------------------------------------------------------------------
    def opened_by_operator(self, symbol: str) -> bool:
        """Whether the open position in `symbol` was opened by one of the operator's manual orders.

        Such a position is the operator's: the strategy's exit signals leave it alone (it is closed
        by its protective stop, the operator, or close-all), because the strategy never decided to
        hold it. Adding to it by hand does not change whose it is, nor
        does a manual order added to a position the strategy opened. A position whose opening
        order is unknown (adopted from the venue at a restart) stays the strategy's to exit, as
        before this rule."""
        pos = self.portfolio.positions.get(symbol)
        return pos is not None and pos.opening_order in self.operator_state.manual_orders

    # -- notes and alerts ---------------------------------------------------------------------
    async def add_note(self, text: str, ref: str | None = None, kind: str = "day") -> str | None:
        text = text.strip()
        if kind not in NOTE_KINDS:
            return f"note kind must be one of {', '.join(NOTE_KINDS)} (got {kind!r})"
        if not text:
            return "a note needs some text"
        if len(text) > NOTE_MAX_CHARS:
            return f"a note holds at most {NOTE_MAX_CHARS} characters (got {len(text)})"
        self.journal.append("note", self.clock.now(), ref, {"kind": kind, "text": text})
        await self.journal.flush()
        return None

    async def acknowledge_alert(self, seq: int) -> str | None:
        """Mark an alert seen. A critical alert stays on the screen until this is done."""
        alert = self.alerts.acknowledge(seq)
        refusal = None if alert is not None else f"no alert #{seq} on record"
        return await self._journal_action("acknowledge_alert", str(seq), refusal,
                                          kind=alert.kind if alert else None)

    def pinned_alerts(self) -> list[Alert]:
        """Unacknowledged critical alerts, newest first, including those the bounded feed has
        dropped (the alert bus holds them apart from its ring until acknowledged)."""
        return self.alerts.unacknowledged()

    # -- history ------------------------------------------------------------------------------
    async def load_stage_history(self) -> None:
        """P&L of the earlier sessions run at this profile's stage, from the journal (for the
        'since stage start' figure). Run once from a worker; the snapshot shows None until then."""
        rows = await self.journal.rows(kinds=["session", "session_end", "equity"])
        st = self.operator_state
        before, started, first_eq = stage_history(rows, self.profile.stage)
        st.session_start_equity = first_eq if first_eq is not None else self.portfolio.equity
        st.stage_pnl_before = before
        st.stage_started = started or self.clock.now()

    async def trade_history(self, limit: int = 500) -> HistoryView:
        """Fills and notes from the journal, newest first (the console calls this from a worker)."""
        return history_view(await self.journal.rows(kinds=["fill", "note"]), limit)
