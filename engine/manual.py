"""A manual order as the operator types it (`ManualOrderSpec`) and what it becomes with the gate's
verdict on it (`ManualPreview`): the order form's what-if and the journal's record of the spec.
The actions themselves are engine/operator.py's."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .models import Order
from .money import ZERO
from .risk.gate import Decision


@dataclass(frozen=True, slots=True)
class ManualOrderSpec:
    """What the operator typed. Give a quantity, or a risk in $ (sized over the stop distance
    like a strategy order), or neither (the profile's risk per trade)."""

    symbol: str
    side: str  # buy | sell
    quantity: Decimal | None = None
    risk_usd: Decimal | None = None
    type: str = "market"  # market | limit
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None  # None: the profile's default stop distance
    note: str = ""


@dataclass(frozen=True, slots=True)
class ManualPreview:
    """The order a spec becomes and the gate's verdict on it, as the order form shows it."""

    spec: ManualOrderSpec
    quantity: Decimal = ZERO
    price: Decimal = ZERO  # what the gate judges: the limit, or the touch the order would take
    stop_price: Decimal | None = None
    notional: Decimal = ZERO
    loss_at_stop: Decimal | None = None
    sizing: str = ""
    decision: Decision | None = None
    problem: str | None = None  # why the spec could not become an order at all

    @property
    def approved(self) -> bool:
        return self.problem is None and self.decision is not None and self.decision.approved

    @property
    def refusal(self) -> str | None:
        if self.problem is not None:
            return self.problem
        fail = None if self.decision is None else self.decision.failure
        if fail is None:
            return None
        return f"refused by the risk gate: {fail.name} ({fail.detail})"



def preview_of(spec: ManualOrderSpec, order: Order, price: Decimal, sizing: str, decision: Decision) -> ManualPreview:
    stop = order.protective_stop
    loss = None if stop is None else abs(price - stop) * order.quantity
    return ManualPreview(spec, order.quantity, price, stop, order.quantity * price, loss, sizing, decision)


def spec_dict(spec: ManualOrderSpec) -> dict:
    return {"symbol": spec.symbol, "side": spec.side, "quantity": spec.quantity, "risk_usd": spec.risk_usd,
            "type": spec.type, "limit_price": spec.limit_price, "stop_price": spec.stop_price, "note": spec.note}


