"""Checks on the signal itself: edge, confidence, readiness, and its stop."""
from __future__ import annotations

from decimal import Decimal

from ..models import Side
from .gate import Outcome, OrderRequest, PreTradeCheck, RiskContext

HUNDRED = Decimal(100)
ZERO = Decimal(0)
BUY = Side.BUY  # read through the class, an enum member costs a lookup per order


class MinEdgeCheck(PreTradeCheck):
    name = "min_edge"

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        return (req.edge >= self.minimum, "edge {edge:.3f}, min {min}",
                ("edge", "min"), (req.edge, self.minimum))


class MinConfidenceCheck(PreTradeCheck):
    name = "min_confidence"

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        return (req.confidence >= self.minimum, "confidence {conf:.3f}, min {min}",
                ("conf", "min"), (req.confidence, self.minimum))


class ReadinessCheck(PreTradeCheck):
    """The strategy's own readiness (ready / forming / not ready) must be one the profile allows."""

    name = "readiness"

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = frozenset(allowed)
        self.allowed_text = ",".join(sorted(self.allowed))

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        return (req.readiness in self.allowed, "strategy {state}, allowed {allowed}",
                ("state", "allowed"), (req.readiness, self.allowed_text))


class StopLossCheck(PreTradeCheck):
    """A stop is present, on the losing side of the entry, and within its min/max distance."""

    name = "stop_loss"

    def __init__(self, min_pct: Decimal, max_pct: Decimal) -> None:
        self.min_pct = min_pct
        self.max_pct = max_pct

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        stop = req.stop_price
        price = req.price
        if stop is None or stop <= ZERO or price <= ZERO:
            return (False, "no stop loss", (), ())
        buy = req.side is BUY
        right_side = stop < price if buy else stop > price
        dist = abs(price - stop) / price * HUNDRED
        lo, hi = self.min_pct, self.max_pct
        return (
            right_side and lo <= dist <= hi, "stop {stop} {where} entry {price}: {dist:.2f}% within {lo}-{hi}%",
            ("stop", "where", "price", "dist", "lo", "hi"),
            (stop, ("below" if buy else "above") if right_side else "WRONG SIDE of", price, dist, lo, hi),
        )
