"""Position sizing: risk a fixed share of equity between entry and stop, then cap it."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .money import ZERO
from .profile import RiskLimits, SizingConfig

HUNDRED = Decimal(100)
QTY_STEP = Decimal("0.000001")
# Size to 98 % of the position cap: a price that moves while an order waits for approval or a
# limit falls back to market must not push the same order over the cap the gate checks.
CAP_HEADROOM = Decimal("0.98")


@dataclass(frozen=True, slots=True)
class SizeDecision:
    quantity: Decimal
    rationale: str


def size_position(
    equity: Decimal, price: Decimal, stop: Decimal, risk: RiskLimits, sizing: SizingConfig
) -> SizeDecision:
    if price <= 0 or equity <= 0:
        return SizeDecision(ZERO, f"no size: price {price} equity {equity}")
    distance = abs(price - stop)
    if distance <= 0:
        return SizeDecision(ZERO, "no size: stop at the entry price")
    risk_usd = equity * risk.risk_per_trade_pct / HUNDRED
    by_risk = risk_usd / distance
    cap_usd = min(equity * risk.max_position_pct / HUNDRED, sizing.max_order_usd) * CAP_HEADROOM
    by_cap = cap_usd / price
    qty = min(by_risk, by_cap).quantize(QTY_STEP, rounding=ROUND_DOWN)
    binding = "risk" if by_risk <= by_cap else "cap"
    notional = qty * price
    why = (
        f"risk {risk.risk_per_trade_pct}% of {equity:.2f} = {risk_usd:.2f} over stop distance "
        f"{distance:.2f} -> {by_risk:.6f}; cap {cap_usd:.2f} -> {by_cap:.6f}; {binding} binds: "
        f"{qty} = {notional:.2f}"
    )
    if notional < sizing.min_order_usd:
        return SizeDecision(ZERO, f"{why}; below min order {sizing.min_order_usd}")
    return SizeDecision(qty, why)
