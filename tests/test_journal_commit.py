"""The journal's commit: on the loop's thread, whole or not at all, and a failed one loses nothing."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

import engine.journal as journal_mod
from engine.journal import Journal

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def _hold_write_lock(path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
    return other


@pytest.mark.asyncio
@pytest.mark.parametrize("rows, per_statement", [(5, 1_000), (7, 3)], ids=["one-statement", "in-parts"])
async def test_a_commit_that_cannot_get_the_write_lock_keeps_its_rows_for_the_next(
        tmp_path, monkeypatch, rows, per_statement):
    monkeypatch.setattr(journal_mod, "WRITE_LOCK_TIMEOUT_SECONDS", 0.05)
    monkeypatch.setattr(journal_mod, "INSERT_ROWS", per_statement)
    path = tmp_path / "j.sqlite"
    j = await Journal.open(path)
    try:
        for i in range(rows):
            j.append("note", T0, None, {"i": i})
        other = _hold_write_lock(path)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await j.flush()
        assert j.pending == rows, "a failed commit dropped rows"
        j.append("note", T0, None, {"i": rows})  # appended after the failure: stays after them
        other.execute("ROLLBACK")
        other.close()
        await j.flush()
        assert j.pending == 0
        assert [r.data["i"] for r in await j.rows(["note"])] == list(range(rows + 1))
        assert j.rows_written == rows + 1
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

    def venue_books_first():
        seen.append(j.pending)
        j.append("note", T0, None, {"i": "venue"})

    j.before_commit = venue_books_first
    j.append("note", T0, None, {"i": 0})
    await j.flush()
    j.before_commit = None
    assert seen == [1]
    assert j.pending == 0
    assert [r.data["i"] for r in await j.rows(["note"])] == [0, "venue"]
    await j.close()
