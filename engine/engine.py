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
from datetime import datetime, timedelta, timezone
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
from .models import Alert, Quote, Signal
from .orders import OrderManager
from .commands import OperatorCommands
from .feed_loop import FeedLoop
from .gate_wiring import GateWiring
from .restart import RestartWiring
from .signal_flow import SignalFlow
from .exits import PositionExits
from .operator import OperatorActions
from .portfolio import Portfolio
from .profile import Profile, journal_path, log_path, paper_store_path
from .risk.breakers import Breaker
from .risk.checks import default_checks, taker_fee_rate
from .risk.gate import RiskGate, TradingState
from .snapshot import EngineSnapshot
from .recovery import checkpoint_record
from .brokers.paper_store import PaperStore
from .snapshot_build import build_snapshot
from .tasks import close_after_failed_start
from .tracking import MarketWatch, TradeLog
from .breaker_set import ApiFailureCounter, build_breakers

log = logging.getLogger("tradeconsole.engine")

EQUITY_SAMPLE_SECONDS = 10
EQUITY_JOURNAL_SECONDS = 60
ONE_MINUTE = timedelta(minutes=1)
# How long closing waits for an exit step under way (stop off -> exit sent) to finish it.
EXIT_SETTLE_TIMEOUT = 10.0


async def _refuse_replay_into_the_past(journal: Journal, feed: MarketFeed, csv_path: str | None) -> None:
    """A replay whose data starts before the journal's last row would move simulated time back under
    the journal's trades, day counts and P&L baselines: refused before anything is written."""
    from .feeds import CsvFeedError

    last = await journal.last_ts()
    first = feed.first_ts  # type: ignore[attr-defined]
    if last is not None and first < last:
        raise CsvFeedError(str(csv_path), None, (
            f"feed.csv_path starts at {first.isoformat()}, before the last time already in the journal "
            f"{journal.path} ({last.isoformat()}): replaying it would move simulated time back; "
            "give this replay a new journal.path"))


class EngineCloseError(Exception):
    """Something could not be written at close; everything was closed anyway."""


class Engine(FeedLoop, OperatorCommands, OperatorActions, SignalFlow, PositionExits, GateWiring, RestartWiring):
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
        journal.before_commit = broker.persist  # the venue's books ahead of every commit
        self.alerts = AlertBus()
        self.alerts.subscribe(self._journal_alert)
        self.portfolio = Portfolio(profile.paper.starting_cash, profile.venue.timezone)
        self.gate = RiskGate(default_checks(profile))
        self._fee_rate = taker_fee_rate(profile)  # what a working buy's fee is reckoned at
        self.approvals = ApprovalQueue(profile.approval.timeout_seconds)
        self.orders = OrderManager(broker, journal, clock, self.portfolio, self.alerts, self._authorize,
                                   profile.orders, profile.name, session)
        self.orders.on_fill = self._on_fill
        self.orders.entry_room = self._entry_room
        self.orders.latched = lambda: self.state is TradingState.HALTED
        from .strategy import EmaTrendStrategy

        self.strategy = EmaTrendStrategy(profile.strategy, profile.risk)
        self.api_failures = ApiFailureCounter(profile.breakers.api_failure_window_seconds, clock, journal)
        self.breakers: list[Breaker] = build_breakers(
            profile, self.portfolio, clock, self.api_failures,
            lambda: self.market.last_quote_at, lambda: self.state is TradingState.HALTED)
        self.state = TradingState.ACTIVE
        self.halt_reason = ""
        # Halts and breaker trips this session: a re-arm asked for before the latest is refused.
        self.trips = 0
        self.entries_stopped = False  # set by close_all(stop_entries=True) for the rest of the session
        self.quotes: dict[str, Quote] = {}
        self._signals: dict[str, Signal] = {}
        self.trades = TradeLog(journal)
        self.market = MarketWatch(profile.risk.max_price_jump_pct)
        self.broker_environment = "paper"  # what the venue says it is; real venues report their own
        # The gate's context records, refilled per decision (see _context).
        self._entry_ctx = self._blank_context()
        self._exit_ctx = self._blank_context()
        self._last_refusal: dict[str, tuple[str | None, datetime]] = {}
        self.init_exits()
        self._stop = asyncio.Event()
        self._snapshot: EngineSnapshot | None = None
        self._snapshot_wanted = False  # a reader met uncommitted rows (snapshot)
        # The journal's instance lock when the runner took it (console/cli.py); let go on close.
        self.instance_lock = None
        self._next_sample: datetime | None = None
        self._next_breaker_check = datetime.min.replace(tzinfo=timezone.utc)
        self._breaker_equity = self.portfolio.equity
        self._next_journal_equity: datetime | None = None
        self._next_forget = datetime.min.replace(tzinfo=timezone.utc)  # finished orders, hourly
        self._closed = False
        self.cancels_outstanding: list[str] = []
        self.services: list = []
        self.recovery = None
        self._answering: set[int] = set()  # differences an answer is being carried out for (restart.py)
        self.reconciliation: list = []  # differences found at start (engine/recovery.py)
        self._carry: list[Quote] | None = None  # a batch read past the end of the last run()
        self.run_state = "idle"  # idle (not started), running, stopped, failed: the heartbeat reads it
        self.run_error = ""
        self._prerolled = False
        self._repace = False
        self._preroll_start: datetime | None = None
        self.trading_started: datetime | None = None
        self.counters = {"ticks": 0, "signals": 0, "approved": 0, "refused": 0, "orders": 0,
                         "fills": 0, "expired": 0, "rejected_by_operator": 0,
                         # signals on a held symbol (judged as exits); skipped while an entry
                         # works or waits in their symbol (or entries are stopped); approvals
                         # closed unanswered at the run's end
                         "held_signals": 0, "skipped": 0, "approvals_closed": 0}
        self.run_finished = ""  # why the runner's run is over (finish_run): nothing new is sent
        self.run_end = ""

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
            from .stages import require_granted  # here: the console's first screen does without it

            await require_granted(profile, journal)  # a journal granted testnet or live is no paper record
            if feed is not None:
                await _refuse_replay_into_the_past(journal, feed, feed_cfg.csv_path)
            if clock is None:
                # Simulated time continues from the journal: a restart must not move time back
                # under the day's trade counts and P&L baselines.
                last = await journal.last_ts()
                start = EPOCH_SIM_START if last is None else max(
                    EPOCH_SIM_START, last.replace(second=0, microsecond=0) + ONE_MINUTE)
                clock = SimClock(start)
            if feed is None:
                feed = build_feed(feed_cfg, profile.symbols, clock.now())
            setup_logging(lpath, profile.logging, stdout=log_to_stdout, clock=clock)
            session = await journal.count("session") + 1
            broker = PaperBroker(profile.paper, clock, PaperStore(paper_store_path(jpath)))
        except BaseException:
            # Leave nothing open behind a failed start (an open journal thread would hang exit).
            await journal.close()
            raise
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
            await close_after_failed_start(broker, journal)
            raise
        log.info("session %s started: profile %s, mode %s, journal %s", session, profile.name, profile.mode,
                 journal.path)
        return eng

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
                "severity": alert.severity, "message": alert.message, "data": alert.data, "seq": alert.seq})
        log.log(logging.WARNING if alert.severity != "info" else logging.INFO, "alert %s %s: %s",
                alert.severity, alert.kind, alert.message)

    def snapshot(self) -> EngineSnapshot:
        if self._snapshot is None or not self.journal.pending:
            self._snapshot = build_snapshot(self)
            self._snapshot_wanted = False
            return self._snapshot
        # Asked while rows are uncommitted (flat out, the loop gives the screen its turns inside
        # the commits): the loop builds one at its next clean moment, or the screen froze.
        self._snapshot_wanted = True
        if self.state is TradingState.HALTED and self._snapshot.trading_state != "halted":
            # The latch is on but its journal row is not committed yet: say so at once, as
            # HALTING, rather than show the old state or claim a halt the journal lacks.
            return dataclasses.replace(self._snapshot, trading_state="halting", halt_reason=self.halt_reason,
                                       approvals=())
        return self._snapshot

    def _refresh_wanted_snapshot(self) -> None:
        """The end of a batch, journal committed: build the snapshot a reader asked for meanwhile."""
        if self._snapshot_wanted and not self.journal.pending:
            self._snapshot_wanted = False
            self._snapshot = build_snapshot(self)

    async def close(self) -> None:
        """Stop the services, close the venue (the paper venue writes its books), then the journal.

        Every part is closed whatever fails before it: a journal left open keeps the process alive
        after it is done (aiosqlite's thread), which for an unattended run means never exiting.
        What could not be written is raised afterwards, as one EngineCloseError."""
        if self._closed:
            return
        # An exit step under way (close-all, a row close, a strategy exit) finishes it first: cut
        # off between "stop off" and "exit sent", the position stays bare at the venue.
        under_way = await self.settle_exits(EXIT_SETTLE_TIMEOUT)
        if under_way:
            log.error("closing while the exit of %s is still under way after %ss: its stop may be off; "
                      "the next start protects bare positions", ", ".join(under_way), EXIT_SETTLE_TIMEOUT)
            self.alerts.publish("critical", "exit_not_sent",
                                f"closing with the exit of {', '.join(under_way)} still under way after "
                                f"{EXIT_SETTLE_TIMEOUT:g} s: check its stop at the venue", self.clock.now())
        self.stop()
        from .services import stop_services

        await stop_services(self)
        p = self.portfolio
        # Nobody can answer them once the session is over: closed, journaled (never left
        # pending_approval in the journal with no outcome).
        self.close_pending_approvals("session ended before an answer")
        self.journal.append("checkpoint", self.clock.now(), None, checkpoint_record(self))
        failures: list[str] = []
        try:
            try:
                await self.broker.close()
            except Exception as exc:  # noqa: BLE001 - told below, after the journal is closed too
                failures.append(f"the venue's books were not saved ({exc})")
            self.journal.append("session_end", self.clock.now(), None, {
                "equity": p.equity, "realized": p.realized_pnl, "positions": len(p.positions),
                "state": self.state.value, "counters": dict(self.counters)})
        finally:  # even when this close is itself cancelled
            self._closed = True
            try:
                # Commits only what the venue's books hold (journal.before_commit): after a failed
                # venue write, the last rows stay out, and the next start reconciles against both.
                await self.journal.close()
            except Exception as exc:  # noqa: BLE001
                failures.append(f"the journal's last {self.journal.pending} rows were not committed ({exc})")
            finally:
                if self.instance_lock is not None:  # only once the journal is shut: the next may open it
                    self.instance_lock.release()
        if failures:
            log.error("session %s closed, but %s", self.session, "; ".join(failures))
            raise EngineCloseError(f"{self.journal.path}: session {self.session} closed, but " + "; ".join(failures))
        log.info("session %s closed", self.session)
