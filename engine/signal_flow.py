"""From a strategy's signal to an order: sizing, the gate's decision, approval or sending (the
strategy's exits go through engine/exits.py).

A mixin of `Engine` (engine/engine.py), kept apart so the engine file holds the loop and its
wiring; it reads the engine's profile, portfolio, gate, approvals and order manager.
"""
from __future__ import annotations

from decimal import Decimal

from .models import Order, OrderPurpose, OrderStatus, OrderType, Side, Signal
from .money import ZERO
from .risk.gate import Decision
from .sizing import size_position

BPS = Decimal("0.0001")


class SignalFlow:
    async def _on_signal(self, sig: Signal) -> None:
        self.counters["signals"] += 1
        pos_qty = self.orders.position_qty(sig.symbol)
        if pos_qty != 0:
            self.counters["held_signals"] += 1
            await self._strategy_exit(sig, pos_qty)
            return
        if self.entries_stopped or self._entry_in_flight(sig.symbol):
            # Close-all on the way out (engine/commands.py): leaving flat, nothing new; or one
            # entry per symbol in flight.
            self.counters["skipped"] += 1
            return
        self.journal.append("signal", sig.ts, None, {
            "symbol": sig.symbol, "side": sig.side, "edge": sig.edge, "confidence": sig.confidence,
            "stop": sig.stop_price, "price": sig.price, "reason": sig.reason, "strategy": sig.strategy,
            "readiness": self.strategy.readiness(sig.symbol)})
        size = size_position(self.portfolio.equity, sig.price, sig.stop_price, self.profile.risk, self.profile.sizing)
        order = self._entry_order(sig, size.quantity if size.quantity > 0 else ZERO)
        self._signals[order.client_order_id] = sig
        req = self._request(order, "strategy")
        decision = self.gate.evaluate(req, self._context(req))
        if size.quantity <= 0:
            decision = decision.refused_by("sizing")
        self._journal_decision(order, req, decision, size.rationale)
        if not decision.approved:
            self.counters["refused"] += 1
            order.status = OrderStatus.REJECTED
            order.reason = f"risk gate: {decision.failed}"
            self.orders.record(order)
            self._alert_refusal(sig, order, decision, size.rationale)
            return
        self.counters["approved"] += 1
        if self.profile.approval.required:
            order.status = OrderStatus.PENDING_APPROVAL
            self.orders.record(order)
            self.approvals.add(order, sig, decision, size.rationale, self.clock.now())
            self.alerts.publish("info", "approval_needed",
                                f"{sig.symbol} {sig.side.value} {order.quantity} awaits approval", sig.ts,
                                client_order_id=order.client_order_id)
            return
        await self._send_entry(order, decision)

    def _alert_refusal(self, sig: Signal, order: Order, decision: Decision, sizing: str) -> None:
        """Every refusal is journaled; the feed hears of it when the reason changes, or after a
        quiet spell, so one stubborn limit does not bury every other alert."""
        last = self._last_refusal.get(sig.symbol)
        if last is not None and last[0] == decision.failed and (sig.ts - last[1]).total_seconds() < 300:
            return
        self._last_refusal[sig.symbol] = (decision.failed, sig.ts)
        fail = decision.failure
        detail = fail.detail if fail is not None else sizing
        self.alerts.publish("info", "gate_refused", f"{sig.symbol} {sig.side.value} refused: {decision.failed} ({detail})",
                            sig.ts, client_order_id=order.client_order_id)

    def _entry_order(self, sig: Signal, qty: Decimal) -> Order:
        cfg = self.profile.orders
        if cfg.entry_type == "limit":
            off = sig.price * cfg.limit_offset_bps * BPS
            price = (sig.price - off) if sig.side is Side.BUY else (sig.price + off)
            return Order(self.orders.new_id(), sig.symbol, sig.side, OrderType.LIMIT, qty, OrderPurpose.ENTRY,
                         sig.ts, limit_price=price.quantize(Decimal("0.00000001")),
                         protective_stop=sig.stop_price, reason=sig.reason)
        return Order(self.orders.new_id(), sig.symbol, sig.side, OrderType.MARKET, qty, OrderPurpose.ENTRY,
                     sig.ts, protective_stop=sig.stop_price, reason=sig.reason)

    async def _send_entry(self, order: Order, decision: Decision) -> None:
        if decision.approved:
            # Counted before the send, so its `entry` row (what a restart counts again) goes in
            # the commit that precedes the order's submission, not in a later one; an approved
            # decision is always sent.
            self.trades.record_entry(self.clock.now(), self.orders.position_qty(order.symbol) == 0)
        if await self.orders.send(order, "strategy", decision):
            self.counters["orders"] += 1
