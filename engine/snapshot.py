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
