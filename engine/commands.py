"""Operator commands: approve, reject, halt, close-all, re-arm.

A mixin of `Engine`, kept apart because these are the paths a trader's keys (and later the CLI
and the control socket) drive, and each must keep working when everything else is going wrong.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from .models import Order, OrderPurpose, OrderStatus
from .risk.breakers import BreakerState
from .risk.gate import TradingState

log = logging.getLogger("tradeconsole.engine")

CANCEL_ATTEMPTS = 5
CANCEL_BACKOFF_START = 0.2  # seconds; doubles per attempt, so a stuck venue costs ~3 s at most
# Sweeps a halt makes after the quiet windows a venue asks for (each window at most 600 s:
# engine/brokers/retry.py), and how long after a window's stated end the first goes.
QUIET_SWEEPS = 3
QUIET_MARGIN = 0.5


class OperatorCommands:
    # -- approvals ----------------------------------------------------------------------------
    async def approve(self, client_order_id: str) -> bool:
        item = self.approvals.take(client_order_id)
        if item is None:
            return False
        order = item.order
        # Minutes may have passed: the gate judges the order again, on today's numbers, as
        # coming from whoever asked for it (a manual order is the operator's).
        source = "operator" if item.signal is not None and item.signal.strategy == "operator" else "strategy"
        req = self._request(order, source)
        decision = self.gate.evaluate(req, self._context(req))
        self._journal_decision(order, req, decision, item.sizing)
        self.journal.append("approval", self.clock.now(), client_order_id,
                            {"result": "approved" if decision.approved else "refused_on_approval",
                             "failed": decision.failed})
        if not decision.approved:
            order.status = OrderStatus.REJECTED
            order.reason = f"risk gate on approval: {decision.failed}"
            self.orders.record(order)
            self.alerts.publish("warning", "gate_refused",
                                f"{order.symbol} approved but refused by the gate now: {decision.failed}",
                                self.clock.now(), client_order_id=client_order_id)
            await self.journal.flush()
            return False
        await self._send_entry(order, decision)
        return True

    async def reject(self, client_order_id: str, reason: str = "operator") -> bool:
        item = self.approvals.take(client_order_id)
        if item is None:
            return False
        self._finish_pending(item.order, OrderStatus.REJECTED, f"rejected: {reason}", "rejected")
        self.counters["rejected_by_operator"] += 1
        await self.journal.flush()
        return True

    def _finish_pending(self, order: Order, status: OrderStatus, reason: str, result: str) -> None:
        order.status = status
        order.reason = reason
        self.orders.record(order)
        self.journal.append("approval", self.clock.now(), order.client_order_id, {"result": result, "reason": reason})

    def _expire_approvals(self, now: datetime) -> None:
        for item in self.approvals.expired(now):
            self.counters["expired"] += 1
            self._finish_pending(item.order, OrderStatus.EXPIRED, "approval timed out", "expired")
            self.alerts.publish("info", "approval_expired",
                                f"{item.order.symbol} order auto-rejected: approval timed out", now,
                                client_order_id=item.order.client_order_id)

    def close_pending_approvals(self, reason: str) -> int:
        """Close every order still waiting for approval (cancelled, journaled with `reason`);
        returns how many."""
        items = self.approvals.take_all()
        for item in items:
            self.counters["approvals_closed"] += 1
            self._finish_pending(item.order, OrderStatus.CANCELLED, reason, "closed_unanswered")
        return len(items)

    async def finish_run(self, why: str) -> int:
        """The runner's run is over (the feed ended, --duration reached) while the session stays
        open (the console left up for a look, headless printing its summary): nothing handles
        quotes or the venue's events any more, so nothing new may be sent (manual orders are
        refused), and what waits for approval is closed. Working orders and stops stay as they
        are: quitting asks what to do with them. Returns how many approvals it closed."""
        if self.run_finished:
            return 0
        self.run_finished = why
        closed = self.close_pending_approvals(f"{why} before an answer")
        self.alerts.publish("warning", "run_ended",
                            f"the run ended ({why}): no quotes are handled and nothing new is sent"
                            + (f"; {closed} order(s) waiting for approval cancelled" if closed else "")
                            + "; working orders and stops stay as they are", self.clock.now())
        await self.journal.flush()  # journaled before the screen shows them gone
        return closed

    # -- halt, close-all, re-arm --------------------------------------------------------------
    def halt(self, source: str, reason: str, *, alert: bool = True) -> asyncio.Task:
        """Latch now (before this returns); the returned task cancels and journals.

        The halt row is appended before returning, so the very next flush carries it; a second
        halt keeps the first reason (the journal still records every one). `alert=False` is for
        a caller that raises its own critical alert about the cause (a run that died)."""
        first = self.state is not TradingState.HALTED
        self.state = TradingState.HALTED
        self.trips += 1
        if first or not self.halt_reason:
            self.halt_reason = reason
        self.journal.append("halt", self.clock.now(), None, {"source": source, "reason": reason, "first": first})
        self._show_latch()
        pending = self.approvals.take_all()
        return asyncio.get_running_loop().create_task(self._after_halt(source, reason, pending, first and alert))

    async def _after_halt(self, source: str, reason: str, pending: list, first: bool) -> None:
        now = self.clock.now()
        unrecorded = ""
        try:
            await self.journal.flush()  # the latch is durable before anything else happens...
        except Exception as exc:  # noqa: BLE001 - told below; the halt goes on
            # ...when the journal can take it. Locked or full, it must not stop the halt itself:
            # waiting on it left the working entries at the venue, and one filled after F12.
            # The rows stay buffered for the next commit that succeeds.
            unrecorded = f"; the journal could not record it yet ({type(exc).__name__}: {exc})"
            log.error("halt by %s: the journal could not commit the latch (%s); cancelling all the same", source, exc)
        for item in pending:
            self._finish_pending(item.order, OrderStatus.REJECTED, "halted", "rejected_by_halt")
        if first or unrecorded:
            self.alerts.publish("critical", "halt", f"HALTED by {source}: {reason}{unrecorded}", now)
        log.warning("halted by %s: %s", source, reason)
        await self._cancel_entries_with_retry("halt")
        await self.journal.flush()  # still failing: raised to the caller (the console's error dialog)

    async def _cancel_entries_with_retry(self, why: str) -> None:
        """Cancel every working entry; a venue that refuses gets bounded retries with backoff,
        and what is still open stays listed (snapshot counters, alert) instead of hanging. A venue
        that asked for quiet (a rate-limit ban) refuses every try unsent: asked again when its
        window ends, as it said, rather than given up inside it while the entries work on."""
        failed = await self._cancel_sweeps(why)
        if not failed:
            return
        quiet = self._quiet_left()
        self.alerts.publish("critical", "cancel_failed",
                            f"{why}: still open after {CANCEL_ATTEMPTS} attempts: {', '.join(failed)}"
                            + (f"; the venue asked for {quiet:.0f} s of quiet: asked again when it ends" if quiet else ""),
                            self.clock.now())
        for _ in range(QUIET_SWEEPS):
            if not quiet or not await self._sleep_unless_closed(quiet + QUIET_MARGIN):
                return
            failed = await self._cancel_sweeps(why)
            if not failed:
                self.alerts.publish("warning", "halt" if why == "halt" else "close_all",
                                    f"{why}: the entries left open are cancelled now that the venue's quiet "
                                    "window has ended", self.clock.now())
                return
            quiet = self._quiet_left()
        self.alerts.publish("critical", "cancel_failed",
                            f"{why}: still open after the venue's quiet window: {', '.join(failed)}", self.clock.now())

    async def _cancel_sweeps(self, why: str) -> list[str]:
        delay = CANCEL_BACKOFF_START
        failed: list[str] = []
        venue_cancel = getattr(self.broker, "cancel_entries", None)
        for attempt in range(CANCEL_ATTEMPTS):
            if venue_cancel is not None:
                failed = await self._cancel_entries_at_venue(venue_cancel, why)
            else:
                failed = await self.orders.cancel_where(lambda o: o.purpose is OrderPurpose.ENTRY, why)
                await self.orders.process_events()
            self.cancels_outstanding = failed
            if not failed:
                return failed
            if attempt + 1 < CANCEL_ATTEMPTS:
                await asyncio.sleep(delay)
                delay *= 2
        return failed

    def _quiet_left(self) -> float:
        """Seconds left of a quiet window the venue asked for (0: none, or a venue with none)."""
        quiet = getattr(self.broker, "rate_limited_for", None)
        return max(0.0, quiet()) if quiet is not None else 0.0

    async def _sleep_unless_closed(self, seconds: float) -> bool:
        """Sleep up to `seconds` in short steps; False as soon as the engine closes meanwhile."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            if getattr(self, "_closed", False):
                return False
            await asyncio.sleep(min(1.0, end - loop.time()))
        return not getattr(self, "_closed", False)

    async def _cancel_entries_at_venue(self, venue_cancel, why: str) -> list[str]:
        """A real venue cancels every entry in one concurrent sweep (engine/brokers/*:
        `cancel_entries`): never its cancel-all endpoint, which would take the stops too, and it
        also finds entries placed before a restart. An entry the engine still holds working after
        the sweep (not yet sent, or one the sweep missed) is cancelled on its own; whatever is
        left is reported as still open."""
        failed: set[str] = set()
        try:
            failed.update(await venue_cancel())
        except Exception as exc:  # noqa: BLE001 - a halt reports what is open, it does not crash
            log.warning("cancel_entries failed: %s", exc)
        await self.orders.process_events()
        for cid in [c for c, o in self.orders.working.items() if o.purpose is OrderPurpose.ENTRY]:
            if not await self.orders.cancel(cid, why):
                failed.add(cid)
        await self.orders.process_events()
        still = {cid for cid, o in self.orders.working.items() if o.purpose is OrderPurpose.ENTRY}
        return sorted(failed | still)

    async def close_all(self, source: str, *, stop_entries: bool = False) -> None:
        """Flatten every position; works while halted; idempotent.

        `stop_entries` (close all, then quit): the strategy opens nothing more in this session,
        or its next entry would keep the operator from ever leaving flat. Not a pause: it is
        not restored at the next start, which trades as configured."""
        now = self.clock.now()
        if stop_entries:
            self.entries_stopped = True
        self.journal.append("close_all", now, None, {"source": source, "positions": len(self.portfolio.positions),
                                                     "entries_stopped": self.entries_stopped})
        await self._cancel_entries_with_retry("close-all")
        for item in self.approvals.take_all():
            self._finish_pending(item.order, OrderStatus.REJECTED, "close-all", "rejected_by_close_all")
        await self.orders.process_events()
        failures: list[Exception] = []
        for symbol in list(self.portfolio.positions):
            if self._exits_closed:
                break  # the engine is closing: the rest keep their stops (engine.close)
            if self.orders.has_working(symbol, OrderPurpose.EXIT):
                continue
            try:
                await self._exit_position(symbol, "operator", "close-all")
            except Exception as exc:  # noqa: BLE001 - the other positions are closed all the same
                # A journal that cannot commit fails before the stop comes off (the exit's intent
                # goes first): the position keeps its stop, and the next symbol is tried.
                failures.append(exc)
                kept = self.orders.stop_order(symbol) is not None
                self.alerts.publish("critical", "exit_not_sent",
                                    f"{symbol}: close-all: exit not sent ({type(exc).__name__}: {exc}); "
                                    + ("its protective stop stays" if kept else "it has NO protective stop")
                                    + ". Close it again", self.clock.now())
        self.alerts.publish("warning", "close_all", f"close-all by {source}", now)
        if failures:
            raise failures[0]
        await self.journal.flush()

    async def resume_entries(self, source: str, reason: str) -> bool:
        """Lift close_all's `stop_entries` (the quit it was for was abandoned: the operator stays,
        and the strategy trades as the header says). Journaled as an `operator` row; False when
        entries were not stopped."""
        if not self.entries_stopped:
            return False
        self.entries_stopped = False
        self.journal.append("operator", self.clock.now(), None, {
            "action": "resume_entries", "result": "done", "refusal": None, "source": source, "reason": reason})
        await self.journal.flush()
        return True

    def rearm_refusal(self) -> str | None:
        """Why a re-arm would do nothing now (asked before its dialog opens), or None."""
        if self.state is TradingState.HALTED:
            return None
        tripped = [b for b in self.breakers if b.state is BreakerState.TRIPPED]
        if any(b.reset_on == "rearm" for b in tripped):
            return None
        # It would still acknowledge the losing streak and re-base the drawdown pause: a limit
        # quietly loosened, with nothing it can lift.
        held = self.reconcile_hold()  # lifted by answering the differences, never by a re-arm
        if tripped:
            names = ", ".join(b.name for b in tripped)
            return (f"nothing to re-arm: {names} lift on their own (at the venue's day or week boundary, "
                    "or once quotes are fresh again)" + (f"; reduce-only also while {held}" if held else ""))
        if held:
            return f"nothing to re-arm: reduce-only while {held}; a re-arm does not lift that"
        return "nothing to re-arm: trading is active and no breaker is tripped"

    async def rearm(self, reason: str, *, trips_seen: int | None = None) -> str | None:
        """Re-arm with a reason. `trips_seen` is `trips` when the operator was asked: a halt or a
        breaker trip that came after it (while the re-arm dialog was open) stands."""
        reason = reason.strip()
        if not reason:
            return "re-arm needs a reason"
        if trips_seen is not None and trips_seen != self.trips:
            what = f"a halt ({self.halt_reason})" if self.state is TradingState.HALTED else "a breaker trip"
            return f"{what} came after this re-arm was asked for: it stands; re-arm again to lift it"
        refusal = self.rearm_refusal()
        if refusal:
            return refusal
        # Re-arming a tripped losing streak acknowledges it, and a tripped drawdown pause is
        # re-based; only those: a re-arm that lifts a halt or another breaker must not quietly
        # hand back the streak and the pause budget of limits that never tripped. A breaker whose
        # number is still past its limit after that (drawdown stop, total loss, API failures)
        # would trip again on the next tick, so it holds the re-arm.
        tripped = {b.name for b in self.breakers if b.state is BreakerState.TRIPPED}
        acknowledged = [name for name in ("consecutive_losses", "drawdown_pause") if name in tripped]
        self.portfolio.acknowledge_losses(streak="consecutive_losses" in tripped, pause="drawdown_pause" in tripped)
        for b in self.breakers:
            b.value, b.limit = b.measure()
        holding = [b.name for b in self.breakers if b.state is BreakerState.TRIPPED and b.reset_on == "rearm"
                   and b.unit != "latch" and b.ratio >= 1]
        if holding:
            return f"cannot re-arm: breaker still over its limit: {', '.join(holding)}"
        for b in self.breakers:
            if b.reset_on == "rearm" and b.state is BreakerState.TRIPPED:
                b.reset()
        self.state = TradingState.ACTIVE
        self.halt_reason = ""
        self._apply_breaker_state()
        # The pause's new base goes with it: a restart before the next checkpoint re-bases again.
        self.journal.append("rearm", self.clock.now(), None, {
            "reason": reason, "pause_peak": self.portfolio.pause_peak, "acknowledged": acknowledged})
        held = self.reconcile_hold()
        self.alerts.publish("warning", "rearm", f"re-armed: {reason}" + (f"; still reduce-only while {held}" if held else ""),
                            self.clock.now())
        await self.journal.flush()
        return None

    def entries_working(self) -> list[str]:
        """Entry orders still working at the venue: the ones the engine tracks, and those the last
        cancel sweep could not end (a venue's own list included) unless since heard ended. What
        close-all and its callers must name rather than call the account flat."""
        tracked = {cid for cid, o in self.orders.working.items() if o.purpose is OrderPurpose.ENTRY}
        swept = set()
        for cid in self.cancels_outstanding:
            known = self.orders.orders.get(cid)
            if known is None or not known.status.is_terminal:
                swept.add(cid)
        return sorted(tracked | swept)

    def exposure(self) -> tuple[int, int]:
        working = sum(1 for o in self.orders.working.values() if o.purpose is OrderPurpose.ENTRY)
        return working + len(self.approvals), len(self.portfolio.positions)

