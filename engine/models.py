"""The nouns every part of the engine shares. Plain dataclasses: cheap to build at tick rate."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> "Side":
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(str, enum.Enum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class OrderStatus(str, enum.Enum):
    NEW = "new"
    PENDING_APPROVAL = "pending_approval"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_working(self) -> bool:
        return self in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)


# A set, for hot paths that test membership without the property call.
TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class OrderPurpose(str, enum.Enum):
    ENTRY = "entry"
    STOP = "stop"  # protective stop of an open position
    EXIT = "exit"  # close-all / manual close


@dataclass(slots=True)
class Quote:
    symbol: str
    ts: datetime
    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal
    last: Decimal
    volume: Decimal = Decimal(0)

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(slots=True)
class Signal:
    symbol: str
    side: Side
    edge: float
    confidence: float
    stop_price: Decimal
    price: Decimal
    reason: str
    strategy: str
    ts: datetime


@dataclass(slots=True)
class Order:
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    purpose: OrderPurpose
    created_at: datetime
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    status: OrderStatus = OrderStatus.NEW
    filled_qty: Decimal = Decimal(0)
    avg_fill_price: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    venue_order_id: str | None = None
    submitted_at: datetime | None = None
    reason: str = ""
    # Entry orders carry the stop their position must get once filled.
    protective_stop: Decimal | None = None
    parent_id: str | None = None

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_qty


@dataclass(slots=True)
class Fill:
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    ts: datetime
    liquidity: str  # "maker" | "taker"
    fill_id: str = ""
    # A fee the venue charged in a third asset (Binance's BNB), e.g. "0.00042 BNB": not in `fee`,
    # nor in cash or P&L, since the engine has no price for that asset; journaled and alerted.
    unbooked_fee: str = ""


@dataclass(slots=True)
class Position:
    symbol: str
    quantity: Decimal = Decimal(0)  # signed: >0 long, <0 short
    avg_price: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    last_price: Decimal = Decimal(0)
    stop_price: Decimal | None = None
    stop_order_id: str | None = None
    opened_at: datetime | None = None
    # The client id of the order whose fill opened it: who opened it (the operator's manual orders
    # are not the strategy's to exit, engine/operator.py). None when unknown (adopted at the venue).
    opening_order: str | None = None

    @property
    def side(self) -> Side | None:
        if self.quantity > 0:
            return Side.BUY
        if self.quantity < 0:
            return Side.SELL
        return None

    @property
    def unrealized_pnl(self) -> Decimal:
        if self.quantity == 0:
            return Decimal(0)
        return (self.last_price - self.avg_price) * self.quantity

    @property
    def market_value(self) -> Decimal:
        return abs(self.quantity) * self.last_price


@dataclass(slots=True)
class Alert:
    severity: str  # info | warning | critical
    kind: str
    message: str
    ts: datetime
    seq: int = 0
    acknowledged: bool = False
    data: dict = field(default_factory=dict)
