"""The simulated market's warm-up after a restart is history the engine reads blind (no orders, no
events handled): the paper venue must not trade restored orders on it. A limit entry that filled
there was booked only an hour of market later, its stop placed after it, and its fill stamped in
the warm-up; the venue now sees the market from the first traded quote, with the engine there."""
from __future__ import annotations

from decimal import Decimal as D

from test_restored_orders import SYMBOL, Quiet, limit_left_working

from engine.engine import Engine
from engine.models import OrderStatus


async def test_a_limit_restored_at_a_restart_does_not_fill_during_the_warm_up(tmp_path):
    # Just under the bid: an hour of the simulated market comes down to it.
    prof, cid, _ = await limit_left_working(tmp_path, 7200, D("0.9995"))
    eng = await Engine.open(prof, seed=1)
    try:
        eng.strategy = Quiet()
        eng.preroll()  # an hour of warm-up; the market comes through the limit on the way
        at_venue = await eng.broker.fetch_order(cid)
        assert at_venue.status is OrderStatus.SUBMITTED and at_venue.filled_qty == 0
        assert not eng.broker.drain_events()
        # Trading: the venue sees the market again, and every fill is heard with its stop.
        started_at = eng.clock.now()
        for _ in range(120):
            await eng.run(duration=30)
            if SYMBOL in eng.portfolio.positions:
                break
        (fill,) = await eng.journal.rows(kinds=["fill"], ref=cid)
        assert fill.ts >= started_at.isoformat()
        stop = eng.orders.stop_order(SYMBOL)
        assert stop is not None and stop.submitted_at is not None
        assert (stop.submitted_at - eng.portfolio.positions[SYMBOL].opened_at).total_seconds() <= 1
    finally:
        await eng.close()
