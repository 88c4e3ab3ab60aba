"""The risk gate: runs every pre-trade check on an order request and records all the results.

The order is refused at the first hard failure, but the decision keeps every check's verdict and
numbers so the journal and the approval pane can show exactly how close each limit was.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Callable, NamedTuple, Sequence

from ..models import OrderPurpose, Side


class TradingState(str, enum.Enum):
    ACTIVE = "active"
    REDUCE_ONLY = "reduce_only"  # exits allowed, no new entries
    HALTED = "halted"  # latch: nothing leaves except operator close-all


@dataclass(slots=True, init=False)
class OrderRequest:
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    stop_price: Decimal | None
    purpose: OrderPurpose
    source: str  # "strategy" | "operator" | "system"
    edge: float
    confidence: float
    strategy: str
    readiness: str
    # The rest of an entry already counted as a trade (e.g. a limit's market fallback).
    continuation: bool
    notional: Decimal = field(init=False)  # quantity x price, computed once: half the checks read it

    def __init__(self, symbol: str, side: Side, quantity: Decimal, price: Decimal, stop_price: Decimal | None,
                 purpose: OrderPurpose, source: str, edge: float = 1.0, confidence: float = 1.0,
                 strategy: str = "", readiness: str = "ready", continuation: bool = False) -> None:
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.price = price
        self.stop_price = stop_price
        self.purpose = purpose
        self.source = source
        self.edge = edge
        self.confidence = confidence
        self.strategy = strategy
        self.readiness = readiness
        self.continuation = continuation
        self.notional = quantity * price


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
    # For an entry, the account figures above already count the entries sent and not filled yet
    # (held plus working: engine/gate_wiring.py); this many such orders were counted.
    working_entries: int = 0
    position_avg: Decimal = Decimal(0)  # average price of what is held in the request's symbol
    position_stop: Decimal | None = None  # the stop of what is held in the request's symbol
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
    state_reason: str = ""  # why trading is not active (the engine's halt_reason), for the record

    def __post_init__(self) -> None:
        if self.mid is None and self.quote is not None:
            self.mid = (self.quote.bid + self.quote.ask) / 2


# What a check's `judge` returns: (passed, template, names, numbers), the names a constant tuple
# and the numbers in the same order. Plain tuples because the gate builds dozens per order:
# a NamedTuple, a dataclass or even a dict per check cost several times more; the dict of
# values is made only when someone reads it (the journal, the approval pane).
Outcome = tuple  # (bool, str, tuple[str, ...], tuple)


class CheckResult(NamedTuple):
    """One check's verdict. `template` is formatted with `values` only when read, so the gate's
    hot path never pays for string formatting of numbers nobody looks at."""

    name: str
    passed: bool
    template: str
    values: dict = {}

    @property
    def detail(self) -> str:
        return _detail(self.template, self.values)

    def as_dict(self) -> dict:
        return _check_dict(self.name, self.passed, self.template, self.values)


def _detail(template: str, values: dict) -> str:
    try:
        return template.format(**values)
    except (KeyError, ValueError, TypeError):
        return template


def _check_dict(name: str, passed: bool, template: str, values: dict) -> dict:
    # The numbers are always kept; the sentence only for a failure, where a reader starts.
    if passed:
        return {"name": name, "passed": True, "values": values}
    return {"name": name, "passed": False, "detail": _detail(template, values), "values": values}


def _row(name: str, o: Outcome) -> dict:
    """One check's journal row: {name, passed, values} (+ detail when it failed)."""
    if o[0]:
        return {"name": name, "passed": True, "values": dict(zip(o[2], o[3]))}
    return _check_dict(name, False, o[1], dict(zip(o[2], o[3])))


class CheckNames(tuple):
    """One purpose's check names in the gate's order, and the journal encoder made for them.

    The encoder is compiled from the first decision's outcomes: a dict display per check with
    that check's value names, guarded by the identity of its names tuple (a check that answers
    with other names, or fails, takes the general path). It builds the same rows as `_row` in
    about half the time; the decision row was the largest cost of the journal per order."""

    encoder = None


def _compile_rows(names: CheckNames, sample: list | tuple) -> Callable[[list], list[dict]]:
    scope: dict = {"row": _row}
    items = []
    for i, (name, o) in enumerate(zip(names, sample)):
        scope[f"N{i}"], scope[f"T{i}"] = name, o[2]
        values = []
        for j, key in enumerate(o[2]):
            scope[f"K{i}_{j}"] = key  # names reach the code as variables, never as source text
            values.append(f"K{i}_{j}: o{i}[3][{j}]")
        items.append(f'        {{"name": N{i}, "passed": True, "values": {{{", ".join(values)}}}}}'
                     f" if o{i}[0] and o{i}[2] is T{i} else row(N{i}, o{i}),\n")
    unpack = "".join(f"o{i}, " for i in range(len(items)))
    src = ("def encode(outcomes):\n"
           + (f"    {unpack}= outcomes\n" if items else "")
           + "    return [\n" + "".join(items) + "    ]\n")
    exec(compile(src, f"<decision rows: {len(items)} checks>", "exec"), scope)
    return scope["encode"]


def _result(name: str, outcome: Outcome) -> CheckResult:
    passed, template, keys, numbers = outcome
    return CheckResult(name, passed, template, dict(zip(keys, numbers)))


class Decision:
    """The gate's verdict on one order and every check's outcome, in the gate's order.

    The outcomes are kept as the checks returned them, next to the shared tuple of names; the
    CheckResult views are built only when someone reads `checks` (the approval pane, a test)."""

    __slots__ = ("approved", "failed", "_names", "_outcomes", "_checks")

    def __init__(self, approved: bool, checks: tuple[CheckResult, ...] | None, failed: str | None, *,
                 names: tuple[str, ...] = (), outcomes: list | tuple = ()) -> None:
        self.approved = approved
        self.failed = failed  # name of the first failing check
        self._checks = checks
        if checks is not None:
            names = tuple(c.name for c in checks)
            outcomes = [(c.passed, c.template, tuple(c.values), tuple(c.values.values())) for c in checks]
        self._names = names
        self._outcomes = outcomes

    @property
    def checks(self) -> tuple[CheckResult, ...]:
        if self._checks is None:
            self._checks = tuple(_result(n, o) for n, o in zip(self._names, self._outcomes))
        return self._checks

    def as_dict(self) -> dict:
        return {"approved": self.approved, "failed": self.failed, "checks": self.checks_as_dicts()}

    def checks_as_dicts(self) -> list[dict]:
        names, outcomes = self._names, self._outcomes
        if type(names) is not CheckNames or len(outcomes) != len(names):
            return [_row(n, o) for n, o in zip(names, outcomes)]
        encode = names.encoder
        if encode is None:
            encode = names.encoder = _compile_rows(names, outcomes)
        return encode(outcomes)

    def refused_by(self, name: str) -> "Decision":
        """The same outcomes, refused by a rule outside the checks (e.g. sizing found no size)."""
        return Decision(False, None, name, names=self._names, outcomes=self._outcomes) \
            if self._checks is None else Decision(False, self._checks, name)

    @property
    def failure(self) -> CheckResult | None:
        return next((c for c in self.checks if not c.passed), None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and (self.approved, self.failed, self.checks) == (
            other.approved, other.failed, other.checks)

    def __repr__(self) -> str:
        return f"Decision(approved={self.approved}, failed={self.failed!r}, checks={len(self._names)})"


class PreTradeCheck:
    """One small named rule. `applies_to` says which order purposes it judges.

    Subclasses implement `judge`, returning an Outcome; `evaluate` wraps that in a CheckResult
    for callers outside the gate's hot path."""

    name = "check"
    applies_to: frozenset[OrderPurpose] = frozenset({OrderPurpose.ENTRY})

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:  # pragma: no cover
        raise NotImplementedError

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> CheckResult:
        return _result(self.name, self.judge(req, ctx))


class RiskGate:
    def __init__(self, checks: Sequence[PreTradeCheck]) -> None:
        self.checks = list(checks)
        # Per purpose: one function calling the bound judges (no attribute lookups per order).
        self._by_purpose = {
            p: _compile(CheckNames(c.name for c in self.checks if p in c.applies_to),
                        tuple(c.judge for c in self.checks if p in c.applies_to))
            for p in OrderPurpose
        }

    def evaluate(self, req: OrderRequest, ctx: RiskContext) -> Decision:
        return self._by_purpose[req.purpose](req, ctx)


def _refused(names: tuple[str, ...], outcomes: list) -> Decision:
    first = next(i for i, o in enumerate(outcomes) if not o[0])
    return Decision(False, None, names[first], names=names, outcomes=outcomes)


def _compile(names: tuple[str, ...], judges: tuple) -> Callable[[OrderRequest, RiskContext], Decision]:
    """The gate's loop over one purpose's judges, written out as straight-line code.

    A loop calls every judge from one call site, which the interpreter cannot specialise for 29
    different functions; one line per judge lets each call site specialise, and the all-passed
    test becomes a chain of `and`s: about a fifth less time for the checks (bench/gate.py). The
    source is built from indices only, never from a check's name or any other text."""
    n = len(judges)
    params = ", ".join(f"j{i}" for i in range(n))
    calls = "".join(f"        o{i} = j{i}(req, ctx)\n" for i in range(n))  # every check runs
    outcomes = ", ".join(f"o{i}" for i in range(n))
    passed = " and ".join(f"o{i}[0]" for i in range(n)) or "True"
    src = (f"def bind({params}):\n"
           f"    def evaluate(req, ctx):\n{calls}"
           f"        outcomes = [{outcomes}]\n"
           f"        if {passed}:\n"
           f"            return Decision(True, None, None, names=names, outcomes=outcomes)\n"
           f"        return refused(names, outcomes)\n"
           f"    return evaluate\n")
    scope = {"Decision": Decision, "refused": _refused, "names": names}
    exec(compile(src, f"<risk gate: {n} checks>", "exec"), scope)
    return scope["bind"](*judges)
