"""A restart: the halt latch as the journal left it, the books rebuilt from the journal and
reconciled with the venue, and the operator's answer to each difference found.

A mixin of `Engine` (engine/engine.py); the rebuilding and comparing themselves are
engine/recovery.py.
"""
from __future__ import annotations

import logging

from .models import OrderStatus
from .money import ZERO
from .recovery import rebuild, reconcile
from .risk.gate import TradingState

log = logging.getLogger("tradeconsole.engine")


class RestartWiring:
    async def _recover(self) -> None:
        rep = await rebuild(self)
        self._apply_breaker_state()  # a breaker that held at the crash still holds
        diffs = await reconcile(self, rep)
        self.recovery = rep
        self.reconciliation = diffs
        if rep.fills_replayed or rep.open_orders or rep.positions or rep.from_checkpoint:
            self.journal.append("recovery", self.clock.now(), None, {
                "fills_replayed": rep.fills_replayed, "open_orders": rep.open_orders, "positions": rep.positions,
                "expired_approvals": rep.expired_approvals, "differences": [d.text for d in diffs]})
            log.info("recovered %s positions, %s open orders (%s fills replayed)",
                     rep.positions, rep.open_orders, rep.fills_replayed)
        if diffs:
            if self.state is not TradingState.HALTED:
                self.state = TradingState.REDUCE_ONLY
            self.alerts.publish("critical", "reconciliation",
                                f"journal and venue differ in {len(diffs)} place(s): reduce-only until resolved",
                                self.clock.now())

    async def resolve_difference(self, index: int, action: str) -> str | None:
        """The operator's answer to one reconciliation difference; journaled. None = done."""
        if not 0 <= index < len(self.reconciliation):
            return f"no difference #{index}"
        d = self.reconciliation[index]
        if d.resolved:
            return f"already resolved ({d.resolved})"
        if action not in d.actions:
            return f"{action} is not possible here; choose {', '.join(d.actions)}"
        if d.kind == "unknown_at_venue" and action == "cancel":
            await self.broker.cancel(d.client_order_id)
            self.broker.drain_events()
        elif d.kind == "unknown_at_venue" and action == "adopt":
            vo = await self.broker.fetch_order(d.client_order_id)
            if vo is not None and not vo.status.is_terminal:
                self.orders.orders[vo.client_order_id] = vo
                self.orders.working[vo.client_order_id] = vo
        elif d.kind == "quantity_mismatch" and action == "adopt":
            venue = (await self.broker.positions()).get(d.symbol, ZERO)
            self.portfolio.adopt_quantity(d.symbol, venue, self.quotes.get(d.symbol))
        elif d.kind == "balance_mismatch" and action == "adopt":
            self.portfolio.cash = (await self.broker.balances())[self.broker.cash_currency]
        elif d.kind == "quantity_mismatch" and action == "mark_closed":
            self.portfolio.adopt_quantity(d.symbol, ZERO, self.quotes.get(d.symbol))
        elif action == "mark_closed" and d.client_order_id in self.orders.working:
            o = self.orders.working.pop(d.client_order_id)
            o.status = OrderStatus.CANCELLED
            o.reason = "marked closed by operator after restart"
            self.orders.record(o)
        d.resolved = action
        self.journal.append("reconcile", self.clock.now(), d.client_order_id,
                            {"difference": d.text, "action": action, "kind": d.kind, "symbol": d.symbol})
        if all(x.resolved for x in self.reconciliation):
            self._apply_breaker_state()
        await self.journal.flush()
        return None

    async def _restore_latch(self) -> None:
        last = await self.journal.last(["halt", "rearm"])
        if last is not None and last.kind == "halt":
            self.state = TradingState.HALTED
            self.halt_reason = f"{last.data.get('reason', '')} (from a previous session; re-arm to trade)"
