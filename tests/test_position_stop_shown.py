"""A position shows a stop only while a stop order works at the venue for all of it: after the venue
refused the stop (critical stop_rejected), the positions pane and `status` say NO STOP instead of
the planned price, which had looked like protection."""
from __future__ import annotations

from decimal import Decimal as D

from conftest import ANY_READINESS, LOOSE_RISK, run_until

from console.widgets.positions import position_cells
from engine.brokers.base import OrderUpdate
from engine.models import OrderStatus
from engine.operator import ManualOrderSpec


async def test_a_position_whose_stop_the_venue_refused_shows_no_stop(make_profile, open_engine):
    eng = await open_engine(make_profile(symbols=["ETH/USD"], approval={"required": False}, paper={"latency_ms": 0},
                                         risk={**LOOSE_RISK, **ANY_READINESS, "min_edge": 0.999, "min_confidence": 0.999}))
    eng.preroll()
    assert await eng.submit_manual(ManualOrderSpec("ETH/USD", "buy", quantity=D("0.1"))) is None
    await run_until(eng, lambda: eng.orders.stop_order("ETH/USD") is not None, step=1, limit=30)
    (view,) = eng.snapshot().positions
    assert view.stop_working and "NO STOP" not in [c[0] for c in position_cells(view)]
    stop = eng.orders.stop_order("ETH/USD")
    await eng.orders.process_events([OrderUpdate(stop.client_order_id, OrderStatus.REJECTED, eng.clock.now(),
                                                 "insufficient balance")])
    assert any(a.kind == "stop_rejected" for a in eng.alerts.recent())
    await eng.journal.flush()  # the screen shows what the journal holds
    (view,) = eng.snapshot().positions
    assert view.stop_price is not None and not view.stop_working
    cells = [c[0] for c in position_cells(view)]
    assert cells.count("NO STOP") == 2  # the risk meter and the stop column
    assert view.stop_price is not None and str(view.stop_price) not in " ".join(cells)
    # `tradeconsole status`: the planned price is named, not shown as protection.
    import orjson

    from console.cli_control import status_lines
    from engine.control.server import status_reply
    from engine.journal import _dumps

    reply = orjson.loads(_dumps(status_reply(eng)))  # as it crosses the socket
    line = next(x for x in status_lines(reply) if x.strip().startswith("ETH/USD"))
    assert f"NO STOP working (planned {view.stop_price})" in line
