"""The engine's loop: the feed consumed batch by batch, paced to `--speed`, each batch through
the marks, the venue, the breakers and the strategy, then one journal commit for the orders it
decided.

A mixin of `Engine` (engine/engine.py), kept apart so the engine file holds its wiring, start and
close; it reads the engine's feed, clock, portfolio, orders and breakers.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta
from decimal import Decimal

from .models import Fill, Order, Quote, Signal
from .money import ZERO

ONE_HOUR = timedelta(hours=1)
BREAKER_IDLE_INTERVAL = timedelta(seconds=5)
BREAKER_EQUITY_STEP = Decimal("0.0001")
HALT_ON_FAILURE_WAIT = 5.0  # seconds a dying run waits for its halt's cancels
YIELD_EVERY = 0.002  # seconds of flat-out work between turns of the loop for keys and the screen


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()


class FeedLoop:
    def stop(self) -> None:
        self._stop.set()

    def set_speed(self, speed: float) -> None:
        """Simulated seconds per wall second from now on; 0 = as fast as possible."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = speed
        self._repace = True  # re-anchor pacing at the next batch

    @property
    def closed(self) -> bool:
        return self._closed

    def preroll(self, max_quotes: int | None = None) -> int:
        """Warm the strategy on simulated history before trading, as a live bot loads past bars.

        Only the simulated market has a past to ask for; a replay starts cold. No orders, and the
        paper venue matches none on it (restored ones wait for the first traded quote). With
        `max_quotes` it stops early and a later call carries on; returns quotes consumed. A stop
        (SIGINT, SIGTERM, a halt's shutdown) ends it at the next batch, warm or not."""
        if self.profile.feed.kind != "sim" or self._prerolled:
            return 0
        if self._preroll_start is None:
            self._preroll_start = self.clock.now()
        need = (self.profile.strategy.warmup_bars + 1) * max(self.profile.strategy.timeframes)
        # The venue learns the prices but trades nothing on them: after a restart, orders restored
        # as working would fill an hour of market before the engine hears of it or places a stop.
        remember = getattr(self.broker, "remember_quote", None)
        n = 0
        while (max_quotes is None or n < max_quotes) and not self._stop.is_set():
            batch = self.feed.next_batch()
            if batch is None:
                self._prerolled = True
                break
            for q in batch:
                self.quotes[q.symbol] = q
                self.market.update(q)
                if remember is not None:
                    remember(q)
                self.strategy.on_quote(q, ZERO)
            n += len(batch)
            self.clock.set(batch[0].ts)
            if (batch[0].ts - self._preroll_start).total_seconds() >= need:
                self._prerolled = True
                break
        return n

    async def _preroll_in_steps(self) -> None:
        while not self._prerolled and self.profile.feed.kind == "sim" and not self._stop.is_set():
            # ~10 ms of warm-up at a time: the console's first paint and keys must not wait for it.
            self.preroll(max_quotes=200)
            await asyncio.sleep(0)

    async def run(self, duration: float | None = None) -> None:
        """Consume the feed until `duration` simulated seconds pass, the feed ends, or stop().

        Every runner (console worker, headless) comes through here, so a run that dies is told
        here, once: under the console the loop keeps turning and nothing else would say so."""
        self.run_state, self.run_error = "running", ""
        self.run_end = ""  # why it returned, in words (finish_run says it to the operator)
        try:
            await self._run_feed(duration)
        except Exception as exc:
            from .brokers.keys import redact

            line = (f"{type(exc).__name__}: {redact(exc)}".splitlines() or [""])[0][:300]
            self.run_state, self.run_error = "failed", line
            # Nothing handles the venue's events from here on: an entry still working would fill
            # with no stop placed after it, unseen. So the run's death latches the halt (entries
            # cancelled, stops kept, journaled, shown), and the restart comes up halted.
            halting = None
            with contextlib.suppress(Exception):  # the error itself is what the runner must see
                halting = self.halt("engine", f"engine stopped with an error: {line}", alert=False)
            with contextlib.suppress(Exception):
                self.alerts.publish("critical", "engine_failed", f"ENGINE STOPPED with an error: {line}; halted "
                                    "(working entries cancelled, stops kept); no quotes, signals or orders are "
                                    "handled until restart", self.clock.now())
            if halting is not None:
                halting.add_done_callback(_retrieve)  # its failure, if any, was logged by the halt
                # Bounded: the runner (the console's error dialog, headless's exit) waits for the
                # cancels, not for a venue that does not answer; the task goes on regardless.
                with contextlib.suppress(Exception, asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(halting), HALT_ON_FAILURE_WAIT)
            raise
        finally:
            if self.run_state == "running":
                self.run_state = "stopped"
            if not self.run_end:
                self.run_end = "it was stopped" if self._stop.is_set() else "its duration was reached"

    async def _run_feed(self, duration: float | None) -> None:
        if getattr(self.feed, "is_async", False):
            # A real venue's quotes arrive over the network: its own loop (engine/venue_wiring.py),
            # chosen once here so the simulated path below never awaits a quote.
            from .venue_wiring import run_venue

            return await run_venue(self, duration)
        await self._preroll_in_steps()
        self.trading_started = self.clock.now()
        start_sim: datetime | None = None
        start_wall = time.monotonic()
        end: datetime | None = None
        last_yield = time.monotonic()
        while not self._stop.is_set():
            batch, self._carry = (self._carry, None) if self._carry is not None else (self.feed.next_batch(), None)
            if batch is None:
                self.run_end = "the feed ended"
                break
            ts = batch[0].ts
            if start_sim is None:
                start_sim = ts
                end = None if duration is None else ts + timedelta(seconds=duration)
            if end is not None and ts > end:
                self._carry = batch  # the next run() starts with it: no quote is lost
                break
            if self._repace:
                self._repace = False
                start_sim, start_wall = ts, time.monotonic()
            if self.speed > 0:
                due = start_wall + (ts - start_sim).total_seconds() / self.speed
                delay = due - time.monotonic()
                if delay > 0:
                    # Woken by stop(): at a slow --speed the next batch can be minutes away, and
                    # a halt or Ctrl-C must not wait for it.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)
                    if self._stop.is_set():
                        self._carry = batch  # not traded: the next run() starts with it
                        break
                    last_yield = time.monotonic()
            if time.monotonic() - last_yield > YIELD_EVERY:
                # Flat out, or paced but behind (the loop was busy, so many batches are due at
                # once): either way let keys and the screen in between batches.
                await asyncio.sleep(0)
                last_yield = time.monotonic()
            if ts > self.clock.now():
                self.clock.set(ts)
            await self.on_batch(batch)
        await self.journal.flush()

    async def on_batch(self, batch: list[Quote]) -> None:
        now = self.clock.now()
        period = self.portfolio.roll_period(now)  # a roll a command made between batches counts too
        if period:
            self.new_period(period)
        market = self.market
        broker = self.broker
        portfolio = self.portfolio
        for q in batch:
            self.quotes[q.symbol] = q
            if market.update(q):
                # Not at a lone spike: one bad print would move equity and trip the loss and
                # drawdown breakers (a gap that holds is taken after GAP_CONFIRM_QUOTES).
                portfolio.mark(q)
            broker.on_quote(q)  # the paper venue matches working orders: stops, limits
        self.counters["ticks"] += len(batch)
        orders = self.orders
        orders.batching = True  # orders decided in this batch share one journal commit
        try:
            fills_before = orders.fills
            await orders.process_events()
            await orders.on_time()
            if now >= self._next_forget:
                for cid in orders.forget_finished(now):
                    self._signals.pop(cid, None)
                self._next_forget = now + ONE_HOUR
            if len(self.approvals):
                self._expire_approvals(now)
            # Breakers read equity and time: re-read them after any fill, when equity has moved
            # by a basis point since they last looked, and every few seconds for the timed ones.
            eq = portfolio.equity
            if (orders.fills != fills_before or now >= self._next_breaker_check
                    or abs(eq - self._breaker_equity) > self._breaker_equity * BREAKER_EQUITY_STEP):
                self._evaluate_breakers(now)
                self._breaker_equity = eq
                self._next_breaker_check = now + BREAKER_IDLE_INTERVAL
            # The strategy decides after this batch's fills are in, with the positions they left:
            # asked before them, an exit meant for a position its stop had just closed was read
            # as an entry the other way (and an entry as an exit of the fill it had not seen).
            strategy = self.strategy
            positions = portfolio.positions
            signals: list[Signal] = []
            for q in batch:
                pos = positions.get(q.symbol)
                sig = strategy.on_quote(q, pos.quantity if pos is not None else ZERO)
                if sig is not None:
                    signals.append(sig)
            for sig in signals:
                await self._on_signal(sig)
            await self._send_batched_exits()  # one commit for their decisions, then the stops off
            self._sample(now)
        finally:
            orders.batching = False
            self._drop_batched_exits()  # left by an error: never sent, their stops never taken off
        await orders.dispatch()
        if self.journal.pending:
            await self.journal.flush()  # the venue's books first (journal.before_commit)
        self._refresh_wanted_snapshot()

    def _on_fill(self, fill: Fill, order: Order, realized: Decimal) -> None:
        self.counters["fills"] += 1
