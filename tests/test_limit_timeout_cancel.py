"""A limit entry past its timeout falls back to market only once the venue has ended it: while its
cancel is refused, or sent with the outcome unknown (a venue that answers a cancel with ids only
and then cannot be read), the limit may still fill, and a fallback sized from it would buy the
rest twice. The cancel is asked again until the venue ends the order; the operator hears once."""
from __future__ import annotations

from decimal import Decimal

from test_engine_headless import CSV_SYMBOL, _csv_profile

from engine.engine import Engine
from engine.models import Order, OrderPurpose, OrderType, Side


async def test_the_fallback_waits_for_the_venue_to_end_the_timed_out_limit(tmp_path):
    eng = await Engine.open(_csv_profile(tmp_path))
    try:
        broker = eng.broker
        real_cancel = broker.cancel
        refused: list[str] = []

        async def cancel_refused_twice(cid: str) -> bool:
            if len(refused) < 2:
                refused.append(cid)
                return False  # the venue's answer could not be read: the order may still work
            return await real_cancel(cid)

        broker.cancel = cancel_refused_twice
        await eng.run(duration=2)
        order = Order(eng.orders.new_id(), CSV_SYMBOL, Side.BUY, OrderType.LIMIT, Decimal("5"), OrderPurpose.ENTRY,
                      eng.clock.now(), limit_price=Decimal("99.50"), protective_stop=Decimal("92.00"))
        assert await eng.orders.send(order, "strategy") is True
        cid = order.client_order_id
        await eng.run(duration=31)  # just past the 30 s timeout: the first cancel is refused
        assert refused == [cid]
        assert cid in eng.orders.working
        assert not [o for o in eng.orders.orders.values() if o.parent_id == cid], "fallback sent beside a working limit"
        alerts = [a for a in eng.alerts.recent() if a.kind == "entry_not_cancelled"]
        assert len(alerts) == 1 and cid in alerts[0].message
        await eng.run(duration=30)  # asked again (refused once more), then ended: the fallback follows
        assert refused == [cid, cid]
        assert cid not in eng.orders.working
        (child,) = [o for o in eng.orders.orders.values() if o.parent_id == cid]
        assert child.quantity == Decimal("5") and eng.portfolio.positions[CSV_SYMBOL].quantity == Decimal("5")
        assert len([a for a in eng.alerts.recent() if a.kind == "entry_not_cancelled"]) == 1
    finally:
        await eng.close()
