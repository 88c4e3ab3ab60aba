"""An order the venue broker had ended on its own word (never reached the venue, never confirmed)
that the venue shows after all is working again in the engine: its fills, its end and its journal
row follow the venue. Before, the engine kept it as rejected: a fill booked on a "rejected" order,
its final FILLED ignored, its row saying rejected for good."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from conftest import ANY_READINESS, LOOSE_RISK, build_profile

from engine.brokers.base import OrderUpdate
from engine.engine import Engine
from engine.models import Fill, Order, OrderPurpose, OrderStatus, OrderType, Side

SYMBOL = "BTC/USD"


async def test_an_order_reopened_by_the_venue_is_working_again_and_ends_filled(tmp_path):
    prof = build_profile(tmp_path, symbols=[SYMBOL], risk={**LOOSE_RISK, **ANY_READINESS}, paper={"latency_ms": 0},
                         control={"socket": False})
    eng = await Engine.open(prof, seed=1)
    try:
        eng.preroll()
        await eng.run(duration=2)
        q = eng.quotes[SYMBOL]
        order = Order(eng.orders.new_id(), SYMBOL, Side.BUY, OrderType.LIMIT, D("0.01"), OrderPurpose.ENTRY,
                      eng.clock.now(), limit_price=(q.bid * D("0.99")).quantize(D("0.01")),
                      protective_stop=(q.bid * D("0.92")).quantize(D("0.01")))
        cid = order.client_order_id
        assert await eng.orders.send(order, "strategy") is True
        now = eng.clock.now()
        # What a venue broker says when it gives up on an order and later finds it at the venue.
        await eng.orders.process_events([OrderUpdate(cid, OrderStatus.REJECTED, now, "never confirmed")])
        assert order.status is OrderStatus.REJECTED and cid not in eng.orders.working
        later = now + timedelta(seconds=5)
        await eng.orders.process_events([
            OrderUpdate(cid, OrderStatus.SUBMITTED, later, "found at venue after rejected (never confirmed)",
                        "V1", reopened=True),
            Fill(cid, SYMBOL, Side.BUY, D("0.01"), order.limit_price, D("0.01"), later, "maker", "T1"),
            OrderUpdate(cid, OrderStatus.FILLED, later),
        ])
        assert order.status is OrderStatus.FILLED and cid not in eng.orders.working
        assert eng.portfolio.positions[SYMBOL].quantity == D("0.01")
        assert eng.orders.stop_order(SYMBOL) is not None  # the entry's protective stop follows its fill
        await eng.journal.flush()
        statuses = [r.data["status"] for r in await eng.journal.rows(kinds=["order"], ref=cid)]
        assert statuses[-3:] == ["rejected", "submitted", "filled"]
    finally:
        await eng.close()
