"""The paper venue is a cash account, as a spot venue is: a buy the balance cannot pay for (price,
slippage and fee) is refused by the venue, never filled into negative cash."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest

from engine.brokers.base import OrderUpdate
from engine.brokers.paper import PaperBroker
from engine.clock import SimClock
from engine.models import Fill, Order, OrderPurpose, OrderStatus, OrderType, Quote, Side
from engine.profile import PaperConfig

T0 = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)


def broker(cash: str) -> PaperBroker:
    # No slippage; a 0.1 % taker fee: 1 at an ask of 100 costs 100.10.
    b = PaperBroker(PaperConfig(starting_cash=D(cash), latency_ms=0, slippage_bps=0, taker_fee_bps=10), SimClock(T0))
    b.on_quote(Quote("BTC/USD", T0, D("99.90"), D("100"), D(10), D(10), D("99.95")))
    return b


@pytest.mark.parametrize("cash, filled", [("100.10", True), ("100.09", False)])
async def test_a_buy_the_cash_cannot_pay_for_is_refused_by_the_venue(cash, filled):
    b = broker(cash)
    await b.submit(Order("c1", "BTC/USD", Side.BUY, OrderType.MARKET, D(1), OrderPurpose.ENTRY, T0))
    events = b.drain_events()
    fills = [e for e in events if isinstance(e, Fill)]
    (last,) = [e for e in events if isinstance(e, OrderUpdate)][-1:]
    if filled:
        assert len(fills) == 1 and last.status is OrderStatus.FILLED and b.cash == 0
    else:
        assert fills == [] and last.status is OrderStatus.REJECTED and "insufficient balance" in last.reason
        assert b.cash == D(cash) and await b.positions() == {}


@pytest.mark.parametrize("sell, filled", [("1", True), ("1.00000001", False)])
async def test_a_sell_beyond_what_is_held_is_refused_by_the_venue(sell, filled):
    """Nor does the venue lend the asset: a sell of more than is held (a stop firing just after an
    exit filled) is refused, never a short on a spot account."""
    b = broker("1000")
    await b.submit(Order("c1", "BTC/USD", Side.BUY, OrderType.MARKET, D(1), OrderPurpose.ENTRY, T0))
    b.drain_events()
    cash = b.cash
    await b.submit(Order("c2", "BTC/USD", Side.SELL, OrderType.MARKET, D(sell), OrderPurpose.EXIT, T0))
    events = b.drain_events()
    fills = [e for e in events if isinstance(e, Fill)]
    (last,) = [e for e in events if isinstance(e, OrderUpdate)][-1:]
    if filled:
        assert len(fills) == 1 and last.status is OrderStatus.FILLED and await b.positions() == {}
    else:
        assert fills == [] and last.status is OrderStatus.REJECTED and "insufficient balance" in last.reason
        assert "holds 1" in last.reason
        assert b.cash == cash and await b.positions() == {"BTC/USD": D(1)}
