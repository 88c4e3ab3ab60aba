"""The order manager's memory: finished orders leave it after KEEP_FINISHED (the journal keeps
them), so an engine running for weeks does not hold every order it ever decided; and the
per-symbol index of working orders follows every change."""
from __future__ import annotations

from datetime import datetime, timedelta

import engine.orders as orders_mod
from conftest import ANY_READINESS, LOOSE_RISK
from engine.models import OrderPurpose, OrderStatus

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


def _index_matches(eng) -> None:
    index = eng.orders._working_by_symbol
    assert all(index.values()), "an empty symbol left in the index"
    assert {cid for same in index.values() for cid in same} == set(eng.orders.working)
    for symbol in eng.profile.symbols:
        for purpose in OrderPurpose:
            scan = any(o.symbol == symbol and o.purpose is purpose for o in eng.orders.working.values())
            assert eng.orders.has_working(symbol, purpose) is scan, (symbol, purpose)


async def test_the_per_symbol_index_of_working_orders_follows_every_change(make_profile, open_engine):
    eng = await open_engine(make_profile(approval={"required": False}, orders={"entry_type": "limit"},
                                         risk={**LOOSE_RISK, **ANY_READINESS}), seed=5)
    for _ in range(12):  # entries, fills, stops placed and replaced, exits, limit timeouts
        await eng.run(duration=1200)
        _index_matches(eng)
    assert any(o.purpose is OrderPurpose.STOP for o in eng.orders.working.values())
    await eng.close_all("operator")  # stops cancelled, exits sent and filled
    await eng.run(duration=60)
    _index_matches(eng)
