"""A protective stop the restart finds missing at the venue (no such order: killed before the venue
got it) or ended there with nothing filled (cancelled before an exit that never left) protects
nothing: the position gets a replacement stop at once, the dead one stops counting as working
(status, positions pane), and the difference stays listed for the operator, whose answer then
places nothing more (audit10 #2). Before, the position stayed bare until someone answered.

The venue's side is written into the paper venue's own file between sessions.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.engine import Engine
from engine.models import OrderPurpose, Side
from engine.risk.gate import TradingState
from test_reconcile_safety import Quiet, _holding_eth, venue, warm


async def _held_then_stop_lost(tmp: Path, how: str):
    """Session 1 holds ETH with its stop; the venue then has no such stop (`how`: gone or cancelled)."""
    prof, eng = await _holding_eth(tmp)
    pos = eng.portfolio.positions["ETH/USD"]
    held, stop_price, dead = pos.quantity, pos.stop_price, pos.stop_order_id
    assert stop_price is not None and dead in eng.orders.working
    await eng.close()
    db = venue(tmp)
    if how == "gone":
        db.execute("DELETE FROM orders WHERE client_order_id = ?", (dead,))
    else:
        db.execute("UPDATE orders SET status = 'cancelled' WHERE client_order_id = ?", (dead,))
    db.commit()
    db.close()
    return prof, held, stop_price, dead


def _stops_in(eng: Engine, symbol: str) -> list:
    return [o for o in eng.orders.working.values() if o.symbol == symbol and o.purpose is OrderPurpose.STOP]


async def _venue_stops(eng: Engine, symbol: str) -> list:
    return [o for o in await eng.broker.open_orders() if o.symbol == symbol and o.purpose is OrderPurpose.STOP]


@pytest.mark.parametrize("how,kind", [("gone", "unknown_to_venue"), ("cancelled", "closed_while_down")])
async def test_a_stop_the_venue_does_not_have_is_replaced_at_start_and_the_answer_places_nothing(tmp_path, how, kind):
    prof, held, stop_price, dead = await _held_then_stop_lost(tmp_path, how)
    eng = await Engine.open(prof, seed=2)
    try:
        (d,) = eng.reconciliation
        assert (d.kind, d.client_order_id, d.resolved) == (kind, dead, None)  # still listed for the answer
        assert eng.state is TradingState.REDUCE_ONLY
        # Protected at once, before anyone answers: a working stop at the venue, at the journal's price.
        (stop,) = _stops_in(eng, "ETH/USD")
        assert stop.client_order_id != dead
        assert (stop.side, stop.quantity, stop.stop_price) == (Side.SELL, held, stop_price)
        (at_venue,) = await _venue_stops(eng, "ETH/USD")
        assert at_venue.client_order_id == stop.client_order_id
        pos = eng.portfolio.positions["ETH/USD"]
        assert pos.stop_order_id == stop.client_order_id and pos.stop_price == stop_price
        # The dead stop is no longer shown as working, and the journal says so.
        assert dead not in eng.orders.working
        assert (await eng.journal.rows(["order"], ref=dead))[-1].data["status"] == "cancelled"
        snap = eng.snapshot()
        assert dead not in {o.client_order_id for o in snap.open_orders}
        (row,) = [r for r in snap.positions if r.symbol == "ETH/USD"]
        assert row.stop_order_id == stop.client_order_id
        assert any(a.kind == "stop_restored" for a in eng.alerts.recent())

        # The answer: nothing placed twice, nothing cancelled that protects.
        sent = len(await eng.journal.rows(["decision"]))
        await warm(eng, Quiet())
        assert await eng.resolve_difference(0, "mark_closed") is None
        assert [o.client_order_id for o in _stops_in(eng, "ETH/USD")] == [stop.client_order_id]
        assert [o.client_order_id for o in await _venue_stops(eng, "ETH/USD")] == [stop.client_order_id]
        assert len(await eng.journal.rows(["decision"])) == sent
        assert eng.state is TradingState.ACTIVE
    finally:
        await eng.close()


async def test_the_replacement_survives_another_restart_without_a_second_stop(tmp_path):
    prof, held, stop_price, dead = await _held_then_stop_lost(tmp_path, "gone")
    eng = await Engine.open(prof, seed=2)
    (stop,) = _stops_in(eng, "ETH/USD")
    await eng.close()  # unanswered
    eng = await Engine.open(prof, seed=3)
    try:
        assert not eng.reconciliation  # the dead stop was journaled as such: nothing left to differ
        assert [o.client_order_id for o in _stops_in(eng, "ETH/USD")] == [stop.client_order_id]
        assert [o.client_order_id for o in await _venue_stops(eng, "ETH/USD")] == [stop.client_order_id]
    finally:
        await eng.close()
