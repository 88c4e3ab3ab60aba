"""The approval queue: gate-approved entries wait here for the operator, until a deadline."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .models import Order, Signal
from .risk.gate import Decision


@dataclass(slots=True)
class PendingApproval:
    order: Order
    signal: Signal | None
    decision: Decision
    sizing: str
    deadline: datetime


class ApprovalQueue:
    def __init__(self, timeout_seconds: float) -> None:
        self.timeout = timedelta(seconds=timeout_seconds)
        self._pending: dict[str, PendingApproval] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, cid: str) -> bool:
        return cid in self._pending

    def add(self, order: Order, signal: Signal | None, decision: Decision, sizing: str, now: datetime) -> PendingApproval:
        item = PendingApproval(order, signal, decision, sizing, now + self.timeout)
        self._pending[order.client_order_id] = item
        return item

    def take(self, cid: str) -> PendingApproval | None:
        return self._pending.pop(cid, None)

    def expired(self, now: datetime) -> list[PendingApproval]:
        gone = [p for p in self._pending.values() if p.deadline <= now]
        for p in gone:
            del self._pending[p.order.client_order_id]
        return gone

    def take_all(self) -> list[PendingApproval]:
        items = list(self._pending.values())
        self._pending.clear()
        return items

    def items(self) -> list[PendingApproval]:
        return sorted(self._pending.values(), key=lambda p: p.deadline)

    def symbols(self) -> set[str]:
        return {p.order.symbol for p in self._pending.values()}
