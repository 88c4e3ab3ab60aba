"""A restart: the halt latch as the journal left it, the books rebuilt from the journal and
reconciled with the venue, and the operator's answer to each difference found.

A mixin of `Engine` (engine/engine.py); the rebuilding and comparing themselves are
engine/recovery.py, the protective stops after a restart engine/restart_stops.py.
"""
from __future__ import annotations

import logging

from datetime import datetime
from decimal import Decimal

from .journal import JournalRow
from .brokers.base import OrderUpdate
from .models import Fill, OrderPurpose, OrderStatus, Side
from .money import ZERO
from .recovery import CASH_TOLERANCE, rebuild, reconcile
from .restart_stops import RestartStops
from .risk.gate import TradingState

log = logging.getLogger("tradeconsole.engine")


def bookable(d) -> bool:
    return d.kind == "closed_while_down" and "book" in d.actions and not d.resolved


class RestartWiring(RestartStops):
    async def _recover(self) -> None:
        cp = await self.journal.last(["checkpoint"])  # read once: both start from it
        await self._restore_pinned_alerts(cp)
        rep = await rebuild(self, cp)
        self._apply_breaker_state()  # a breaker that held at the crash still holds
        await self.api_failures.restore()  # a restart must not forget the failures
        diffs = await reconcile(self, rep)
        await self._carry_out_latched_halt(diffs)
        # A fill the venue made while the engine was down is booked before anything is adopted:
        # adopted first, the holding took the mark and that round trip's P&L, fees and trade were
        # lost (the book was then refused). Listed first, the dialog and `reconcile` ask it first.
        diffs.sort(key=lambda d: not bookable(d))
        self.recovery = rep
        self.reconciliation = diffs
        await self._retire_dead_stops(diffs)
        await self.protect_bare_positions()  # a stop the journal holds as done, on a position still held
        if rep.fills_replayed or rep.open_orders or rep.positions or rep.from_checkpoint:
            self.journal.append("recovery", self.clock.now(), None, {
                "fills_replayed": rep.fills_replayed, "open_orders": rep.open_orders, "positions": rep.positions,
                "expired_approvals": rep.expired_approvals, "differences": [d.text for d in diffs]})
            log.info("recovered %s positions, %s open orders (%s fills replayed)",
                     rep.positions, rep.open_orders, rep.fills_replayed)
        if diffs:
            # Not set here but derived from the open differences (gate_wiring), so a day roll, a
            # stale-data breaker clearing or a re-arm cannot lift it while one is unanswered.
            self._apply_breaker_state()
            self.alerts.publish("critical", "reconciliation",
                                f"journal and venue differ in {len(diffs)} place(s): reduce-only until resolved",
                                self.clock.now())

    async def _carry_out_latched_halt(self, diffs) -> None:
        """A start that comes up HALTED (an offline halt, or a halt the process died right after)
        does what the halt means for the entries it restored: cancelled at the venue, stops kept,
        each journaled, before any quote reaches the venue. Left working, they filled while the
        engine showed HALTED. An entry the venue no longer holds working is a listed difference and
        is left to its answer: asked to cancel it, a real venue looked it up and ended it as filled
        with no fill booked, and the difference (and its `book`) was gone."""
        if self.state is not TradingState.HALTED:
            return
        listed = {d.client_order_id for d in diffs if d.client_order_id}
        entries = [cid for cid, o in self.orders.working.items() if o.purpose is OrderPurpose.ENTRY]
        if not [cid for cid in entries if cid not in listed] and not hasattr(self.broker, "cancel_entries"):
            return  # (a real venue's sweep also finds entries the journal never knew)
        aside = [self.orders.untrack(cid) for cid in entries if cid in listed]
        try:
            await self._cancel_entries_with_retry("halt")  # journals each end; reports what stays open
        finally:
            for o in aside:
                self.orders.track(o)  # its timeout and staleness were never dropped (untrack keeps them)
        ended = [self.orders.orders[cid] for cid in entries if cid not in listed and cid not in self.orders.working]
        if ended:
            what = ", ".join(f"{o.client_order_id} {o.status.value}" for o in ended)
            self.alerts.publish("warning", "halt", f"came up HALTED: the working entries from before the restart "
                                f"ended at the venue ({what}); stops kept", self.clock.now())

    def _answer_refusal(self, d, action: str) -> str | None:
        """An adopt that would lose what a bookable fill-while-down carries, refused in one line."""
        if action != "adopt" or d.kind not in ("quantity_mismatch", "balance_mismatch"):
            return None
        waiting = self._unconfirmed_restored(None if d.kind == "balance_mismatch" else d.symbol)
        if waiting:
            # The broker books what such an order filled while the engine was down once the venue
            # confirms it: adopted before that, those trades would be booked on top.
            return (f"{waiting} from before the restart is not confirmed by the venue yet (what it filled meanwhile "
                    "is booked when it is): adopt once it is, in a moment")
        first = next((x for x in self.reconciliation if bookable(x)
                      and (d.kind == "balance_mismatch" or x.symbol == d.symbol)), None)
        if first is None:
            return None
        if d.kind == "quantity_mismatch":
            return (f"{d.symbol}: book {first.client_order_id} first (filled while the engine was down): adopted "
                    f"now, that trade's P&L and fees would be lost; if the book is refused, mark it closed, then adopt")
        return (f"book {first.client_order_id} first (filled while the engine was down): its fill moves the cash, "
                f"and adopted now the cash would count it twice; if the book is refused, mark it closed, then adopt")

    def _unconfirmed_restored(self, symbol: str | None) -> str:
        """A restored working order (of `symbol`, or any) the venue broker has not confirmed yet."""
        pending = getattr(self.broker, "restored_pending", None) or {}
        for cid in pending:
            o = self.orders.orders.get(cid)
            if symbol is None or (o is not None and o.symbol == symbol):
                return cid
        return ""

    def _venue_dust(self, symbol: str, qty: Decimal) -> bool:
        """Below anything the venue would take an order for (brokers/minimums.py): nothing to manage."""
        is_dust = getattr(self.broker, "is_dust", None)
        q = self.quotes.get(symbol)
        return is_dust is not None and q is not None and is_dust(symbol, abs(qty), q.bid)

    def reconcile_hold(self) -> str:
        """Why reconciliation keeps the engine reduce-only ("" when every difference is answered)."""
        n = sum(1 for d in self.reconciliation if not d.resolved)
        if not n:
            return ""
        what = "difference between journal and venue is" if n == 1 else "differences between journal and venue are"
        return f"{n} reconciliation {what} unanswered (the console's dialog, or `tradeconsole reconcile`)"

    async def resolve_difference(self, index: int, action: str) -> str | None:
        """The operator's answer to one reconciliation difference; journaled. None = done.

        One answer per difference at a time: the console's dialog and `tradeconsole reconcile`
        (the control socket) can both answer, and an answer awaits the venue before it marks
        the difference resolved; two at once could both act (a position adopted twice)."""
        if not 0 <= index < len(self.reconciliation):
            return f"no difference #{index}"
        d = self.reconciliation[index]
        if d.resolved:
            return f"already resolved ({d.resolved})"
        if action not in d.actions:
            return f"{action} is not possible here; choose {', '.join(d.actions)}"
        refusal = self._answer_refusal(d, action)
        if refusal:
            return refusal
        if index in self._answering:
            return "another answer to it is being carried out; list the differences again in a moment"
        self._answering.add(index)
        try:
            return await self._resolve(d, action)
        finally:
            self._answering.discard(index)

    async def _resolve(self, d, action: str) -> str | None:
        adopted = None  # (known stop, old stop id): the venue's holding, taken as ours, needs a stop at once
        if d.kind == "unknown_at_venue" and action == "cancel":
            await self.broker.cancel(d.client_order_id)
            self.broker.drain_events()
        elif d.kind == "unknown_at_venue" and action == "adopt":
            vo = await self.broker.fetch_order(d.client_order_id)
            if vo is not None and not vo.status.is_terminal:
                problem = self._arm_adopted_entry(vo)
                if problem:
                    return problem
                self.orders.track_restored(vo, self.clock.now())
                self.orders.record(vo)  # journaled, protective stop included: a later restart knows it
        elif d.kind == "quantity_mismatch" and action == "adopt":
            venue = (await self.broker.positions()).get(d.symbol, ZERO)
            if venue != 0 and self._mark(d.symbol, venue > 0) is None:
                # adopt_quantity would book it at price 0, and no stop can be placed from nothing.
                return f"no price for {d.symbol} yet: adopt it once its quotes arrive (its stop is placed from them)"
            # Read before adopting: adopt_quantity replaces the position the journal knew.
            adopted = (self._known_stop(d.symbol, venue), self._working_stop(d.symbol))
            self.portfolio.adopt_quantity(d.symbol, venue, self.quotes.get(d.symbol))
        elif d.kind == "balance_mismatch" and action == "adopt":
            self.portfolio.cash = (await self.broker.balances())[self.broker.cash_currency]
        elif d.kind == "quantity_mismatch" and action == "mark_closed":
            venue = (await self.broker.positions()).get(d.symbol, ZERO)
            if venue != 0 and not self._venue_dust(d.symbol, venue):
                # Flat in the books while the venue holds it: traded on by nothing, with no stop.
                return (f"{d.symbol}: the venue holds {venue}; marked closed here it would stay there unmanaged, "
                        "with no stop: adopt it (its stop is placed), or close it at the venue, then mark it closed")
            self.portfolio.adopt_quantity(d.symbol, ZERO, self.quotes.get(d.symbol))
            await self.orders.cancel_orphans(d.symbol, "position marked closed after restart")
            await self.orders.process_events()
        elif d.kind == "closed_while_down" and action == "book":
            problem = await self._book_missed_fill(d.client_order_id)
            if problem:
                return problem
        elif action == "mark_closed" and d.client_order_id in self.orders.working:
            close_restored = getattr(self.broker, "close_restored", None)
            if close_restored is not None:
                close_restored(d.client_order_id)  # the broker stops looking it up too
            o = self.orders.untrack(d.client_order_id)
            o.status = OrderStatus.CANCELLED
            o.reason = "marked closed by operator after restart"
            self.orders.record(o)
        d.resolved = action
        row = {"difference": d.text, "action": action, "kind": d.kind, "symbol": d.symbol}
        plan = self._adopted_stop_plan(d.symbol, adopted[0]) if adopted else None
        if plan is not None:
            row["stop"], row["stop_basis"] = plan[0], plan[1]
        self.journal.append("reconcile", self.clock.now(), d.client_order_id, row)
        self._apply_breaker_state()  # the last answer lifts reduce-only, unless a breaker holds it
        if plan is not None:
            await self._protect_adopted(d.symbol, adopted[1], *plan)  # its send commits the reconcile row first
        await self.protect_bare_positions()  # e.g. an exit marked closed had taken its position's stop off
        if all(x.resolved for x in self.reconciliation):
            self.alerts.publish("info", "reconciliation",
                                f"every reconciliation difference answered: trading {self.state.value}",
                                self.clock.now())
        await self.journal.flush()
        return None

    async def _book_missed_fill(self, cid: str) -> str | None:
        """What the venue filled of `cid` while the engine was down, booked as one fill at the
        venue's average for that part: journaled, in the position, cash and P&L, and with the
        entry's protective stop placed, as if the engine had heard it. Marked closed instead,
        the fill was never journaled and an adopted position was booked at the mid of the day."""
        o = self.orders.orders.get(cid)
        vo = await self.broker.fetch_order(cid)
        if o is None or vo is None:
            return f"{cid}: the venue no longer reports it; mark it closed"
        qty = vo.filled_qty - o.filled_qty
        if qty <= 0 or vo.avg_fill_price <= 0:
            return f"{cid}: the venue reports nothing more filled than the journal has; mark it closed"
        signed = qty if o.side is Side.BUY else -qty
        held = self.orders.position_qty(o.symbol)
        venue = (await self.broker.positions()).get(o.symbol, ZERO)
        # Booked on top of a position already adopted from the venue, it would count twice.
        if (venue - held) * signed <= 0 or abs(venue - held) < qty:
            return (f"{o.symbol}: the books hold {held} and the venue {venue}, so {signed} more would not match "
                    f"(was the position adopted already?); mark {cid} closed instead")
        price = (vo.avg_fill_price * vo.filled_qty - o.avg_fill_price * o.filled_qty) / qty
        fee = max(vo.fees - o.fees, ZERO)
        now = self.clock.now()
        await self.orders.process_events([
            Fill(cid, o.symbol, o.side, qty, price, fee, now, "taker", fill_id=f"{cid}-while-down"),
            OrderUpdate(cid, vo.status, now, "filled while the engine was down", vo.venue_order_id)])
        # The holding this fill explains is answered by it: adopted as well, it would be re-booked
        # at today's mid.
        # So is the cash, once it matches the venue's again: adopted as well, it changed nothing.
        settled = {"quantity_mismatch"} if self.orders.position_qty(o.symbol) == venue else set()
        cash = (await self.broker.balances()).get(self.broker.cash_currency)
        if cash is not None and abs(cash - self.portfolio.cash) <= CASH_TOLERANCE:
            settled.add("balance_mismatch")
        for other in self.reconciliation:
            if other.kind in settled and not other.resolved and (other.kind == "balance_mismatch"
                                                                  or other.symbol == o.symbol):
                other.resolved = "book"
                self.journal.append("reconcile", now, None, {
                    "difference": other.text, "action": "book", "kind": other.kind, "symbol": other.symbol,
                    "by": cid})
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
