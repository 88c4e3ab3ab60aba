"""A restart: the halt latch as the journal left it, the books rebuilt from the journal and
reconciled with the venue, and the operator's answer to each difference found.

A mixin of `Engine` (engine/engine.py); the rebuilding and comparing themselves are
engine/recovery.py.
"""
from __future__ import annotations

import logging

from datetime import datetime

from .journal import JournalRow
from .models import OrderStatus
from .money import ZERO
from .recovery import rebuild, reconcile
from .risk.gate import TradingState

log = logging.getLogger("tradeconsole.engine")


class RestartWiring:
    async def _recover(self) -> None:
        cp = await self.journal.last(["checkpoint"])  # read once: both start from it
        await self._restore_pinned_alerts(cp)
        rep = await rebuild(self, cp)
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
                self.orders.track(vo)
        elif d.kind == "quantity_mismatch" and action == "adopt":
            venue = (await self.broker.positions()).get(d.symbol, ZERO)
            self.portfolio.adopt_quantity(d.symbol, venue, self.quotes.get(d.symbol))
        elif d.kind == "balance_mismatch" and action == "adopt":
            self.portfolio.cash = (await self.broker.balances())[self.broker.cash_currency]
        elif d.kind == "quantity_mismatch" and action == "mark_closed":
            self.portfolio.adopt_quantity(d.symbol, ZERO, self.quotes.get(d.symbol))
        elif action == "mark_closed" and d.client_order_id in self.orders.working:
            o = self.orders.untrack(d.client_order_id)
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

    async def _restore_pinned_alerts(self, cp: JournalRow | None) -> None:
        """Critical alerts an earlier session raised and nobody acknowledged are pinned again.

        The last checkpoint lists those held then, by (session, alert number); the rows after it
        add the criticals raised since, move the ones a later start restored under new numbers
        (`alert_restored`) and drop the acknowledged. What is left is held again here, each
        journaled as restored under this session's number so its acknowledgement can be matched
        after yet another restart."""
        held: dict[tuple[int, int], dict] = {}
        session, after = 0, 0
        if cp is not None:
            after, session = cp.seq, cp.data.get("session", 0)
            for a in cp.data.get("pinned", []):
                held[(session, a["seq"])] = a
        for row in await self.journal.rows(kinds=["session", "alert", "alert_restored", "operator"],
                                           after_seq=after):
            d = row.data
            if row.kind == "session":
                session = d.get("session", session + 1)
            elif row.kind == "alert":
                if d.get("severity") == "critical" and "seq" in d:
                    held[(session, d["seq"])] = {"seq": d["seq"], "kind": row.ref, "message": d["message"],
                                                 "ts": row.ts, "data": d.get("data") or {}}
            elif row.kind == "alert_restored":
                held.pop(tuple(d["origin"]), None)
                held[(session, d["seq"])] = d
            elif d.get("action") == "acknowledge_alert" and d.get("result") == "done" and row.ref:
                held.pop((session, int(row.ref)), None)
        restored = 0
        for (s, _seq), a in sorted(held.items()):
            if s == self.session:
                continue  # raised by this start itself: live already
            restored += 1
            ts = datetime.fromisoformat(a["ts"])  # every source here is a journal row: ISO text
            alert = self.alerts.restore(a["kind"], a["message"], ts, a["data"])
            self.journal.append("alert_restored", self.clock.now(), alert.kind, {
                "seq": alert.seq, "origin": [s, a["seq"]], "kind": alert.kind, "message": alert.message,
                "ts": ts, "data": alert.data})
        if restored:
            log.info("%d unacknowledged critical alert(s) from earlier sessions pinned again", restored)
