"""Builds the console's `EngineSnapshot` from the engine's state."""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from .models import OrderPurpose
from .snapshot import AlertView, ApprovalView, BreakerView, CheckView, EngineSnapshot, OrderView, PositionView

if TYPE_CHECKING:
    from .engine import Engine

HUNDRED = Decimal(100)


def _position(p) -> PositionView:
    dist = None
    if p.stop_price is not None and p.last_price > 0:
        gap = (p.last_price - p.stop_price) if p.quantity > 0 else (p.stop_price - p.last_price)
        dist = (gap / p.last_price * HUNDRED).quantize(Decimal("0.01"))
    return PositionView(p.symbol, "long" if p.quantity > 0 else "short", abs(p.quantity), p.avg_price,
                        p.last_price, p.unrealized_pnl, p.stop_price, dist)


def build_snapshot(e: "Engine") -> EngineSnapshot:
    p = e.portfolio
    now = e.clock.now()
    approvals = tuple(
        ApprovalView(
            a.order.client_order_id, a.order.symbol, a.order.side.value, a.order.quantity,
            a.order.limit_price or (a.signal.price if a.signal else Decimal(0)),
            a.order.protective_stop,
            a.order.quantity * (a.order.limit_price or (a.signal.price if a.signal else Decimal(0))),
            a.signal.reason if a.signal else a.order.reason, a.sizing,
            tuple(CheckView(c.name, c.passed, c.detail) for c in a.decision.checks),
            max(0.0, (a.deadline - now).total_seconds()),
        )
        for a in e.approvals.items()
    )
    orders = tuple(
        OrderView(o.client_order_id, o.symbol, o.side.value, o.type.value, o.purpose.value, o.quantity,
                  o.filled_qty, o.limit_price if o.limit_price is not None else o.stop_price, o.status.value)
        for o in e.orders.working.values()
    )
    breakers = tuple(BreakerView(b.name, b.state.value, b.value, b.limit, b.text()) for b in e.breakers)
    alerts = tuple(AlertView(a.seq, a.ts, a.severity, a.kind, a.message) for a in e.alerts.recent(50))
    curve = tuple(float(eq) for _, eq in p.curve)
    return EngineSnapshot(
        ts=now, mode=e.profile.mode, profile=e.profile.name, venue=e.broker.name,
        trading_state=e.state.value, halt_reason=e.halt_reason, connected=e.broker.connected,
        equity=p.equity, cash=p.cash, realized_pnl=p.realized_pnl, unrealized_pnl=p.unrealized_pnl,
        pnl_today=p.pnl_today, pnl_week=p.pnl_week, fees=p.fees, equity_curve=curve,
        positions=tuple(_position(pos) for pos in sorted(p.positions.values(), key=lambda x: x.symbol)),
        open_orders=orders, approvals=approvals, breakers=breakers, alerts=alerts,
        counters=dict(e.counters) | {"stops": sum(1 for o in e.orders.working.values() if o.purpose is OrderPurpose.STOP)},
    )
