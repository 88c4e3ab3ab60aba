"""From a strategy's signal to an order: sizing, the gate's decision, approval or sending, and
the strategy's exits.

A mixin of `Engine` (engine/engine.py), kept apart so the engine file holds the loop and its
wiring; it reads the engine's profile, portfolio, gate, approvals and order manager.
"""
from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from .models import Order, OrderPurpose, OrderStatus, OrderType, Side, Signal
from .money import ZERO
from .risk.gate import Decision
from .sizing import size_position

log = logging.getLogger("tradeconsole.engine")

BPS = Decimal("0.0001")
# Times an exit is sized again when the position moves as its stop comes off (a stop that fired).
EXIT_ATTEMPTS = 3


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

    def _hold_exit(self, order: Order, stop: Order, source: str) -> None:
        order.status = OrderStatus.CANCELLED
        order.reason = f"not sent: the venue did not cancel stop {stop.client_order_id}"
        self.orders.record(order)
        now = self.clock.now()
        # The strategy asks again on every quote: say it once per stop, or after a quiet spell.
        last = self._last_refusal.get(order.symbol)
        if source == "strategy" and last is not None and last[0] == stop.client_order_id \
                and (now - last[1]).total_seconds() < 300:
            return
        self._last_refusal[order.symbol] = (stop.client_order_id, now)
        self.alerts.publish("warning" if source == "strategy" else "critical", "exit_held",
                            f"{order.symbol}: exit not sent: the venue did not cancel its protective stop "
                            f"{stop.client_order_id}, which stays in place (an exit beside it could flip "
                            f"the position)", now, client_order_id=order.client_order_id)

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

    async def _strategy_exit(self, sig: Signal, pos_qty: Decimal) -> None:
        if self.opened_by_operator(sig.symbol):
            return  # the operator's position: its stop, the operator or close-all close it
        if self.orders.has_working(sig.symbol, OrderPurpose.EXIT) or self._exit_guard(sig.symbol).locked():
            return  # being closed already (close-all, a row close): asked again on the next quote
        await self._exit_position(sig.symbol, "strategy", sig.reason)

    def _exit_guard(self, symbol: str) -> asyncio.Lock:
        """One exit per position at a time: held from the first look at the position to the exit
        sent (or the stop back), across every await, so two closers (close-all from the CLI and
        the `c` key, close-all and a row close) never both send a full-size exit."""
        guards = self.__dict__.setdefault("_exit_guards", {})
        guard = guards.get(symbol)
        if guard is None:
            guard = guards[symbol] = asyncio.Lock()
        return guard

    def exits_under_way(self) -> list[str]:
        """Symbols with an exit step under way (between the first look and the exit sent)."""
        return [s for s, g in self.__dict__.get("_exit_guards", {}).items() if g.locked()]

    async def settle_exits(self, timeout: float) -> list[str]:
        """From now on no exit step starts (`_exits_closed`); wait, bounded, for those under way
        to finish theirs (exit sent, or the stop kept/back): ending between "stop off" and "exit
        sent" would leave the position bare at the venue. Returns the symbols still under way."""
        self._exits_closed = True
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        for symbol in self.exits_under_way():
            guard = self._exit_guard(symbol)
            left = end - loop.time()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(guard.acquire(), left)
            except asyncio.TimeoutError:
                break
            guard.release()
        return self.exits_under_way()

    async def _exit_position(self, symbol: str, source: str, reason: str) -> bool:
        async with self._exit_guard(symbol):
            if getattr(self, "_exits_closed", False):
                # The engine is closing: a step started now could be cut off with the stop off.
                log.warning("%s: exit not started: the engine is closing; its stop stays", symbol)
                return False
            if self.orders.has_working(symbol, OrderPurpose.EXIT):
                return True  # another closer's exit is working: one exit per position
            return await self._exit_guarded(symbol, source, reason)

    async def _exit_guarded(self, symbol: str, source: str, reason: str) -> bool:
        # What there is to close is read after the venue's news (a stop that fired, an entry that
        # filled), and the symbol's entries go first: left working, one filled after the exit and
        # the position it opened had no stop (or a limit's market fallback bought it back).
        failed = await self.orders.cancel_entries_in(symbol, "position closed")
        if failed:
            self.alerts.publish("warning", "entry_not_cancelled",
                                f"{symbol}: closing, but the venue did not cancel entry {', '.join(failed)}; "
                                "what it fills after the exit gets a protective stop", self.clock.now())
        await self.orders.process_events()
        for _ in range(EXIT_ATTEMPTS):
            held = self.orders.position_qty(symbol)
            if held == 0:
                return True
            order = self._exit_order(symbol, held, reason)
            req = self._request(order, source)
            decision = self.gate.evaluate(req, self._context(req))
            self._journal_decision(order, req, decision, "exit: whole position")
            if not decision.approved:
                self.orders.record(order)
                return False
            # The exit's intent (its decision row) is committed before anything else: a journal
            # that cannot commit (locked, full) fails here, raised to the caller, with the stop
            # still in place and no exit counted as working.
            await self.journal.flush()
            # The stop comes off next, or it could fire too and flip the position.
            stop = self.orders.stop_order(symbol)
            if stop is not None:
                if not await self.orders.cancel(stop.client_order_id, "exit replaces stop"):
                    # The venue kept the stop: it may have fired already, or fire yet, and an exit
                    # beside it could flip the position. The stop stays; the next exit tries again.
                    self._hold_exit(order, stop, source)
                    return False
                await self.orders.process_events()
            if self.orders.position_qty(symbol) == held:
                ok = await self.orders.send_committed(order, source, decision)
                if ok:
                    self.counters["orders"] += 1
                return ok
            # The position moved while its stop came off (the stop had fired, an entry filled):
            # sent as sized, the exit would flip it. Not sent; sized again from what is held now.
            order.status = OrderStatus.CANCELLED
            order.reason = "not sent: the position changed before the exit left"
            self.orders.record(order)
        await self.orders.ensure_stop(symbol)
        self.alerts.publish("critical", "exit_not_sent",
                            f"{symbol}: exit not sent: the position kept changing as it was closed; it holds "
                            f"{self.orders.position_qty(symbol)} with its protective stop. Close it again",
                            self.clock.now())
        return False

    def _exit_order(self, symbol: str, held: Decimal, reason: str) -> Order:
        side = Side.SELL if held > 0 else Side.BUY
        cfg = self.profile.orders
        q = self.quotes.get(symbol)
        if cfg.exit_type == "limit" and q is not None:
            # Aggressive but bounded: crosses the spread, never deeper than the slippage bound.
            bound = cfg.exit_slippage_bps * BPS
            price = q.bid * (1 - bound) if side is Side.SELL else q.ask * (1 + bound)
            return Order(self.orders.new_id(), symbol, side, OrderType.LIMIT, abs(held), OrderPurpose.EXIT,
                         self.clock.now(), limit_price=price.quantize(Decimal("0.00000001")), reason=reason)
        return Order(self.orders.new_id(), symbol, side, OrderType.MARKET, abs(held), OrderPurpose.EXIT,
                     self.clock.now(), reason=reason)
