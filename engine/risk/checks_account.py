"""Checks on capital, size, concentration, position counts and losses."""
from __future__ import annotations

from decimal import Decimal

from ..models import Side
from .gate import Outcome, OrderRequest, PreTradeCheck, RiskContext

HUNDRED = Decimal(100)
ZERO = Decimal(0)
BUY = Side.BUY  # read through the class, an enum member costs a lookup per order


class BuyingPowerCheck(PreTradeCheck):
    """Cash covers a buy, with what it costs beyond its notional (fee, slippage)."""

    name = "buying_power"

    def __init__(self, cost_rate: Decimal) -> None:
        self.cost_rate = cost_rate
        self.with_costs = 1 + cost_rate

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        need = req.notional * self.with_costs if req.side is BUY else ZERO
        cash = ctx.cash
        return (need <= cash, "needs {need:.2f}, cash {cash:.2f}", ("need", "cash"), (need, cash))


class CashReserveCheck(PreTradeCheck):
    """Cash left after the order, with what it costs beyond its notional, stays above the reserve
    share of equity: counted without them, an entry that exactly fit left the cash under it."""

    name = "cash_reserve"

    def __init__(self, reserve_pct: Decimal, cost_rate: Decimal) -> None:
        self.reserve_pct = reserve_pct
        self.frac = reserve_pct / HUNDRED
        self.with_costs = 1 + cost_rate

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        after = ctx.cash - (req.notional * self.with_costs if req.side is BUY else ZERO)
        floor = ctx.equity * self.frac
        return (after >= floor, "cash after {after:.2f}, reserve {floor:.2f} ({pct}%)",
                ("after", "floor", "pct"), (after, floor, self.reserve_pct))


class TotalCapitalCheck(PreTradeCheck):
    name = "total_capital"

    def __init__(self, max_usd: Decimal) -> None:
        self.max_usd = max_usd

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        after = ctx.gross_exposure + req.notional
        return (after <= self.max_usd, "deployed after {after:.2f}, max {max}",
                ("after", "max"), (after, self.max_usd))


class PositionSizeCheck(PreTradeCheck):
    """Position value after the order within max % of equity and max USD; the order above the minimum."""

    name = "position_size"

    def __init__(self, max_pct: Decimal, max_usd: Decimal, min_usd: Decimal) -> None:
        self.max_pct = max_pct
        self.frac = max_pct / HUNDRED
        self.max_usd = max_usd
        self.min_usd = min_usd

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        value = (abs(ctx.position_qty) + req.quantity) * req.price
        cap = ctx.equity * self.frac
        if self.max_usd < cap:
            cap = self.max_usd
        notional, least = req.notional, self.min_usd
        return (value <= cap and notional >= least, "position {value:.2f}, cap {cap:.2f}; order {order:.2f}, min {min}",
                ("value", "cap", "order", "min"), (value, cap, notional, least))


class SymbolConcentrationCheck(PreTradeCheck):
    name = "symbol_concentration"

    def __init__(self, max_pct: Decimal) -> None:
        self.max_pct = max_pct
        self.frac = max_pct / HUNDRED

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        after = ctx.symbol_exposure + req.notional
        cap = ctx.equity * self.frac
        return (after <= cap, "{symbol} exposure after {after:.2f}, cap {cap:.2f}",
                ("symbol", "after", "cap"), (req.symbol, after, cap))


class GroupConcentrationCheck(PreTradeCheck):
    """Exposure across each configured group of correlated symbols the order belongs to."""

    name = "group_concentration"

    def __init__(self, groups: dict[str, list[str]], max_pct: Decimal) -> None:
        self.max_pct = max_pct
        self.groups_of: dict[str, list[tuple[str, list[str]]]] = {}
        for g, members in groups.items():
            for s in members:
                self.groups_of.setdefault(s, []).append((g, members))

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        groups = self.groups_of.get(req.symbol)
        if not groups:
            return (True, "{symbol} in no group", ("symbol",), (req.symbol,))
        cap = ctx.equity * self.max_pct / HUNDRED
        held = ctx.exposure_by_symbol
        worst_name, worst = "", ZERO
        for g, members in groups:
            # A member not held adds nothing, not even to the exponent: the sum starts at ZERO.
            total = ZERO
            for s in members:
                v = held.get(s)
                if v is not None:
                    total += v
            total += req.notional
            if total >= worst:
                worst_name, worst = g, total
        return (worst <= cap, "group {group} exposure after {after:.2f}, cap {cap:.2f}",
                ("group", "after", "cap"), (worst_name, worst, cap))


class MaxOpenPositionsCheck(PreTradeCheck):
    name = "max_open_positions"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        # An entry still working counts as the position it will open.
        after = ctx.open_positions + (1 if ctx.position_qty == ZERO else 0)
        return (after <= self.limit, "open after {after} (entries working {working}), max {limit}",
                ("after", "limit", "working"), (after, self.limit, ctx.working_entries))


class NewPositionsCheck(PreTradeCheck):
    """New positions opened in the venue day or the ISO week."""

    def __init__(self, period: str, limit: int) -> None:
        self.period = period
        self.name = f"new_positions_per_{period}"
        self.limit = limit
        self.daily = period == "day"

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        count = ctx.new_positions_today if self.daily else ctx.new_positions_week
        opens = ctx.position_qty == ZERO and not req.continuation
        ok = not opens or count < self.limit
        return (ok, "opened this {period} {count}, max {limit}",
                ("period", "count", "limit"), (self.period, count, self.limit))


class SingleTradeLossCheck(PreTradeCheck):
    """Loss at the stop (quantity x stop distance, plus fees both ways) within the USD cap and the
    risk-per-trade share of equity, whichever is tighter."""

    name = "single_trade_loss"

    def __init__(self, max_usd: Decimal, risk_pct: Decimal, fee_rate: Decimal) -> None:
        self.max_usd = max_usd
        self.risk_pct = risk_pct
        self.risk_frac = risk_pct / HUNDRED
        self.fee_rate = fee_rate

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        stop = req.stop_price
        if stop is None:
            return (False, "no stop: loss unbounded", (), ())
        price, qty = req.price, req.quantity
        fees = (price + stop) * qty * self.fee_rate
        loss = abs(price - stop) * qty + fees
        held = ctx.position_qty
        if held and (held > 0) == (req.side is BUY):
            # An add is one trade with what is held (and a limit's market fallback with the part
            # already filled): the whole position's loss at the stop it will have counts, what is
            # held from its own average. Judged alone, every add spent a fresh cap, and a fallback
            # after the price ran up took the trade's loss past it. Entries sent but not filled
            # have no average yet: this price.
            own = ctx.position_stop
            if own is not None and (own > stop if held > 0 else own < stop):
                # The position keeps the tighter of its stop and the add's (never loosened).
                stop = own
                fees = (price + stop) * qty * self.fee_rate
                loss = abs(price - stop) * qty + fees
            held = abs(held)
            avg = ctx.position_avg or price
            held_fees = (avg + stop) * held * self.fee_rate
            loss += abs(avg - stop) * held + held_fees
            fees += held_fees
        # Sizing spends exactly the risk share before fees; fees ride on top of it.
        cap = ctx.equity * self.risk_frac + fees
        if self.max_usd < cap:
            cap = self.max_usd
        return (loss <= cap, "loss at stop {loss:.2f}, cap {cap:.2f}",
                ("loss", "cap"), (loss, cap))


class LossLimitCheck(PreTradeCheck):
    """Loss so far this day (or week) below the tighter of the % and the USD limit."""

    def __init__(self, period: str, limit_pct: Decimal, limit_usd: Decimal | None) -> None:
        self.period = period
        self.name = f"{'daily' if period == 'day' else 'weekly'}_loss"
        self.limit_pct = limit_pct
        self.limit_usd = limit_usd
        self.daily = period == "day"
        # (starting equity, the limit worked out for it), one tuple so a reader never pairs them wrong
        self._limit_for: tuple[Decimal | None, Decimal] = (None, ZERO)

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        if self.daily:
            pnl, base = ctx.pnl_today, ctx.day_start_equity
        else:
            pnl, base = ctx.pnl_week, ctx.week_start_equity
        known, limit = self._limit_for
        if base is not known:
            # The limit moves only with the period's starting equity (the engine keeps the same
            # object all period), so it is worked out once a period, not once an order.
            limit = base * self.limit_pct / HUNDRED
            if self.limit_usd is not None and self.limit_usd < limit:
                limit = self.limit_usd
            self._limit_for = (base, limit)
        loss = -pnl if pnl < ZERO else ZERO
        return (loss < limit, "loss this {period} {loss:.2f}, limit {limit:.2f}",
                ("period", "loss", "limit"), (self.period, loss, limit))


class StageCapCheck(PreTradeCheck):
    """The stage's capital cap and max position (micro $500 / $10, small $1,000 / $50, ...)."""

    name = "stage_cap"

    def __init__(self, stage: str, max_capital: Decimal | None, max_position: Decimal | None) -> None:
        self.stage = stage
        self.max_capital = max_capital
        self.max_position = max_position

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        deployed = ctx.gross_exposure + req.notional
        position = (abs(ctx.position_qty) + req.quantity) * req.price
        ok = (self.max_capital is None or deployed <= self.max_capital) and (
            self.max_position is None or position <= self.max_position)
        return (
            ok, "stage {stage}: deployed {deployed:.2f} of {cap}, position {position:.2f} of {pos}",
            ("stage", "deployed", "cap", "position", "pos"), (self.stage, deployed, self.max_capital or "no cap", position, self.max_position or "no cap"),
        )
