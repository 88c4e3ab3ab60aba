"""A restart: the halt latch as the journal left it, the books rebuilt from the journal and
reconciled with the venue, and the operator's answer to each difference found.

A mixin of `Engine` (engine/engine.py); the rebuilding and comparing themselves are
engine/recovery.py.
"""
from __future__ import annotations

import logging

from datetime import datetime
from decimal import Decimal

from .journal import JournalRow
from .brokers.base import OrderUpdate
from .models import Fill, Order, OrderPurpose, OrderStatus, Side
from .money import ZERO
from .recovery import rebuild, reconcile
from .risk.gate import TradingState

log = logging.getLogger("tradeconsole.engine")

HUNDRED = Decimal(100)
STOP_STEP = Decimal("0.00000001")  # the venue rounds to its own tick; finer than any of them


class RestartWiring:
    async def _recover(self) -> None:
        cp = await self.journal.last(["checkpoint"])  # read once: both start from it
        await self._restore_pinned_alerts(cp)
        rep = await rebuild(self, cp)
        self._apply_breaker_state()  # a breaker that held at the crash still holds
        await self.api_failures.restore()  # a restart must not forget the failures
        await self._carry_out_latched_halt()
        diffs = await reconcile(self, rep)
        self.recovery = rep
        self.reconciliation = diffs
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

    async def _carry_out_latched_halt(self) -> None:
        """A start that comes up HALTED (an offline halt, or a halt the process died right after)
        does what the halt means for the entries it restored: cancelled at the venue, stops kept,
        before any quote reaches the venue. Left working, they filled while the engine was halted.
        Before the venue is compared: what the cancels end is then in the books, not a difference."""
        if self.state is not TradingState.HALTED:
            return
        entries = [cid for cid, o in self.orders.working.items() if o.purpose is OrderPurpose.ENTRY]
        if not entries and not hasattr(self.broker, "cancel_entries"):
            return  # a real venue's sweep also finds entries the journal never knew
        await self._cancel_entries_with_retry("halt")  # journals each cancel; reports what stays open
        left = [cid for cid in entries if cid in self.orders.working]
        gone = [cid for cid in entries if cid not in self.orders.working]
        if entries:
            self.alerts.publish(
                "warning", "halt",
                f"came up HALTED: {len(gone)} working entr{'y' if len(gone) == 1 else 'ies'} from before the "
                f"restart cancelled at the venue (stops kept)"
                + (f"; still listed: {', '.join(left)} (see the reconciliation)" if left else ""),
                self.clock.now())

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
            self.portfolio.adopt_quantity(d.symbol, ZERO, self.quotes.get(d.symbol))
            await self.orders.cancel_orphans(d.symbol, "position marked closed after restart")
            await self.orders.process_events()
        elif d.kind == "closed_while_down" and action == "book":
            problem = await self._book_missed_fill(d.client_order_id)
            if problem:
                return problem
        elif action == "mark_closed" and d.client_order_id in self.orders.working:
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
        if self.orders.position_qty(o.symbol) == venue:
            for other in self.reconciliation:
                if other.kind == "quantity_mismatch" and other.symbol == o.symbol and not other.resolved:
                    other.resolved = "book"
                    self.journal.append("reconcile", now, None, {
                        "difference": other.text, "action": "book", "kind": other.kind, "symbol": o.symbol,
                        "by": cid})
        return None

    async def protect_bare_positions(self) -> None:
        """Every position held with no stop working and no exit on its way gets its stop back,
        with an alert. A kill between an exit's taking the stop off and the exit's reaching the
        venue left the position bare; the answer to that difference (mark the exit closed)
        placed nothing, and only a passive NO STOP cell said so. A holding whose quantity is
        still in question waits for its answer (adopting it places its stop)."""
        in_question = {d.symbol for d in self.reconciliation if d.kind == "quantity_mismatch" and not d.resolved}
        for symbol, pos in list(self.portfolio.positions.items()):
            if (symbol in in_question or pos.quantity == 0 or self.orders.stop_order(symbol) is not None
                    or self.orders.has_working(symbol, OrderPurpose.EXIT)):
                continue
            known = (pos.stop_price, f"its stop {pos.stop_price} from the journal") if pos.stop_price else None
            plan = self._adopted_stop_plan(symbol, known)
            if plan is None:
                continue
            stop, why, past = plan
            pos.stop_price = stop
            await self.orders.ensure_stop(symbol)  # gated and journaled; a refusal raises stop_refused
            placed = self.orders.stop_order(symbol)
            if placed is not None and placed.stop_price == stop:
                self.alerts.publish("critical" if past else "warning", "stop_restored",
                                    f"{symbol}: held {pos.quantity} with no stop working at the venue; protective "
                                    f"stop {stop} placed ({why})", self.clock.now(),
                                    client_order_id=placed.client_order_id)

    # -- the protective stop of what is adopted from the venue ---------------------------------
    def _mark(self, symbol: str, long: bool) -> Decimal | None:
        """The price a stop on this holding would trigger against, or None when there is none."""
        q = self.quotes.get(symbol)
        if q is not None:
            return q.bid if long else q.ask
        pos = self.portfolio.positions.get(symbol)
        return pos.last_price if pos is not None and pos.last_price > 0 else None

    def _default_stop(self, ref: Decimal, long: bool) -> Decimal:
        frac = self.profile.risk.stop_loss_default_pct / HUNDRED
        return (ref * (1 - frac) if long else ref * (1 + frac)).quantize(STOP_STEP)

    def _working_stop(self, symbol: str) -> str | None:
        pos = self.portfolio.positions.get(symbol)
        if pos is not None and pos.stop_order_id in self.orders.working:
            return pos.stop_order_id
        return next((o.client_order_id for o in self.orders.working.values()
                     if o.symbol == symbol and o.purpose is OrderPurpose.STOP), None)

    def _known_stop(self, symbol: str, qty: Decimal) -> tuple[Decimal, str] | None:
        """The stop the journal meant for this holding, if it knows one (read before adopting)."""
        if qty == 0:
            return None
        long = qty > 0
        pos = self.portfolio.positions.get(symbol)
        if pos is not None and pos.stop_price is not None and (pos.quantity > 0) == long:
            return pos.stop_price, f"the position's stop {pos.stop_price} from the journal"
        # A stop or an entry journaled before the restart: the entry's protective stop is the one
        # its fill would have placed, had the engine been up to hear it.
        named = {x.client_order_id for x in self.reconciliation if x.symbol == symbol and x.client_order_id}
        cands = [o for o in self.orders.orders.values() if o.symbol == symbol
                 and (o.client_order_id in self.orders.working or o.client_order_id in named)]
        stops = [(o.stop_price, f"the journal's working stop {o.client_order_id}") for o in cands
                 if o.purpose is OrderPurpose.STOP and o.stop_price is not None
                 and o.client_order_id in self.orders.working and (o.side is Side.SELL) == long]
        stops += [(o.protective_stop, f"the protective stop of entry {o.client_order_id} from the journal")
                  for o in cands if o.purpose is OrderPurpose.ENTRY and o.protective_stop is not None
                  and (o.side is Side.BUY) == long]
        if not stops:
            return None
        # Several: the tightest bounds the loss most.
        return max(stops) if long else min(stops)

    def _adopted_stop_plan(self, symbol: str, known: tuple[Decimal, str] | None) -> tuple[Decimal, str, bool] | None:
        """(stop, why, past): where the adopted position's stop goes. `past`: the market has
        already gone through the stop it should have had (a stop there would fire at once, or
        the venue refuse it), so it is placed the default distance from the market instead."""
        pos = self.portfolio.positions.get(symbol)
        if pos is None:
            return None  # flat, or dust: nothing to protect
        long = pos.quantity > 0
        pct = self.profile.risk.stop_loss_default_pct
        if known is not None:
            stop, why = known
        else:
            stop = self._default_stop(pos.avg_price, long)
            why = f"no stop known: stop_loss_default_pct {pct} % from the average price {pos.avg_price}"
        mark = self._mark(symbol, long)
        if mark is None or not (mark <= stop if long else mark >= stop):
            return stop, why, False
        return (self._default_stop(mark, long),
                f"the market ({mark}) is already past {stop} ({why}): placed {pct} % from the market instead", True)

    async def _protect_adopted(self, symbol: str, old_stop: str | None, stop: Decimal, why: str, past: bool) -> None:
        pos = self.portfolio.positions[symbol]
        pos.stop_price = stop
        if old_stop in self.orders.working:
            pos.stop_order_id = old_stop  # so ensure_stop resizes it: new stop first, then the old goes
        if self.orders.has_working(symbol, OrderPurpose.EXIT):
            self.alerts.publish("critical", "adopted_stop",
                                f"{symbol}: adopted {pos.quantity} from the venue; an exit is working, so no stop "
                                f"was placed (it would be {stop}: {why})", self.clock.now())
            return
        await self.orders.ensure_stop(symbol)  # gated and journaled like every stop
        working = self.orders.stop_order(symbol)
        if working is None or working.stop_price != stop or working.remaining != abs(pos.quantity):
            return  # refused: ensure_stop has raised the critical stop_refused alert
        what = f"{symbol}: adopted {pos.quantity} from the venue; protective stop {stop} placed ({why})"
        if past:
            what += "; close it by hand if it should be out already"
        self.alerts.publish("critical" if past else "warning", "adopted_stop", what, self.clock.now(),
                            client_order_id=working.client_order_id)

    def _arm_adopted_entry(self, vo: Order) -> str | None:
        """An entry found working at the venue carries no protective stop (the venue does not know
        it): give it the default one, so its fill places a stop like any entry's. Only an order
        that adds to the engine's holding: one that reduces it is an exit, and a stop on the far
        side would close the rest at once."""
        if vo.purpose is not OrderPurpose.ENTRY or vo.protective_stop is not None:
            return None
        held = self.orders.position_qty(vo.symbol)
        long = vo.side is Side.BUY
        if held != 0 and (held > 0) != long:
            return None
        ref = vo.limit_price if vo.limit_price is not None else self._mark(vo.symbol, not long)
        if ref is None:
            return f"no price for {vo.symbol} yet: adopt it once its quotes arrive (its stop is set from them)"
        vo.protective_stop = self._default_stop(ref, long)
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
