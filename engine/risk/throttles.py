"""Throttles: how often the strategy may open a trade."""
from __future__ import annotations

from .gate import CheckResult, OrderRequest, PreTradeCheck, RiskContext


class TradesPerDayThrottle(PreTradeCheck):
    name = "trades_per_day"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        ok = req.continuation or ctx.trades_today < self.limit
        return CheckResult(self.name, ok, "trades today {count}, max {limit}",
                           {"count": ctx.trades_today, "limit": self.limit})


class TradesPerHourThrottle(PreTradeCheck):
    name = "trades_per_hour"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        ok = req.continuation or ctx.trades_last_hour < self.limit
        return CheckResult(self.name, ok, "trades last hour {count}, max {limit}",
                           {"count": ctx.trades_last_hour, "limit": self.limit})


class MinIntervalThrottle(PreTradeCheck):
    name = "min_seconds_between_trades"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        since = ctx.seconds_since_last_trade
        ok = req.continuation or since is None or since >= self.seconds
        return CheckResult(self.name, ok, "since last trade {since}, min {min:.0f}s",
                           {"since": "none yet" if since is None else f"{since:.0f}s", "min": self.seconds})
