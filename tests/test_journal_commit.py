"""The journal's commit: off the loop, whole rows in order, and a failed one loses nothing."""
from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timezone

import pytest

import engine.journal as journal_mod
from conftest import LOOSE_RISK, run_until
from engine.journal import Journal
from engine.models import OrderStatus
from engine.risk.gate import TradingState

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def _hold_write_lock(path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction (or a slow disk)
    return other


class WriteLockHeld:
    """Another process holds the write lock: the first statement times out, nothing commits."""

    error, match = sqlite3.OperationalError, "locked"

    def __init__(self, path) -> None:
        self.db = _hold_write_lock(path)

    def clear(self) -> None:
        self.db.execute("ROLLBACK")
        self.db.close()


class RowRefused:
    """SQLite refuses row 4: with 3 rows per statement, rows 0-2 are already committed."""

    error, match = sqlite3.IntegrityError, "disk says no"

    def __init__(self, path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("""CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.data = '{"i":4}'
                           BEGIN SELECT RAISE(ABORT, 'disk says no'); END""")

    def clear(self) -> None:
        self.db.execute("DROP TRIGGER refuse")
        self.db.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("fault, per_statement, committed", [(WriteLockHeld, 1_000, 0), (RowRefused, 3, 3)],
                         ids=["write-lock-held", "refused-midway"])
async def test_a_failed_commit_puts_back_exactly_the_rows_it_did_not_commit(
        tmp_path, monkeypatch, fault, per_statement, committed):
    monkeypatch.setattr(journal_mod, "WRITE_LOCK_TIMEOUT_SECONDS", 0.05)
    monkeypatch.setattr(journal_mod, "INSERT_ROWS", per_statement)
    path = tmp_path / "j.sqlite"
    j = await Journal.open(path)
    try:
        for i in range(7):
            j.append("note", T0, None, {"i": i})
        f = fault(path)
        with pytest.raises(f.error, match=f.match):
            await j.flush()
        assert j.pending == 7 - committed, "a failed commit dropped rows, or kept committed ones"
        assert j.rows_written == committed
        j.append("note", T0, None, {"i": 7})  # appended after the failure: stays after them
        f.clear()
        await j.flush()
        assert j.pending == 0
        assert [r.data["i"] for r in await j.rows(["note"])] == list(range(8)), "lost or repeated rows"
        assert j.rows_written == 8
    finally:
        await j.close()


@pytest.mark.asyncio
async def test_a_flush_bigger_than_one_statement_commits_every_row_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "INSERT_ROWS", 4)
    j = await Journal.open(tmp_path / "j.sqlite")
    for i in range(4 * 3 + 1):  # three full statements and one row over
        j.append("note", T0, str(i), {"i": i})
    await j.flush()
    await j.close()
    again = await Journal.open(tmp_path / "j.sqlite")
    try:
        got = await again.rows(["note"])
        assert [(r.ref, r.data["i"]) for r in got] == [(str(i), i) for i in range(13)]
        assert [r.seq for r in got] == sorted(r.seq for r in got)
    finally:
        await again.close()


@pytest.mark.asyncio
async def test_before_commit_runs_first_and_its_rows_go_in_the_same_commit(tmp_path):
    j = await Journal.open(tmp_path / "j.sqlite")
    seen = []

    async def venue_books_first():
        seen.append(j.pending)
        j.append("note", T0, None, {"i": "venue"})

    j.before_commit = venue_books_first
    j.append("note", T0, None, {"i": 0})
    await j.flush()
    j.before_commit = None
    assert seen == [2]  # its one row, plus the flush under way
    assert j.pending == 0
    assert [r.data["i"] for r in await j.rows(["note"])] == [0, "venue"]
    await j.close()


async def test_a_halt_that_lands_while_the_outbox_commits_keeps_the_entry_from_leaving(make_profile, open_engine):
    """The commit runs off the loop: F12 during a slow commit latches before the order is sent."""
    eng = await open_engine(make_profile(approval={"required": True}, risk=LOOSE_RISK))
    await run_until(eng, lambda: bool(eng.snapshot().approvals))
    cid = eng.snapshot().approvals[0].client_order_id
    lock = _hold_write_lock(eng.journal.path)
    try:
        approving = asyncio.get_running_loop().create_task(eng.approve(cid))
        for _ in range(400):  # bounded: until the approval's outbox commit is waiting on the disk
            if eng.journal._flush_lock.locked():
                break
            await asyncio.sleep(0.005)
        assert eng.journal._flush_lock.locked(), "the approval never reached its commit"
        halting = eng.halt("operator", "F12 during the commit")
        assert eng.state is TradingState.HALTED
        assert not approving.done(), "the commit blocked the loop"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    await approving
    await halting
    order = eng.orders.orders[cid]
    assert order.status is OrderStatus.CANCELLED and order.reason == "halted before sending"
    assert await eng.broker.fetch_order(cid) is None, "the venue got an order sent after the halt"
    statuses = [r.data["status"] for r in await eng.journal.rows(["order"], ref=cid)]
    assert statuses[-2:] == ["submitted", "cancelled"]


@pytest.mark.asyncio
async def test_a_cancelled_flush_whose_statement_then_fails_commits_its_rows_again(tmp_path, monkeypatch):
    # Cancelling a flush cannot stop its statement: it runs to its end on aiosqlite's thread.
    # If it then fails there, those rows were neither committed nor put back: lost, silently.
    monkeypatch.setattr(journal_mod, "WRITE_LOCK_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "j.sqlite"
    j = await Journal.open(path)
    try:
        for i in range(7):
            j.append("note", T0, None, {"i": i})
        lock = WriteLockHeld(path)
        flushing = asyncio.create_task(j.flush())
        await asyncio.sleep(0.05)  # its statement is waiting for the lock on the thread
        flushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flushing
        assert j.pending >= 1, "rows whose statement has not ended are shown as committed"
        assert j.rows_written == 0
        # The next flush learns the statement failed, and tries its rows again (still locked).
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await j.flush()
        assert j.pending == 7 and j.rows_written == 0
        lock.clear()
        j.append("note", T0, None, {"i": 7})
        await j.flush()
        assert [r.data["i"] for r in await j.rows(["note"])] == list(range(8)), "lost or repeated rows"
        assert j.rows_written == 8 and j.pending == 0
    finally:
        await j.close()


@pytest.mark.asyncio
async def test_a_cancelled_flush_whose_statement_commits_is_not_committed_twice(tmp_path):
    j = await Journal.open(tmp_path / "j.sqlite")
    try:
        for i in range(5):
            j.append("note", T0, None, {"i": i})
        flushing = asyncio.create_task(j.flush())
        await asyncio.sleep(0)  # the statement is on its way to the thread
        flushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flushing
        j.append("note", T0, None, {"i": 5})
        await j.flush()
        assert [r.data["i"] for r in await j.rows(["note"])] == list(range(6))
        assert j.rows_written == 6 and j.pending == 0
    finally:
        await j.close()


async def test_rows_between_two_seqs_with_a_data_field(tmp_path):
    j = await Journal.open(tmp_path / "w.sqlite")
    try:
        ts = datetime(2026, 1, 5, tzinfo=timezone.utc)
        for i, reason in enumerate(["ok", "shutdown", "ok", "shutdown", "shutdown"]):
            j.append("delivery", ts, f"ch{i}", {"reason": reason, "n": i})
        j.append("alert", ts, None, {"reason": "shutdown"})
        await j.flush()
        got = await j.rows(["delivery"], after_seq=1, before_seq=5, where=("reason", "shutdown"))
        assert [r.data["n"] for r in got] == [1, 3]  # seq 5 (n=4) is past the bound, the alert another kind
        assert [r.data["n"] for r in await j.rows(["delivery"], where=("n", 2))] == [2]
    finally:
        await j.close()
