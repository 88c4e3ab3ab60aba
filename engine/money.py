"""Exact money. Quantities, prices, fees and P&L are Decimal from order to journal."""
from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation

ZERO = Decimal(0)
CENT = Decimal("0.01")


def D(value: object) -> Decimal:
    """Decimal from str/int/Decimal; floats go through repr so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:  # pragma: no cover - message path
        raise ValueError(f"not a number: {value!r}") from exc


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def round_step(value: Decimal, step: Decimal) -> Decimal:
    """Round down to a multiple of step: a venue never accepts more than asked."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def fmt_usd(value: Decimal) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(cents(value)):,.2f}"
