"""An order waiting for approval never stays without an outcome in the journal: the session's
close, a run that ends while the console stays up (`finish_run`), and a restart after a crash
each close it, journaled. Once the run has ended, nothing new is sent."""
from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import orjson
from conftest import run_until

from engine.engine import Engine
from engine.manual import ManualOrderSpec
from engine.models import OrderStatus


def last_order_rows(path: Path, cids: list[str]) -> dict[str, dict]:
    with sqlite3.connect(path) as db:
        rows = db.execute(f"SELECT ref, data FROM events WHERE kind = 'order' AND ref IN "
                          f"({','.join('?' * len(cids))}) ORDER BY seq", cids).fetchall()
    return {ref: orjson.loads(data) for ref, data in rows}


def approval_rows(path: Path) -> dict[str, dict]:
    with sqlite3.connect(path) as db:
        return {ref: orjson.loads(d) for ref, d in
                db.execute("SELECT ref, data FROM events WHERE kind = 'approval' ORDER BY seq").fetchall()}


async def waiting_engine(make_profile) -> Engine:
    eng = await Engine.open(make_profile(approval={"required": True}), seed=3)
    await run_until(eng, lambda: len(eng.approvals) >= 1)
    return eng


async def test_a_session_that_closes_closes_what_waits_for_approval(make_profile, tmp_path):
    eng = await waiting_engine(make_profile)
    waiting = [p.order.client_order_id for p in eng.approvals.items()]
    await eng.close()
    path = tmp_path / "j.sqlite"
    rows = last_order_rows(path, waiting)
    assert {cid: rows[cid]["status"] for cid in waiting} == {cid: "cancelled" for cid in waiting}
    assert all(rows[cid]["reason"] == "session ended before an answer" for cid in waiting)
    answers = approval_rows(path)
    assert all(answers[cid]["result"] == "closed_unanswered" for cid in waiting)


async def test_a_crash_after_a_checkpoint_leaves_no_approval_pending_for_good(make_profile, tmp_path):
    eng = await waiting_engine(make_profile)
    waiting = [p.order.client_order_id for p in eng.approvals.items()]
    await eng.run(duration=180)  # checkpoints are written every simulated minute: one lists it
    still = [cid for cid in waiting if cid in eng.approvals]
    assert still
    await eng.journal.flush()
    await eng.broker.close()  # the process dies here: no close, no session_end
    await eng.journal.close()
    again = await Engine.open(make_profile(approval={"required": True}), seed=3)
    try:
        assert all(again.orders.orders[cid].status is OrderStatus.EXPIRED for cid in still)
        rows = last_order_rows(tmp_path / "j.sqlite", still)
        assert all(rows[cid]["status"] == "expired" and rows[cid]["reason"] == "approval lost in restart"
                   for cid in still)
    finally:
        await again.close()


async def test_a_run_that_has_ended_closes_its_approvals_and_sends_nothing_new(make_profile, tmp_path):
    eng = await waiting_engine(make_profile)
    try:
        waiting = [p.order.client_order_id for p in eng.approvals.items()]
        assert await eng.finish_run("the feed ended") == len(waiting)
        assert len(eng.approvals) == 0 and eng.snapshot().run_finished == "the feed ended"
        assert eng.counters["approvals_closed"] == len(waiting)
        assert not await eng.approve(waiting[0])
        (alert,) = [a for a in eng.alerts._alerts if a.kind == "run_ended"]
        assert alert.severity == "warning" and f"{len(waiting)} order(s) waiting for approval cancelled" in alert.message
        sent = eng.counters["orders"]
        refusal = await eng.submit_manual(ManualOrderSpec("BTC/USD", "buy", Decimal("0.001")))
        assert refusal is not None and refusal.startswith("the run has ended (the feed ended)")
        assert eng.counters["orders"] == sent and len(eng.approvals) == 0
        assert await eng.finish_run("again") == 0  # once
    finally:
        await eng.close()
    rows = last_order_rows(tmp_path / "j.sqlite", waiting)
    assert all(rows[cid]["status"] == "cancelled" and rows[cid]["reason"] == "the feed ended before an answer"
               for cid in waiting)
