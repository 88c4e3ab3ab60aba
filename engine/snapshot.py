"""What the console sees: immutable snapshots the engine builds on request.

The console reads `Engine.snapshot()` on a timer (a few Hz) and renders it; it never reaches into
engine internals. Commands go the other way as `Engine` methods (see engine/engine.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    side: str  # "long" | "short"
    quantity: Decimal
    avg_price: Decimal
    last_price: Decimal
    unrealized_pnl: Decimal
    stop_price: Decimal | None
    stop_distance_pct: Decimal | None  # how far last is above (long) / below (short) the stop
    # The risk meter: what hitting the stop would lose (fees both ways included; negative once
    # the stop locks in a profit) against the per-trade limit the gate applies to a new entry.
    loss_at_stop: Decimal | None = None
    loss_limit: Decimal | None = None
    exposure: Decimal = Decimal(0)  # market value held
    exposure_cap: Decimal | None = None  # max_symbol_exposure_pct of equity
    stop_order_id: str | None = None
    # A stop order working at the venue for all of it: the stop price alone is only the plan (a
    # stop the venue refused, one taken off for an exit, one covering part of an add).
    stop_working: bool = True


@dataclass(frozen=True, slots=True)
class DustView:
    """A remainder below the venue's minimum order (engine/portfolio.py): held, valued, untradable."""

    symbol: str
    quantity: Decimal
    last_price: Decimal
    value: Decimal


@dataclass(frozen=True, slots=True)
class CheckView:
    name: str
    passed: bool
    detail: str  # the numbers it compared, e.g. "open 3 < max 5"


@dataclass(frozen=True, slots=True)
class ApprovalView:
    client_order_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    stop_price: Decimal | None
    notional: Decimal
    reason: str  # the signal's reason
    sizing: str  # the size rationale
    checks: tuple[CheckView, ...]
    seconds_left: float


@dataclass(frozen=True, slots=True)
class OrderView:
    client_order_id: str
    symbol: str
    side: str
    type: str
    purpose: str
    quantity: Decimal
    filled_qty: Decimal
    price: Decimal | None
    status: str


@dataclass(frozen=True, slots=True)
class BreakerView:
    name: str
    state: str  # armed | warning | critical | tripped
    value: Decimal
    limit: Decimal
    text: str  # e.g. "daily loss  -$62 / -$100  62 %"


@dataclass(frozen=True, slots=True)
class AlertView:
    seq: int
    ts: datetime
    severity: str  # info | warning | critical
    kind: str
    message: str
    acknowledged: bool = False


@dataclass(frozen=True, slots=True)
class CapitalView:
    """Capital utilisation: deployed against the caps, cash against the reserve floor."""

    equity: Decimal
    deployed: Decimal  # gross exposure at marks
    max_total: Decimal  # risk.max_total_capital_usd
    stage_cap: Decimal | None  # the stage's max_capital_usd (None: no cap in this stage)
    cash: Decimal
    reserve_min: Decimal  # cash_reserve_pct of equity
    reserve_pct: Decimal

    @property
    def cap(self) -> Decimal:
        """The binding capital cap."""
        return self.max_total if self.stage_cap is None else min(self.max_total, self.stage_cap)

    @property
    def utilisation_pct(self) -> Decimal:
        return self.deployed / self.cap * 100 if self.cap > 0 else Decimal(0)


@dataclass(frozen=True, slots=True)
class PerformanceView:
    """Closed round trips against the stage's readiness targets."""

    trades: int
    wins: int
    losses: int
    win_rate_pct: Decimal | None
    profit_factor: Decimal | None  # None: no losing trade yet
    net: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    largest_win: Decimal
    largest_loss: Decimal
    drawdown_pct: Decimal
    max_drawdown_pct: Decimal
    targets: tuple[CheckView, ...] = ()  # each target with the numbers compared


@dataclass(frozen=True, slots=True)
class PauseView:
    key: str  # a symbol, "*" (everything) or "strategy:<name>"
    label: str
    reason: str


@dataclass(frozen=True, slots=True)
class TradeRowView:
    """One fill from the journal, for the trade history screen."""

    seq: int
    ts: datetime
    client_order_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    realized: Decimal
    purpose: str
    position_after: Decimal


@dataclass(frozen=True, slots=True)
class NoteView:
    seq: int
    ts: datetime
    kind: str  # day | trade | alert
    ref: str
    text: str


@dataclass(frozen=True, slots=True)
class HistoryView:
    fills: tuple[TradeRowView, ...]  # newest first, bounded
    notes: tuple[NoteView, ...]  # newest first, bounded
    total_fills: int


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    ts: datetime  # engine clock
    mode: str  # paper | testnet | live
    profile: str
    venue: str
    trading_state: str  # active | halted
    halt_reason: str
    connected: bool
    equity: Decimal
    cash: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    pnl_today: Decimal
    pnl_week: Decimal
    fees: Decimal
    equity_curve: tuple[float, ...]  # recent equity samples for a sparkline
    positions: tuple[PositionView, ...]
    open_orders: tuple[OrderView, ...]
    approvals: tuple[ApprovalView, ...]
    breakers: tuple[BreakerView, ...]
    alerts: tuple[AlertView, ...]  # newest first, bounded
    counters: dict[str, int] = field(default_factory=dict)  # ticks, signals, orders, fills, rejects
    stage: str = "paper"
    stage_started: datetime | None = None
    pnl_since_stage_start: Decimal | None = None  # None until the journal has been read
    drawdown_curve: tuple[float, ...] = ()  # % below the running peak, per equity sample
    capital: CapitalView | None = None
    performance: PerformanceView | None = None
    paused: tuple[PauseView, ...] = ()
    approval_required: bool = True
    # Set when the profile points the venue at another base URL (an emulator, a proxy), e.g.
    # "via 127.0.0.1:8080 (emulator)": the header must not let it pass for the venue itself.
    venue_notice: str = ""
    dust: tuple[DustView, ...] = ()  # not positions: listed apart, beside them
    # Whether a re-arm would lift anything now (Engine.rearm_refusal): a day-loss breaker lifts at
    # the venue's next day and reconciliation by answering it, so the header offers no re-arm then.
    rearm_lifts: bool = True
    # Why the runner's run is over while the console stays up (Engine.finish_run): "" while it runs.
    run_finished: str = ""
