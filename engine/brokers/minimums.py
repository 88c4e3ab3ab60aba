"""What a venue will not take: an amount too small for any order at a crypto spot market.

A fee paid in the bought asset (Binance without BNB, Bybit spot buys) leaves the account holding
a quantity that is not a multiple of the market's step; selling it truncates to the step and a
remainder stays behind. When that remainder rounds to nothing at the step, or is under the
market's minimum amount, or under its minimum notional at the price, no order can ever sell it:
the engine holds it as dust (engine/portfolio.py) instead of a position it would try to protect.
The rules are the ones `CcxtBroker.prepare` refuses an order by, from ccxt's loaded markets.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


def _dec(x: Any) -> Decimal | None:
    if x is None or x == "":
        return None
    try:
        return Decimal(str(x))
    except (InvalidOperation, ValueError):
        return None


def below_minimum(ex: Any, symbol: str, quantity: Decimal, price: Decimal) -> bool:
    """True when no order of `quantity` (at about `price`) would pass the market's minimums.
    Unknown market or no markets loaded: False (never guess something away)."""
    if ex is None or not getattr(ex, "markets", None) or symbol not in ex.markets or quantity <= 0:
        return False
    try:
        amount = _dec(ex.amount_to_precision(symbol, str(quantity))) or Decimal(0)
    except Exception:  # noqa: BLE001 - ccxt refuses an amount that truncates to 0 at the step
        return True
    if amount <= 0:
        return True
    limits = ex.market(symbol).get("limits") or {}
    a_min = _dec((limits.get("amount") or {}).get("min"))
    c_min = _dec((limits.get("cost") or {}).get("min"))
    if a_min is not None and amount < a_min:
        return True
    return c_min is not None and price > 0 and amount * price < c_min
