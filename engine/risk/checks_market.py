"""Checks on the market the order meets: liquidity and price sanity."""
from __future__ import annotations

from decimal import Decimal

from ..models import Side
from .gate import Outcome, OrderRequest, PreTradeCheck, RiskContext

HUNDRED = Decimal(100)
BPS = Decimal(10000)
BUY = Side.BUY  # read through the class, an enum member costs a lookup per order
ZERO = Decimal(0)  # Decimals compare faster with a Decimal than with an int


class PriceValidityCheck(PreTradeCheck):
    """No NaN, no zero or negative prices, no crossed book."""

    name = "price_valid"

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        q = ctx.quote
        if q is None:
            return (False, "no quote for {symbol}", ("symbol",), (req.symbol,))
        bid, ask, price = q.bid, q.ask, req.price
        # Finite first: comparing a Decimal NaN raises instead of answering False.
        ok = (bid.is_finite() and ask.is_finite() and price.is_finite()
              and bid > ZERO and ask >= bid and price > ZERO)
        return (ok, "bid {bid} ask {ask} order {price}",
                ("bid", "ask", "price"), (bid, ask, price))


class DataFreshnessCheck(PreTradeCheck):
    name = "data_fresh"

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        age = ctx.quote_age_seconds
        ok = age is not None and age <= self.max_age
        return (ok, "quote age {age}s, max {max}s",
                ("age", "max"), ("none" if age is None else round(age, 1), self.max_age))


class SpreadCheck(PreTradeCheck):
    name = "spread"

    def __init__(self, max_bps: Decimal) -> None:
        self.max_bps = max_bps

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        q = ctx.quote
        mid = ctx.mid
        if q is None or mid is None or mid <= ZERO:
            return (False, "no usable quote", (), ())
        bps = (q.ask - q.bid) / mid * BPS
        return (bps <= self.max_bps, "spread {bps:.1f} bps, max {max}",
                ("bps", "max"), (bps, self.max_bps))


class VolumeCheck(PreTradeCheck):
    """Order no bigger than a fraction of the last minute's volume and a multiple of the touch."""

    name = "liquidity"

    def __init__(self, volume_fraction: Decimal, book_fraction: Decimal) -> None:
        self.volume_fraction = volume_fraction
        self.book_fraction = book_fraction

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        q = ctx.quote
        touch = None if q is None else (q.ask_size if req.side is BUY else q.bid_size)
        vol = ctx.recent_volume
        # A feed that reports no sizes (zero) tells nothing: only known liquidity can refuse.
        vol_cap = None if not vol else vol * self.volume_fraction
        book_cap = None if not touch else touch * self.book_fraction
        ok = (vol_cap is None or req.quantity <= vol_cap) and (book_cap is None or req.quantity <= book_cap)
        return (ok, "qty {qty}, volume cap {vcap}, book cap {bcap}",
                ("qty", "vcap", "bcap"), (req.quantity, "unknown" if vol_cap is None else vol_cap, "unknown" if book_cap is None else book_cap))


class LimitPriceCheck(PreTradeCheck):
    """A limit price within X % of mid: a fat finger or a stale price must not reach the venue."""

    name = "limit_price"

    def __init__(self, max_pct: Decimal) -> None:
        self.max_pct = max_pct

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        mid = ctx.mid
        if mid is None or mid <= ZERO:
            return (False, "no usable quote", (), ())
        dist = abs(req.price - mid) / mid * HUNDRED
        return (dist <= self.max_pct, "price {dist:.2f}% from mid, max {max}%",
                ("dist", "max"), (dist, self.max_pct))


class SpikeCheck(PreTradeCheck):
    """The current mid has not jumped beyond the configured move from the last good price."""

    name = "price_spike"

    def __init__(self, max_pct: Decimal) -> None:
        self.max_pct = max_pct

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        mid = ctx.mid
        good = ctx.last_good_price
        if mid is None or good is None or good <= ZERO:
            return (mid is not None, "no reference price yet", (), ())
        jump = abs(mid - good) / good * HUNDRED
        return (jump <= self.max_pct, "move {jump:.2f}% from last good {good}, max {max}%",
                ("jump", "good", "max"), (jump, good, self.max_pct))
