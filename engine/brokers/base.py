"""The broker interface every venue implements, and the events it reports back."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..models import Fill, Order, OrderStatus, Quote


@dataclass(slots=True)
class OrderUpdate:
    client_order_id: str
    status: OrderStatus
    ts: datetime
    reason: str = ""
    venue_order_id: str | None = None
    # The venue shows an order the broker had ended on its own word (never reached it, never
    # confirmed): working again, so what it does is booked (brokers/polling.py `_reopen`).
    reopened: bool = False


BrokerEvent = OrderUpdate | Fill


class BrokerError(Exception):
    """A venue refused or failed a request; `final` says whether a retry could help."""

    def __init__(self, message: str, *, final: bool) -> None:
        super().__init__(message)
        self.final = final


class Broker(ABC):
    name: str = "broker"
    cash_currency: str = "USD"  # the balance that is the account's cash (crypto spot: its quote asset)

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @abstractmethod
    async def submit(self, order: Order) -> None:
        """Send an order. Its acceptance, fills or rejection arrive as events."""

    @abstractmethod
    async def cancel(self, client_order_id: str) -> bool:
        """True if the venue cancelled it (or it is already gone)."""

    @abstractmethod
    async def open_orders(self) -> list[Order]: ...

    @abstractmethod
    async def fetch_order(self, client_order_id: str) -> Order | None: ...

    @abstractmethod
    async def positions(self) -> dict[str, Decimal]: ...

    @abstractmethod
    async def balances(self) -> dict[str, Decimal]: ...

    @abstractmethod
    def drain_events(self) -> list[BrokerEvent]:
        """Events since the last call, oldest first."""

    async def persist(self) -> None:
        """Paper venues write their own books here; real venues keep theirs."""
        return None

    def persist_soon(self) -> None:
        """Paper venues start writing their books here without waiting; real venues keep theirs."""
        return None

    def on_quote(self, quote: Quote) -> None:
        """Paper venues match on market data; real venues ignore this."""
        return None
