"""Throttles: how often the strategy may open a trade."""
from __future__ import annotations

from .gate import Outcome, OrderRequest, PreTradeCheck, RiskContext


class TradesPerDayThrottle(PreTradeCheck):
    name = "trades_per_day"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        ok = req.continuation or ctx.trades_today < self.limit
        return (ok, "trades today {count}, max {limit}",
                ("count", "limit"), (ctx.trades_today, self.limit))


class TradesPerHourThrottle(PreTradeCheck):
    name = "trades_per_hour"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        ok = req.continuation or ctx.trades_last_hour < self.limit
        return (ok, "trades last hour {count}, max {limit}",
                ("count", "limit"), (ctx.trades_last_hour, self.limit))


class MinIntervalThrottle(PreTradeCheck):
    name = "min_seconds_between_trades"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        since = ctx.seconds_since_last_trade
        ok = req.continuation or since is None or since >= self.seconds
        if since is None:
            return (ok, "since last trade: none yet, min {min:.0f}s", ("since", "min"), (None, self.seconds))
        return (ok, "since last trade {since:.0f}s, min {min:.0f}s", ("since", "min"), (since, self.seconds))
