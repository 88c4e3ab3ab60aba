"""Pre-trade checks, one small unit each. Each returns the numbers it compared."""
from __future__ import annotations

from decimal import Decimal

from ..models import OrderPurpose, Side
from ..profile import Profile
from .gate import CheckResult, OrderRequest, PreTradeCheck, RiskContext, TradingState

HUNDRED = Decimal(100)
ALL_PURPOSES = frozenset(OrderPurpose)
EXITS = frozenset({OrderPurpose.EXIT, OrderPurpose.STOP})


def _pct(x: Decimal) -> str:
    return f"{x:.2f}%"


class TradingStateCheck(PreTradeCheck):
    """The halt latch and reduce-only mode. Operator exits still pass a halt: close-all must work."""

    name = "trading_state"
    applies_to = ALL_PURPOSES

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        state = ctx.trading_state
        if state is TradingState.ACTIVE:
            ok = True
        elif state is TradingState.REDUCE_ONLY:
            ok = req.purpose is not OrderPurpose.ENTRY
        else:
            ok = req.purpose in EXITS and req.source in ("operator", "system")
        return CheckResult(self.name, ok, f"state {state.value}, {req.purpose.value} from {req.source}",
                           {"state": state.value})


class ReducesPositionCheck(PreTradeCheck):
    """An exit or stop may only shrink the position it belongs to, never open or flip one."""

    name = "reduces_position"
    applies_to = EXITS

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        pos = ctx.position_qty
        opposite = (pos > 0 and req.side is Side.SELL) or (pos < 0 and req.side is Side.BUY)
        ok = opposite and req.quantity <= abs(pos)
        return CheckResult(self.name, ok, f"{req.side.value} {req.quantity} against position {pos}",
                           {"quantity": req.quantity, "position": pos})


class MaxOpenPositionsCheck(PreTradeCheck):
    name = "max_open_positions"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        adds = ctx.position_qty == 0
        after = ctx.open_positions + (1 if adds else 0)
        ok = after <= self.limit
        return CheckResult(self.name, ok, f"open after {after}, max {self.limit}",
                           {"open_after": after, "limit": self.limit})


class PositionSizeCheck(PreTradeCheck):
    """Position value after the order within max % of equity and the max order size in USD."""

    name = "position_size"

    def __init__(self, max_pct: Decimal, max_usd: Decimal) -> None:
        self.max_pct = max_pct
        self.max_usd = max_usd

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        value = (abs(ctx.position_qty) + req.quantity) * req.price
        cap_pct = ctx.equity * self.max_pct / HUNDRED
        cap = min(cap_pct, self.max_usd)
        ok = value <= cap
        return CheckResult(
            self.name, ok,
            f"position {value:.2f}, cap {cap:.2f} ({self.max_pct}% of equity, max {self.max_usd})",
            {"value": value, "cap": cap},
        )


class CashReserveCheck(PreTradeCheck):
    """Cash left after the order stays above the reserve share of equity."""

    name = "cash_reserve"

    def __init__(self, reserve_pct: Decimal) -> None:
        self.reserve_pct = reserve_pct

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        spend = req.notional if req.side is Side.BUY else Decimal(0)
        after = ctx.cash - spend
        floor = ctx.equity * self.reserve_pct / HUNDRED
        ok = after >= floor
        return CheckResult(self.name, ok, f"cash after {after:.2f}, reserve {floor:.2f} ({self.reserve_pct}%)",
                           {"cash_after": after, "reserve": floor})


class DailyLossLimitCheck(PreTradeCheck):
    name = "daily_loss"

    def __init__(self, limit_pct: Decimal) -> None:
        self.limit_pct = limit_pct

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        loss = -ctx.pnl_today if ctx.pnl_today < 0 else Decimal(0)
        limit = ctx.day_start_equity * self.limit_pct / HUNDRED
        ok = loss < limit
        return CheckResult(self.name, ok, f"loss today {loss:.2f}, limit {limit:.2f} ({self.limit_pct}%)",
                           {"loss": loss, "limit": limit})


class MinEdgeCheck(PreTradeCheck):
    name = "min_edge"

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        ok = req.edge >= self.minimum
        return CheckResult(self.name, ok, f"edge {req.edge:.3f}, min {self.minimum}",
                           {"edge": req.edge, "min": self.minimum})


class MinConfidenceCheck(PreTradeCheck):
    name = "min_confidence"

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        ok = req.confidence >= self.minimum
        return CheckResult(self.name, ok, f"confidence {req.confidence:.3f}, min {self.minimum}",
                           {"confidence": req.confidence, "min": self.minimum})


class StopLossCheck(PreTradeCheck):
    """A stop is present, on the losing side of the entry, and within its min/max distance."""

    name = "stop_loss"

    def __init__(self, min_pct: Decimal, max_pct: Decimal) -> None:
        self.min_pct = min_pct
        self.max_pct = max_pct

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        stop = req.stop_price
        if stop is None or stop <= 0 or req.price <= 0:
            return CheckResult(self.name, False, "no stop loss", {"stop": stop})
        right_side = stop < req.price if req.side is Side.BUY else stop > req.price
        dist = abs(req.price - stop) / req.price * HUNDRED
        ok = right_side and self.min_pct <= dist <= self.max_pct
        side = "below" if req.side is Side.BUY else "above"
        return CheckResult(
            self.name, ok,
            f"stop {stop} {side} entry {req.price}: {_pct(dist)} within {self.min_pct}-{self.max_pct}%"
            + ("" if right_side else " (wrong side)"),
            {"stop": stop, "distance_pct": dist.quantize(Decimal("0.0001"))},
        )


class SingleTradeLossCheck(PreTradeCheck):
    """Loss at the stop (quantity x stop distance, plus fees both ways) within the USD cap and
    the risk-per-trade share of equity, whichever is tighter."""

    name = "single_trade_loss"

    def __init__(self, max_usd: Decimal, risk_pct: Decimal, fee_rate: Decimal) -> None:
        self.max_usd = max_usd
        self.risk_pct = risk_pct
        self.fee_rate = fee_rate

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        if req.stop_price is None:
            return CheckResult(self.name, False, "no stop: loss unbounded", {})
        fees = (req.price + req.stop_price) * req.quantity * self.fee_rate
        loss = abs(req.price - req.stop_price) * req.quantity + fees
        # Sizing rounds to the risk share; a cent of rounding must not refuse the trade it sized.
        cap = min(self.max_usd, ctx.equity * self.risk_pct / HUNDRED * Decimal("1.02") + fees)
        ok = loss <= cap
        return CheckResult(self.name, ok, f"loss at stop {loss:.2f}, cap {cap:.2f}",
                           {"loss": loss, "cap": cap})


class TotalCapitalCheck(PreTradeCheck):
    name = "total_capital"

    def __init__(self, max_usd: Decimal) -> None:
        self.max_usd = max_usd

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        after = ctx.gross_exposure + req.notional
        ok = after <= self.max_usd
        return CheckResult(self.name, ok, f"deployed after {after:.2f}, max {self.max_usd}",
                           {"deployed_after": after, "max": self.max_usd})


class TradesPerDayThrottle(PreTradeCheck):
    name = "trades_per_day"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        ok = req.continuation or ctx.trades_today < self.limit
        return CheckResult(self.name, ok, f"trades today {ctx.trades_today}, max {self.limit}",
                           {"count": ctx.trades_today, "limit": self.limit})


class TradesPerHourThrottle(PreTradeCheck):
    name = "trades_per_hour"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        ok = req.continuation or ctx.trades_last_hour < self.limit
        return CheckResult(self.name, ok, f"trades last hour {ctx.trades_last_hour}, max {self.limit}",
                           {"count": ctx.trades_last_hour, "limit": self.limit})


class MinIntervalThrottle(PreTradeCheck):
    name = "min_seconds_between_trades"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        since = ctx.seconds_since_last_trade
        ok = req.continuation or since is None or since >= self.seconds
        shown = "none yet" if since is None else f"{since:.0f}s"
        return CheckResult(self.name, ok, f"since last trade {shown}, min {self.seconds:.0f}s",
                           {"since": since, "min": self.seconds})


def default_checks(profile: Profile) -> list[PreTradeCheck]:
    r = profile.risk
    return [
        TradingStateCheck(),
        ReducesPositionCheck(),
        StopLossCheck(r.stop_loss_min_pct, r.stop_loss_max_pct),
        MinEdgeCheck(r.min_edge),
        MinConfidenceCheck(r.min_confidence),
        MaxOpenPositionsCheck(r.max_open_positions),
        PositionSizeCheck(r.max_position_pct, profile.sizing.max_order_usd),
        SingleTradeLossCheck(r.max_single_trade_loss_usd, r.risk_per_trade_pct,
                             profile.paper.taker_fee_bps / Decimal(10000)),
        TotalCapitalCheck(r.max_total_capital_usd),
        CashReserveCheck(r.cash_reserve_pct),
        DailyLossLimitCheck(r.daily_loss_pct),
        TradesPerDayThrottle(r.max_trades_per_day),
        TradesPerHourThrottle(r.max_trades_per_hour),
        MinIntervalThrottle(r.min_seconds_between_trades),
    ]
