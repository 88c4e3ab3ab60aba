"""Closing a position: the strategy's exits, close-all's and the operator's, one at a time.

A mixin of `Engine` (engine/engine.py). An exit takes the position's stop off first (both working,
they could both fill and flip the position), so its intent is committed before the stop comes off:
a journal that cannot commit fails with the stop still working. One exit per position at a time:
a per-symbol guard is held from the first look at the position to the exit sent (or the stop
kept), across every await, and closing waits (bounded) for a step under way.

The strategy's exits inside one market-data batch share one commit: each is decided and staged
(working, its order row journaled; its guard taken) as its signal comes, then one commit carries
every decision and order row before any stop comes off, and each exit goes to the venue right
after its own stop came off, with nothing left between them that could keep it back
(`_send_batched_exits`). Committed one by one, they cost more than half of the fills rate
(bench/fills.py). A batch cut short (an error, a cancellation, a journal that fails) unstages what
it did not send: those stops never came off.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from decimal import Decimal

from .models import Order, OrderPurpose, OrderType, Side, Signal
from .money import ZERO
from .risk.gate import Decision
from .signal_flow import BPS

log = logging.getLogger("tradeconsole.engine")

# Times an exit is sized again when the position moves as its stop comes off (a stop that fired).
EXIT_ATTEMPTS = 3


@dataclass(slots=True)
class DecidedExit:
    """A strategy exit decided inside a batch, its guard held until it is sent or given up."""

    symbol: str
    order: Order
    held: Decimal
    reason: str
    guard: asyncio.Lock


class PositionExits:
    def init_exits(self) -> None:
        self._exit_guards: dict[str, asyncio.Lock] = {}  # per symbol: an exit step under way
        self._exits_closed = False  # the engine is closing: no exit step starts
        self._batched_exits: list[DecidedExit] = []  # decided in this batch, guards held

    async def _strategy_exit(self, sig: Signal, pos_qty: Decimal) -> None:
        if self.opened_by_operator(sig.symbol):
            return  # the operator's position: its stop, the operator or close-all close it
        if self.orders.has_working(sig.symbol, OrderPurpose.EXIT) or self._exit_guard(sig.symbol).locked():
            return  # being closed already (close-all, a row close): asked again on the next quote
        if self.orders.batching:
            await self._decide_batched_exit(sig.symbol, sig.reason)
            return
        await self._exit_position(sig.symbol, "strategy", sig.reason)

    async def _decide_batched_exit(self, symbol: str, reason: str) -> None:
        """Decide a strategy exit inside a batch and stage it (working, its order row journaled),
        guard held, for the batch's end: `_send_batched_exits`."""
        guard = self._exit_guard(symbol)
        await guard.acquire()  # free: checked by the caller, nothing awaited since
        staged = None
        try:
            held = ZERO if self._exits_closed else await self._before_exit(symbol)
            if held != 0:
                order, decision = self._decide_exit(symbol, held, "strategy", reason)
                if decision.approved:
                    self.orders.stage(order)
                    staged = DecidedExit(symbol, order, held, reason, guard)
        finally:
            if staged is None:
                guard.release()
        if staged is not None:
            self._batched_exits.append(staged)

    def _drop_batched_exits(self, why: str = "not sent: the batch ended first") -> None:
        """Staged exits that will not leave (an error, a cancellation, a journal that failed):
        their stops were never taken off; they stop counting as working, or no closer would
        ever close the position again."""
        exits, self._batched_exits = self._batched_exits, []
        for x in exits:
            if x.order.client_order_id in self.orders.working:
                self.orders.unstage(x.order, why)
            x.guard.release()

    async def _send_batched_exits(self) -> None:
        """The batch's strategy exits: one commit carries every decision and order row before any
        stop comes off; then, one symbol at a time, its stop off and its exit straight to the
        venue (committed already: nothing between them can keep it back), guard held throughout."""
        if not self._batched_exits:
            return
        try:
            await self.journal.flush()
        except BaseException:
            self._drop_batched_exits("not sent: the journal could not commit it")  # every stop stays
            raise
        again = []
        try:
            while self._batched_exits:
                x = self._batched_exits.pop(0)
                try:
                    sent = await self._stop_off_then_submit(x)
                finally:
                    x.guard.release()
                if sent is None:
                    again.append(x)
        finally:
            self._drop_batched_exits()  # cut short: the rest never took their stops off
            self.broker.persist_soon()  # the paper venue's books, once for all of them
        for x in again:  # the position moved as its stop came off: the full path, sized again
            if self._exits_closed:
                await self.orders.ensure_stop(x.symbol)  # its stop is off: back on before the close
                continue
            await self._exit_position(x.symbol, "strategy", x.reason)

    async def _stop_off_then_submit(self, x: DecidedExit) -> bool | None:
        """A staged exit, committed: its stop off, then the exit to the venue. None when the
        position moved meanwhile (the exit not sent: sized again by the caller)."""
        if self._exits_closed:
            self.orders.unstage(x.order, "not sent: the engine is closing")  # its stop stays
            return False
        off = await self._stop_off(x.symbol, x.order, x.held, "strategy")
        if off is not True:
            return off
        try:
            await self.orders.submit_staged(x.order, persist=False)
        except Exception:
            # The stop is off and the exit did not leave: a stop goes back on at once.
            self.orders.unstage(x.order, "not sent: the venue call failed")
            await self.orders.ensure_stop(x.symbol)
            raise
        self.counters["orders"] += 1
        return True

    async def _stop_off(self, symbol: str, order: Order, held: Decimal, source: str) -> bool | None:
        """The position's stop off before its exit goes (both working, they could both fill and
        flip it). True: off (or none), the position as the exit was sized; False: the venue kept
        the stop (the exit held, said); None: the position moved meanwhile (a stop that fired, an
        entry that filled): sent as sized the exit would flip it. Unless True, the exit is ended
        as not sent."""
        stop = self.orders.stop_order(symbol)
        if stop is not None:
            try:
                kept = not await self.orders.cancel(stop.client_order_id, "exit replaces stop")
                if not kept:
                    await self.orders.process_events()
            except BaseException as exc:
                # The venue call failed (or this task was cancelled) with the stop's fate unknown:
                # the exit does not go; a stop the venue no longer has is replaced, when this
                # task may still ask.
                self.orders.unstage(order, "not sent: the stop's cancel failed")
                if isinstance(exc, Exception):
                    with contextlib.suppress(Exception):
                        await self.orders.ensure_stop(symbol)
                raise
            if kept:
                self.orders.unstage(order, f"not sent: the venue did not cancel stop {stop.client_order_id}")
                self._say_exit_held(order, stop, source)
                return False
        if self.orders.position_qty(symbol) != held:
            self.orders.unstage(order, "not sent: the position changed before the exit left")
            return None
        return True

    def _exit_guard(self, symbol: str) -> asyncio.Lock:
        """One exit per position at a time: held from the first look at the position to the exit
        sent (or the stop back), across every await, so two closers (close-all from the CLI and
        the `c` key, close-all and a row close) never both send a full-size exit."""
        guards = self._exit_guards
        guard = guards.get(symbol)
        if guard is None:
            guard = guards[symbol] = asyncio.Lock()
        return guard

    def exits_under_way(self) -> list[str]:
        """Symbols with an exit step under way (between the first look and the exit sent)."""
        return [s for s, g in self._exit_guards.items() if g.locked()]

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
            if self._exits_closed:
                # The engine is closing: a step started now could be cut off with the stop off.
                log.warning("%s: exit not started: the engine is closing; its stop stays", symbol)
                return False
            if self.orders.has_working(symbol, OrderPurpose.EXIT):
                return True  # another closer's exit is working: one exit per position
            return await self._exit_guarded(symbol, source, reason)

    async def _exit_guarded(self, symbol: str, source: str, reason: str) -> bool:
        held = await self._before_exit(symbol)
        for _ in range(EXIT_ATTEMPTS):
            if held == 0:
                return True
            order, decision = self._decide_exit(symbol, held, source, reason)
            if not decision.approved:
                return False
            # The exit's intent (its decision row) is committed before anything else: a journal
            # that cannot commit (locked, full) fails here, raised to the caller, with the stop
            # still in place and no exit counted as working.
            await self.journal.flush()
            sent = await self._stop_off_then_send(symbol, order, decision, held, source)
            if sent is not None:
                return sent
            held = self.orders.position_qty(symbol)
        await self.orders.ensure_stop(symbol)
        self.alerts.publish("critical", "exit_not_sent",
                            f"{symbol}: exit not sent: the position kept changing as it was closed; it holds "
                            f"{self.orders.position_qty(symbol)} with its protective stop. Close it again",
                            self.clock.now())
        return False

    async def _before_exit(self, symbol: str) -> Decimal:
        """What there is to close, read after the venue's news (a stop that fired, an entry that
        filled), with the symbol's entries cancelled first: left working, one filled after the
        exit and the position it opened had no stop (or a limit's market fallback bought it back)."""
        failed = await self.orders.cancel_entries_in(symbol, "position closed")
        if failed:
            self.alerts.publish("warning", "entry_not_cancelled",
                                f"{symbol}: closing, but the venue did not cancel entry {', '.join(failed)}; "
                                "what it fills after the exit gets a protective stop", self.clock.now())
        await self.orders.process_events()
        return self.orders.position_qty(symbol)

    def _decide_exit(self, symbol: str, held: Decimal, source: str, reason: str) -> tuple[Order, Decision]:
        order = self._exit_order(symbol, held, reason)
        req = self._request(order, source)
        decision = self.gate.evaluate(req, self._context(req))
        self._journal_decision(order, req, decision, "exit: whole position")
        if not decision.approved:
            self.orders.record(order)
        return order, decision

    async def _stop_off_then_send(self, symbol: str, order: Order, decision: Decision, held: Decimal,
                                  source: str) -> bool | None:
        """Its decision committed: the stop off, then the exit committed and sent at once, even by
        a journal failing since (the stop is off: bare is the worse risk). None when the position
        moved meanwhile."""
        off = await self._stop_off(symbol, order, held, source)
        if off is not True:
            return off
        ok = await self.orders.send_committed(order, source, decision)
        if ok:
            self.counters["orders"] += 1
        return ok

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

    def _say_exit_held(self, order: Order, stop: Order, source: str) -> None:
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
