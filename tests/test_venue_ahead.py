"""The paper venue's own books are always ahead of the journal: at every journal commit (any one
could be the last before a kill -9), each fill the journal holds is already in the venue's file."""
from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal

import orjson
import pytest

from conftest import ANY_READINESS, LOOSE_RISK, run_until
from engine.brokers import paper_store
from engine.brokers.paper import PaperBroker
from engine.brokers.paper_store import PaperStore
from engine.clock import SimClock
from engine.engine import paper_store_path
from engine.journal import Journal
from engine.models import Order, OrderPurpose, OrderType, Side
from engine.profile import PaperConfig

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def journal_fills(path) -> Counter:
    db = sqlite3.connect(path)
    try:
        out: Counter = Counter()
        for ref, data in db.execute("SELECT ref, data FROM events WHERE kind = 'fill'"):
            out[ref] += Decimal(orjson.loads(data)["quantity"])
        return out
    finally:
        db.close()


def venue_filled(path) -> dict[str, Decimal]:
    db = sqlite3.connect(path)
    try:
        return {cid: Decimal(q) for cid, q in db.execute("SELECT client_order_id, filled_qty FROM orders")}
    finally:
        db.close()


@pytest.mark.parametrize("entry_type", ["limit", "market"])
async def test_every_journal_commit_finds_its_fills_already_in_the_venue_books(
        make_profile, open_engine, monkeypatch, entry_type):
    profile = make_profile(approval={"required": False}, orders={"entry_type": entry_type, "limit_timeout_seconds": 5},
                           paper={"latency_ms": 300}, risk={**LOOSE_RISK, **ANY_READINESS})
    eng = await open_engine(profile, seed=5)
    jpath, vpath = eng.journal.path, paper_store_path(eng.journal.path)
    checked = {"commits": 0, "fills": 0}
    real_flush = Journal.flush

    async def flush_then_check(self: Journal) -> None:
        await real_flush(self)
        if self is not eng.journal or eng.closed:
            return
        checked["commits"] += 1
        venue = venue_filled(vpath)
        for cid, qty in journal_fills(jpath).items():
            assert venue.get(cid, Decimal(0)) >= qty, f"journal committed a fill of {cid} the venue's file lacks"
            checked["fills"] += 1

    monkeypatch.setattr(Journal, "flush", flush_then_check)
    await eng.run(duration=4 * 3600)
    # Resting limits and latency make fills arrive on later quotes, in batches that also send.
    assert checked["commits"] > 50 and checked["fills"] > 20, checked


async def test_the_venue_writes_its_books_off_the_loop_and_the_journal_waits_for_them(make_profile, open_engine):
    """Another writer holds the venue file's lock: the loop keeps turning, and no journal row is
    committed until the venue's books hold what it sent."""
    eng = await open_engine(make_profile(approval={"required": True}, risk={**LOOSE_RISK, **ANY_READINESS}))
    await run_until(eng, lambda: bool(eng.snapshot().approvals))
    cid = eng.snapshot().approvals[0].client_order_id
    vpath = paper_store_path(eng.journal.path)
    lock = sqlite3.connect(vpath, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # SQLite's busy timeout lets the venue's write wait 5 s for it
    try:
        approving = asyncio.get_running_loop().create_task(eng.approve(cid))
        for _ in range(400):  # bounded (2 s, under the 5 s the venue's write waits for the lock)
            if approving.done():
                break
            await asyncio.sleep(0.005)
        assert approving.done() and approving.result() is True
        # Sent, and its write still waiting for the lock: on the loop, the write would have held
        # the loop until SQLite gave up (5 s) and failed.
        assert eng.broker._writing, "the venue's write is not waiting off the loop"
        committed = eng.journal.rows_written
        eng.journal.append("note", eng.clock.now(), None, {"after": "the send"})
        flushing = asyncio.get_running_loop().create_task(eng.journal.flush())
        for _ in range(10):
            await asyncio.sleep(0.005)
        assert not flushing.done() and eng.journal.rows_written == committed, \
            "the journal committed while the venue's books lacked the order"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    await flushing
    assert cid in venue_filled(vpath)
    assert [r.data for r in await eng.journal.rows(["note"])] == [{"after": "the send"}]


async def test_a_failed_venue_write_is_kept_and_written_with_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr(paper_store, "WRITE_LOCK_TIMEOUT_SECONDS", 0.05)
    vpath = tmp_path / "v.paper-venue.sqlite"
    broker = PaperBroker(PaperConfig(latency_ms=1000), SimClock(T0), PaperStore(vpath))
    await broker.persist()  # nothing changed: nothing written, no error
    lock = sqlite3.connect(vpath, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        await broker.submit(Order("c-1", "BTC/USD", Side.BUY, OrderType.LIMIT, Decimal("0.5"), OrderPurpose.ENTRY,
                                  T0, limit_price=Decimal("100")))
        with pytest.raises(paper_store.PaperStoreError, match=r"v\.paper-venue\.sqlite: database is locked"):
            await broker.persist()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    await broker.submit(Order("c-2", "ETH/USD", Side.BUY, OrderType.LIMIT, Decimal("2"), OrderPurpose.ENTRY,
                              T0, limit_price=Decimal("10")))
    await broker.persist()
    assert venue_filled(vpath) == {"c-1": Decimal(0), "c-2": Decimal(0)}
    await broker.close()
    again = PaperBroker(PaperConfig(latency_ms=1000), SimClock(T0), PaperStore(vpath))
    assert sorted(o.client_order_id for o in await again.open_orders()) == ["c-1", "c-2"]
    await again.close()


async def test_a_close_whose_venue_write_fails_still_closes_everything_and_says_so(
        make_profile, open_engine, monkeypatch):
    # A journal left open keeps the process alive (aiosqlite's thread): an unattended run that
    # failed its last write would never exit. And the journal must not claim what the venue lacks.
    from engine.engine import EngineCloseError

    monkeypatch.setattr(paper_store, "WRITE_LOCK_TIMEOUT_SECONDS", 0.05)
    eng = await open_engine(make_profile(approval={"required": False}, risk={**LOOSE_RISK, **ANY_READINESS}))
    await run_until(eng, lambda: eng.orders.fills > 0)
    jpath, vpath = eng.journal.path, paper_store_path(eng.journal.path)
    committed = eng.journal.rows_written
    sessions_before = [t for t in threading.enumerate() if "connection_worker" in t.name]
    assert sessions_before, "the journal's connection threads were expected"
    lock = sqlite3.connect(vpath, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        eng.broker._cash_dirty = True  # something left to write at close
        with pytest.raises(EngineCloseError) as failed:
            await eng.close()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    text = str(failed.value)
    assert f"{vpath}: database is locked" in text and "not committed" in text
    assert eng.closed and eng.journal.rows_written == committed  # checkpoint and session_end held back
    for t in sessions_before:
        t.join(timeout=5)
        assert not t.is_alive(), "the journal's thread outlived close(): the process could not exit"
    await eng.close()  # closed once: nothing more to do, nothing raised
    db = sqlite3.connect(jpath)
    try:
        assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'session_end'").fetchone()[0] == 0
    finally:
        db.close()


async def test_a_close_cancelled_while_the_venue_write_waits_still_closes_the_journal(
        make_profile, open_engine, monkeypatch):
    monkeypatch.setattr(paper_store, "WRITE_LOCK_TIMEOUT_SECONDS", 1.0)
    eng = await open_engine(make_profile(approval={"required": False}, risk={**LOOSE_RISK, **ANY_READINESS}))
    await run_until(eng, lambda: eng.orders.fills > 0)
    threads = [t for t in threading.enumerate() if "connection_worker" in t.name]
    lock = sqlite3.connect(paper_store_path(eng.journal.path), isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        eng.broker._cash_dirty = True
        closing = asyncio.get_running_loop().create_task(eng.close())
        await asyncio.sleep(0.2)  # its venue write is waiting for the lock
        closing.cancel()  # e.g. a second Ctrl-C, or a shutdown that gives up waiting
        with pytest.raises(asyncio.CancelledError):
            await closing
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert eng.closed
    for t in threads:
        t.join(timeout=5)
        assert not t.is_alive(), "the journal's thread outlived a cancelled close(): the process could not exit"
