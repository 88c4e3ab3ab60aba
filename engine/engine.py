"""The engine: feed -> strategy -> sizing -> risk gate -> approval -> orders -> broker -> portfolio.

One asyncio loop; nothing here blocks it. The console and the headless runner drive the same
object: `run()` consumes the feed, commands (`approve`, `reject`, `halt`, `close_all`, `rearm`)
change state, and `snapshot()` tells what to show. A snapshot is only rebuilt when the journal
has nothing uncommitted, so the screen never shows a state change the journal does not hold.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Callable

from .alerts import AlertBus
from .approval import ApprovalQueue
from .brokers.paper import PaperBroker
from .brokers.base import Broker
from .clock import EPOCH_SIM_START, Clock, SimClock
from .feeds import MarketFeed, build_feed
from .journal import Journal
from .logsetup import setup_logging
from .models import Alert, Fill, Order, OrderPurpose, OrderStatus, OrderType, Quote, Side, Signal
from .money import ZERO
from .orders import OrderManager
from .commands import OperatorCommands
from .operator import OperatorActions
from .portfolio import Portfolio
from .profile import Profile, journal_path, log_path
from .risk.breakers import Breaker, BreakerState, is_rise
from .risk.checks import default_checks
from .risk.gate import Decision, OrderRequest, RiskContext, RiskGate, TradingState
from .sizing import size_position
from .snapshot import EngineSnapshot
from .recovery import checkpoint_record, rebuild, reconcile
from .brokers.paper_store import PaperStore
from .snapshot_build import build_snapshot
from .tracking import MarketWatch, TradeLog
from .breaker_set import ApiFailureCounter, build_breakers

log = logging.getLogger("tradeconsole.engine")

EQUITY_SAMPLE_SECONDS = 10
EQUITY_JOURNAL_SECONDS = 60
BPS = Decimal("0.0001")
ONE_DAY = timedelta(days=1)
ONE_MINUTE = timedelta(minutes=1)
ONE_HOUR = timedelta(hours=1)
BREAKER_IDLE_INTERVAL = timedelta(seconds=5)
BREAKER_EQUITY_STEP = Decimal("0.0001")
YIELD_EVERY = 0.002  # seconds of flat-out work between turns of the loop for keys and the screen


def paper_store_path(journal: Path) -> Path:
    """The paper venue's own books, beside the journal but never inside it."""
    return journal.with_name(journal.stem + ".paper-venue.sqlite")


class Engine(OperatorCommands, OperatorActions):
    def __init__(self, profile: Profile, clock: SimClock, journal: Journal, feed: MarketFeed,
                 broker: PaperBroker, session: int, speed: float, log_file: Path) -> None:
        self.profile = profile
        self.clock = clock
        self.journal = journal
        self.feed = feed
        self.broker = broker
        self.speed = speed
        self.log_path = log_file
        self.session = session
        self.alerts = AlertBus()
        self.alerts.subscribe(self._journal_alert)
        self.portfolio = Portfolio(profile.paper.starting_cash, profile.venue.timezone)
        self.gate = RiskGate(default_checks(profile))
        self.approvals = ApprovalQueue(profile.approval.timeout_seconds)
        self.orders = OrderManager(broker, journal, clock, self.portfolio, self.alerts, self._authorize,
                                   profile.orders, profile.name, session)
        self.orders.on_fill = self._on_fill
        self.orders.entry_room = self._entry_room
        self.orders.latched = lambda: self.state is TradingState.HALTED
        from .strategy import EmaTrendStrategy

        self.strategy = EmaTrendStrategy(profile.strategy, profile.risk)
        self.api_failures = ApiFailureCounter(profile.breakers.api_failure_window_seconds, clock)
        self.breakers: list[Breaker] = build_breakers(
            profile, self.portfolio, clock, self.api_failures,
            lambda: self.market.last_quote_at, lambda: self.state is TradingState.HALTED)
        self.state = TradingState.ACTIVE
        self.halt_reason = ""
        self.quotes: dict[str, Quote] = {}
        self._signals: dict[str, Signal] = {}
        self.trades = TradeLog()
        self.market = MarketWatch(profile.risk.max_price_jump_pct)
        self.broker_environment = "paper"  # what the venue says it is; real venues report their own
        # The gate's context records, refilled per decision (see _context).
        self._entry_ctx = self._blank_context()
        self._exit_ctx = self._blank_context()
        self._last_refusal: dict[str, tuple[str | None, datetime]] = {}
        self._stop = asyncio.Event()
        self._snapshot: EngineSnapshot | None = None
        self._next_sample: datetime | None = None
        self._next_breaker_check = datetime.min.replace(tzinfo=timezone.utc)
        self._breaker_equity = self.portfolio.equity
        self._next_journal_equity: datetime | None = None
        self._closed = False
        self.cancels_outstanding: list[str] = []
        self.services: list = []
        self.recovery = None
        self.reconciliation: list = []  # differences found at start (engine/recovery.py)  # started by the runner (engine/services.py), stopped on close
        self._carry: list[Quote] | None = None  # a batch read past the end of the last run()
        self._prerolled = False
        self._repace = False
        self._preroll_start: datetime | None = None
        self.trading_started: datetime | None = None
        self.counters = {"ticks": 0, "signals": 0, "approved": 0, "refused": 0, "orders": 0,
                         "fills": 0, "expired": 0, "rejected_by_operator": 0}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    async def open(cls, profile: Profile, *, clock: Clock | None = None, seed: int | None = None,
                   speed: float | None = None, log_to_stdout: bool = False) -> "Engine":
        if profile.venue.name != "paper":
            # A real venue: its broker, its quotes, wall-clock time, its stage grant; refusals are
            # VenueStartError (engine/venue_wiring.py).
            from .venue_wiring import open_venue

            return await open_venue(cls, profile, clock=clock, speed=speed, log_to_stdout=log_to_stdout)
        feed_cfg = profile.feed if seed is None else profile.feed.model_copy(update={"seed": seed})
        jpath = journal_path(profile)
        lpath = log_path(profile)
        feed: MarketFeed | None = None
        if clock is None and feed_cfg.kind == "csv":
            # Validated before anything is opened: a bad file leaves no journal behind.
            feed = build_feed(feed_cfg, profile.symbols, SimClock().now())
            # A replay's clock starts where its data does, or old data would never move time.
            clock = SimClock(feed.first_ts)  # type: ignore[attr-defined]
        journal = await Journal.open(jpath)
        try:
            if clock is None:
                # Simulated time continues from the journal: a restart must not move time back
                # under the day's trade counts and P&L baselines.
                last = await journal.last_ts()
                start = EPOCH_SIM_START if last is None else max(
                    EPOCH_SIM_START, last.replace(second=0, microsecond=0) + ONE_MINUTE)
                clock = SimClock(start)
            if feed is None:
                feed = build_feed(feed_cfg, profile.symbols, clock.now())
        except BaseException:
            await journal.close()
            raise
        setup_logging(lpath, profile.logging, stdout=log_to_stdout, clock=clock)
        session = await journal.count("session") + 1
        broker = PaperBroker(profile.paper, clock, PaperStore(paper_store_path(jpath)))
        return await cls._start(profile, clock, journal, feed, broker, session,
                                profile.feed.speed if speed is None else speed, lpath, seed=feed_cfg.seed)

    @classmethod
    async def _start(cls, profile: Profile, clock: Clock, journal: Journal, feed: MarketFeed, broker: Broker,
                     session: int, speed: float, lpath: Path, *, seed: int | None,
                     wire: Callable[["Engine"], None] | None = None) -> "Engine":
        """The start both venues share: latch, operator state, session row, recovery, commit.
        `wire` lets a real venue hook its broker to the engine before anything is read."""
        try:
            eng = cls(profile, clock, journal, feed, broker, session, speed, lpath)
            eng.venue_notice = ""  # a venue reached through another base URL says so in the header
            if wire is not None:
                wire(eng)
            await eng._restore_latch()
            await eng.restore_operator_state()  # pauses set before a restart still hold
            journal.append("session", clock.now(), None, {
                "session": session, "profile": profile.name, "mode": profile.mode, "seed": seed,
                "config": profile.model_dump(mode="json"),
            })
            await eng._recover()
            await journal.flush()
        except BaseException:
            # Leave nothing open behind a failed start (an open journal thread would hang exit).
            await broker.close()
            await journal.close()
            raise
        log.info("session %s started: profile %s, mode %s, journal %s", session, profile.name, profile.mode,
                 journal.path)
        return eng

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

    # -- the loop -----------------------------------------------------------------------------
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

        Only the simulated market has a past to ask for; a replay starts cold. No orders. With
        `max_quotes` it stops early and a later call carries on; returns quotes consumed."""
        if self.profile.feed.kind != "sim" or self._prerolled:
            return 0
        if self._preroll_start is None:
            self._preroll_start = self.clock.now()
        need = (self.profile.strategy.warmup_bars + 1) * max(self.profile.strategy.timeframes)
        n = 0
        while max_quotes is None or n < max_quotes:
            batch = self.feed.next_batch()
            if batch is None:
                self._prerolled = True
                break
            for q in batch:
                self.quotes[q.symbol] = q
                self.market.update(q)
                self.broker.on_quote(q)
                self.strategy.on_quote(q, ZERO)
            n += len(batch)
            self.clock.set(batch[0].ts)
            if (batch[0].ts - self._preroll_start).total_seconds() >= need:
                self._prerolled = True
                break
        return n

    async def _preroll_in_steps(self) -> None:
        while not self._prerolled and self.profile.feed.kind == "sim":
            # ~10 ms of warm-up at a time: the console's first paint and keys must not wait for it.
            self.preroll(max_quotes=200)
            await asyncio.sleep(0)

    async def run(self, duration: float | None = None) -> None:
        """Consume the feed until `duration` simulated seconds pass, the feed ends, or stop()."""
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
                    await asyncio.sleep(delay)
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
        new_day, new_week = self.portfolio.roll(now)
        if new_day:
            self.new_period("week" if new_week else "day")
        market = self.market
        broker = self.broker
        portfolio = self.portfolio
        for q in batch:
            self.quotes[q.symbol] = q
            market.update(q)
            portfolio.mark(q)
            broker.on_quote(q)  # the paper venue matches working orders: stops, limits
        self.counters["ticks"] += len(batch)
        orders = self.orders
        orders.batching = True  # orders decided in this batch share one journal commit
        try:
            fills_before = orders.fills
            await orders.process_events()
            await orders.on_time()
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
            self._sample(now)
        finally:
            orders.batching = False
        await orders.dispatch()
        if self.journal.pending:
            self.broker.persist()  # the venue's books are always ahead of what we record
            await self.journal.flush()

    # -- signals to orders --------------------------------------------------------------------
    async def _on_signal(self, sig: Signal) -> None:
        self.counters["signals"] += 1
        pos_qty = self.orders.position_qty(sig.symbol)
        if pos_qty != 0:
            await self._strategy_exit(sig, pos_qty)
            return
        if sig.symbol in self.approvals.symbols() or any(
            o.symbol == sig.symbol and o.purpose is OrderPurpose.ENTRY for o in self.orders.working.values()
        ):
            return  # one entry per symbol in flight
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
        if await self.orders.send(order, "strategy", decision):
            self.counters["orders"] += 1
            self.trades.record_entry(self.clock.now(), self.orders.position_qty(order.symbol) == 0)

    async def _strategy_exit(self, sig: Signal, pos_qty: Decimal) -> None:
        if self.opened_by_operator(sig.symbol):
            return  # the operator's position: its stop, the operator or close-all close it
        if any(o.symbol == sig.symbol and o.purpose is OrderPurpose.EXIT for o in self.orders.working.values()):
            return
        await self._exit_position(sig.symbol, "strategy", sig.reason)

    async def _exit_position(self, symbol: str, source: str, reason: str) -> bool:
        pos = self.portfolio.positions.get(symbol)
        if pos is None or pos.quantity == 0:
            return True
        side = Side.SELL if pos.quantity > 0 else Side.BUY
        cfg = self.profile.orders
        q = self.quotes.get(symbol)
        if cfg.exit_type == "limit" and q is not None:
            # Aggressive but bounded: crosses the spread, never deeper than the slippage bound.
            bound = cfg.exit_slippage_bps * BPS
            price = q.bid * (1 - bound) if side is Side.SELL else q.ask * (1 + bound)
            order = Order(self.orders.new_id(), symbol, side, OrderType.LIMIT, abs(pos.quantity), OrderPurpose.EXIT,
                          self.clock.now(), limit_price=price.quantize(Decimal("0.00000001")), reason=reason)
        else:
            order = Order(self.orders.new_id(), symbol, side, OrderType.MARKET, abs(pos.quantity),
                          OrderPurpose.EXIT, self.clock.now(), reason=reason)
        req = self._request(order, source)
        decision = self.gate.evaluate(req, self._context(req))
        self._journal_decision(order, req, decision, "exit: whole position")
        if not decision.approved:
            self.orders.record(order)
            return False
        # The stop comes off first, or it could fire too and flip the position.
        stop = self.orders.stop_order(symbol)
        if stop is not None:
            await self.orders.cancel(stop.client_order_id, "exit replaces stop")
            await self.orders.process_events()
        ok = await self.orders.send(order, source, decision)
        if ok:
            self.counters["orders"] += 1
        return ok

    # -- the gate -----------------------------------------------------------------------------
    def _request(self, order: Order, source: str) -> OrderRequest:
        sig = self._signals.get(order.parent_id or order.client_order_id)
        q = self.quotes.get(order.symbol)
        if order.limit_price is not None:
            price = order.limit_price
        elif q is not None:
            price = q.ask if order.side is Side.BUY else q.bid
        else:
            price = order.stop_price or ZERO
        entry = order.purpose is OrderPurpose.ENTRY
        # Positional: keyword calls cost microseconds on the gate's budget.
        return OrderRequest(
            order.symbol, order.side, order.quantity, price,
            order.protective_stop if entry else order.stop_price, order.purpose, source,
            sig.edge if sig else 1.0, sig.confidence if sig else 1.0, sig.strategy if sig else "",
            self.strategy.readiness(order.symbol), order.parent_id is not None)

    def _blank_context(self) -> RiskContext:
        return RiskContext(
            now=self.clock.now(), trading_state=self.state, equity=ZERO, cash=ZERO, day_start_equity=ZERO,
            pnl_today=ZERO, open_positions=0, position_qty=ZERO, gross_exposure=ZERO, trades_today=0,
            trades_last_hour=0, seconds_since_last_trade=None, mode=self.profile.mode)

    def _context(self, req: OrderRequest) -> RiskContext:
        """Refill the engine's context record for this decision.

        One record per purpose, refilled in place: the gate reads it synchronously and keeps
        nothing of it (check values are copied), and building a 26-field object per order cost
        more than all the checks' arithmetic."""
        now = self.clock.now()
        p = self.portfolio
        if req.purpose is not OrderPurpose.ENTRY:
            # Exits and stops are judged only by the trading state and the position they
            # reduce (engine/risk/checks_state.py); the account-wide numbers are not read.
            c = self._exit_ctx
            c.now = now
            c.trading_state = self.state
            c.cash = p.cash
            c.open_positions = len(p.positions)
            c.position_qty = self.orders.position_qty(req.symbol)
            return c
        log_ = self.trades
        log_.prune(now)
        if p.day_started is None or now - p.day_started >= ONE_DAY:
            p.roll(now)  # a command between batches may be the first to see a new day
        day_start = p.day_started
        entries, opens = log_.entries, log_.opens
        symbol = req.symbol
        market = self.market
        q = market.quote(symbol)
        c = self._entry_ctx
        c.now = now
        c.trading_state = self.state
        c.equity = eq = p.equity
        c.cash = p.cash
        c.day_start_equity = p.day_start_equity
        c.pnl_today = eq - p.day_start_equity  # = p.pnl_today, without summing equity again
        c.open_positions = len(p.positions)
        c.position_qty = self.orders.position_qty(symbol)
        c.gross_exposure = p.gross_exposure
        c.trades_today = log_.count_since(entries, day_start)
        c.trades_last_hour = log_.count_since(entries, now - ONE_HOUR)
        c.seconds_since_last_trade = (now - entries[-1]).total_seconds() if entries else None
        c.week_start_equity = p.week_start_equity
        c.pnl_week = eq - p.week_start_equity
        c.symbol_exposure = p.exposure.get(symbol, ZERO)
        c.exposure_by_symbol = p.exposure
        c.new_positions_today = log_.count_since(opens, day_start)
        c.new_positions_week = log_.count_since(opens, p.week_started)
        c.quote = q
        if q is None:
            c.mid = c.quote_age_seconds = None
        else:
            c.mid = market.mid(symbol)
            c.quote_age_seconds = (now - q.ts).total_seconds()
        c.last_good_price = market.last_good(symbol)
        c.recent_volume = market.recent_volume(symbol)
        c.venue_connected = self.broker.connected
        c.venue_environment = self.broker_environment
        return c

    def _entry_room(self, symbol: str, side: Side) -> Decimal:
        """Quantity an entry may still add in `symbol` at today's price under the position cap."""
        q = self.quotes.get(symbol)
        if q is None:
            return ZERO
        price = q.ask if side is Side.BUY else q.bid
        p = self.portfolio
        cap = min(p.equity * self.profile.risk.max_position_pct / 100, self.profile.sizing.max_order_usd)
        held = abs(self.orders.position_qty(symbol)) * price
        room = (cap - held) / price if price > 0 else ZERO
        return max(ZERO, room.quantize(Decimal("0.000001"), rounding=ROUND_DOWN))

    def _authorize(self, order: Order, source: str) -> Decision:
        req = self._request(order, source)
        decision = self.gate.evaluate(req, self._context(req))
        self._journal_decision(order, req, decision, "")
        return decision

    def _journal_decision(self, order: Order, req: OrderRequest, d: Decision, sizing: str) -> None:
        self.journal.append("decision", self.clock.now(), order.client_order_id, {
            "approved": d.approved, "failed": d.failed, "purpose": req.purpose, "source": req.source,
            "symbol": req.symbol, "side": req.side, "quantity": req.quantity, "price": req.price,
            "stop": req.stop_price, "edge": req.edge, "confidence": req.confidence, "sizing": sizing,
            "checks": d.checks_as_dicts()})

    # -- breakers -----------------------------------------------------------------------------
    def _evaluate_breakers(self, now: datetime) -> None:
        for b in self.breakers:
            t = b.evaluate()
            if t is None:
                continue
            self.journal.append("breaker", now, b.name, {"old": t.old, "new": t.new, "value": b.value, "limit": b.limit})
            if not is_rise(t):
                if t.old is BreakerState.TRIPPED:
                    self._apply_breaker_state()  # an auto-reset breaker cleared itself
                continue
            if b.unit == "latch":
                continue  # the halt itself already alerted and latched
            sev = "critical" if t.new in (BreakerState.CRITICAL, BreakerState.TRIPPED) else "warning"
            self.alerts.publish(sev, "breaker", f"{b.name} {t.new.value}: {b.text().strip()}", now, breaker=b.name)
            if t.new is BreakerState.TRIPPED:
                if b.action == "halt":
                    self.halt(f"breaker:{b.name}", f"{b.name} tripped")
                else:
                    self._apply_breaker_state()

    def _apply_breaker_state(self) -> None:
        if self.state is TradingState.HALTED:
            return
        blocked = any(b.state is BreakerState.TRIPPED and b.action == "block" for b in self.breakers)
        self.state = TradingState.REDUCE_ONLY if blocked else TradingState.ACTIVE

    def _on_fill(self, fill: Fill, order: Order, realized: Decimal) -> None:
        self.counters["fills"] += 1

    def new_period(self, period: str) -> None:
        """A new venue day (or week, which is also a new day) resets the breakers tied to it."""
        resets = {"day"} if period == "day" else {"day", "week"}
        for b in self.breakers:
            if b.reset_on in resets and b.state is not BreakerState.ARMED:
                old = b.state
                b.reset()
                self.journal.append("breaker", self.clock.now(), b.name, {"old": old, "new": b.state, "reset": period})
        self._apply_breaker_state()

    # -- equity, snapshot, shutdown -----------------------------------------------------------
    def _sample(self, now: datetime) -> None:
        if self._next_sample is None or now >= self._next_sample:
            self.portfolio.sample(now)
            self._next_sample = now + timedelta(seconds=EQUITY_SAMPLE_SECONDS)
        if self._next_journal_equity is None or now >= self._next_journal_equity:
            p = self.portfolio
            self.journal.append("equity", now, None, {
                "equity": p.equity, "cash": p.cash, "realized": p.realized_pnl, "unrealized": p.unrealized_pnl,
                "fees": p.fees, "positions": len(p.positions)})
            self.journal.append("checkpoint", now, None, checkpoint_record(self))
            self._next_journal_equity = now + timedelta(seconds=EQUITY_JOURNAL_SECONDS)

    def _journal_alert(self, alert: Alert) -> None:
        if not self._closed:
            self.journal.append("alert", alert.ts, alert.kind, {
                "severity": alert.severity, "message": alert.message, "data": alert.data})
        log.log(logging.WARNING if alert.severity != "info" else logging.INFO, "alert %s %s: %s",
                alert.severity, alert.kind, alert.message)

    def snapshot(self) -> EngineSnapshot:
        if self._snapshot is None or not self.journal.pending:
            self._snapshot = build_snapshot(self)
        elif self.state is TradingState.HALTED and self._snapshot.trading_state != "halted":
            # The latch is on but its journal row is not committed yet: say so at once, as
            # HALTING, rather than show the old state or claim a halt the journal lacks.
            return dataclasses.replace(self._snapshot, trading_state="halting", halt_reason=self.halt_reason,
                                       approvals=())
        return self._snapshot

    async def close(self) -> None:
        if self._closed:
            return
        self.stop()
        from .services import stop_services

        await stop_services(self)
        p = self.portfolio
        self.journal.append("checkpoint", self.clock.now(), None, checkpoint_record(self))
        self.broker.persist()
        await self.broker.close()
        self.journal.append("session_end", self.clock.now(), None, {
            "equity": p.equity, "realized": p.realized_pnl, "positions": len(p.positions),
            "state": self.state.value, "counters": dict(self.counters)})
        self._closed = True
        await self.journal.close()
        log.info("session %s closed", self.session)
