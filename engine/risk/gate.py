"""The risk gate: runs every pre-trade check on an order request and records all the results.

The order is refused at the first hard failure, but the decision keeps every check's verdict and
numbers so the journal and the approval pane can show exactly how close each limit was.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Sequence

from ..models import OrderPurpose, Side


class TradingState(str, enum.Enum):
    ACTIVE = "active"
    REDUCE_ONLY = "reduce_only"  # exits allowed, no new entries
    HALTED = "halted"  # latch: nothing leaves except operator close-all


@dataclass(slots=True)
class OrderRequest:
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    stop_price: Decimal | None
    purpose: OrderPurpose
    source: str  # "strategy" | "operator" | "system"
    edge: float = 1.0
    confidence: float = 1.0
    strategy: str = ""
    readiness: str = "ready"
    # The rest of an entry already counted as a trade (e.g. a limit's market fallback).
    continuation: bool = False

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price


@dataclass(slots=True)
class RiskContext:
    """Everything the checks read about the account and the market, gathered once per decision."""

    now: datetime
    trading_state: TradingState
    equity: Decimal
    cash: Decimal
    day_start_equity: Decimal
    pnl_today: Decimal
    open_positions: int
    position_qty: Decimal  # signed, in the request's symbol
    gross_exposure: Decimal
    trades_today: int
    trades_last_hour: int
    seconds_since_last_trade: float | None
    week_start_equity: Decimal = Decimal(0)
    pnl_week: Decimal = Decimal(0)
    symbol_exposure: Decimal = Decimal(0)  # market value held in the request's symbol
    exposure_by_symbol: dict = field(default_factory=dict)
    new_positions_today: int = 0
    new_positions_week: int = 0
    quote: object = None  # the latest Quote of the symbol, or None
    mid: Decimal | None = None  # its mid, computed once for every check that needs it
    quote_age_seconds: float | None = None
    last_good_price: Decimal | None = None  # last mid that passed the spike filter
    recent_volume: Decimal | None = None  # traded in the last minute; None when unknown
    venue_connected: bool = True
    account_blocked: bool = False
    venue_environment: str = "paper"  # what the venue says it is: paper | testnet | live
    mode: str = "paper"

    def __post_init__(self) -> None:
        if self.mid is None and self.quote is not None:
            self.mid = (self.quote.bid + self.quote.ask) / 2


class CheckResult(NamedTuple):
    """One check's verdict. `template` is formatted with `values` only when read, so the gate's
    hot path never pays for string formatting of numbers nobody looks at. A tuple because the
    gate builds dozens per order and a frozen dataclass costs several times more to construct."""

    name: str
    passed: bool
    template: str
    values: dict = {}

    @property
    def detail(self) -> str:
        try:
            return self.template.format(**self.values)
        except (KeyError, ValueError, TypeError):
            return self.template

    def as_dict(self) -> dict:
        # The numbers are always kept; the sentence only for a failure, where a reader starts.
        if self.passed:
            return {"name": self.name, "passed": True, "values": self.values}
        return {"name": self.name, "passed": False, "detail": self.detail, "values": self.values}


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    checks: tuple[CheckResult, ...]
    failed: str | None  # name of the first failing check

    def as_dict(self) -> dict:
        return {
            "approved": self.approved,
            "failed": self.failed,
            "checks": [c.as_dict() for c in self.checks],
        }

    @property
    def failure(self) -> CheckResult | None:
        return next((c for c in self.checks if not c.passed), None)


class PreTradeCheck:
    """One small named rule. `applies_to` says which order purposes it judges."""

    name = "check"
    applies_to: frozenset[OrderPurpose] = frozenset({OrderPurpose.ENTRY})

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:  # pragma: no cover
        raise NotImplementedError


class RiskGate:
    def __init__(self, checks: Sequence[PreTradeCheck]) -> None:
        self.checks = list(checks)
        self._by_purpose = {
            p: [c for c in self.checks if p in c.applies_to] for p in OrderPurpose
        }

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> Decision:
        results = tuple(c.evaluate(req, ctx) for c in self._by_purpose[req.purpose])
        failed = next((r.name for r in results if not r.passed), None)
        return Decision(failed is None, results, failed)
