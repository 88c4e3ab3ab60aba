"""Finished orders leave memory after KEEP_FINISHED (the journal keeps them): an engine running for
weeks must not hold every order it ever decided."""
from __future__ import annotations

from datetime import datetime, timedelta

import engine.orders as orders_mod
from conftest import ANY_READINESS, LOOSE_RISK
from engine.models import OrderStatus

KEEP = timedelta(hours=2)
HOURLY = timedelta(hours=1)  # the engine forgets at most once an hour


async def test_finished_orders_are_forgotten_after_the_retention_and_nothing_else(
        make_profile, open_engine, monkeypatch):
    monkeypatch.setattr(orders_mod, "KEEP_FINISHED", KEEP)
    eng = await open_engine(make_profile(approval={"required": False}, risk={**LOOSE_RISK, **ANY_READINESS}), seed=5)
    await eng.run(duration=6 * 3600)
    now = eng.clock.now()
    finished_at: dict[str, datetime] = {}
    for row in await eng.journal.rows(["order"]):
        if OrderStatus(row.data["status"]).is_terminal:
            finished_at[row.ref] = datetime.fromisoformat(row.ts)
    held = eng.orders.orders
    long_done = [cid for cid, ts in finished_at.items() if ts < now - KEEP - HOURLY]
    recent = [cid for cid, ts in finished_at.items() if ts >= now - KEEP]
    assert long_done and recent, (len(long_done), len(recent))
    assert not [cid for cid in long_done if cid in held], "finished long ago, still in memory"
    assert not [cid for cid in long_done if cid in eng._signals], "their signals are still in memory"
    assert all(cid in held for cid in recent), "forgotten before KEEP_FINISHED had passed"
    assert all(cid in held for cid in eng.orders.working), "a working order was forgotten"
    assert eng.orders.working, "no working order (protective stop) to check"
    # The journal still has every one of them.
    assert set(long_done) <= {r.ref for r in await eng.journal.rows(["order"])}


async def test_a_working_order_is_kept_however_old(make_profile, open_engine, monkeypatch):
    """A protective stop lives as long as its position: days are nothing to it."""
    monkeypatch.setattr(orders_mod, "KEEP_FINISHED", timedelta(seconds=1))
    eng = await open_engine(make_profile(approval={"required": False}, risk={**LOOSE_RISK, **ANY_READINESS}), seed=5)
    await eng.run(duration=2 * 3600)
    stops = [cid for cid, o in eng.orders.working.items() if o.purpose.value == "stop"]
    assert stops
    eng.orders.forget_finished(eng.clock.now() + timedelta(days=30))
    assert all(cid in eng.orders.orders for cid in stops)
