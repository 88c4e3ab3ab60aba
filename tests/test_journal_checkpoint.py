"""The journal's WAL is checkpointed off the commit path, and a long session still folds it back."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

import engine.journal as journal_mod
from engine.journal import Journal

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


@pytest.mark.asyncio
async def test_commits_leave_the_wal_alone_until_enough_bytes_then_a_background_checkpoint_folds_it_in(
        tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "CHECKPOINT_BYTES", 200_000)
    j = await Journal.open(tmp_path / "j.sqlite")
    db_file = tmp_path / "j.sqlite"
    size0 = db_file.stat().st_size
    for i in range(100):  # ~100 kB of rows, committed 20 at a time: under the threshold
        j.append("note", T0, None, {"i": i, "text": "x" * 1000})
        if i % 20 == 19:
            await j.flush()
    assert j._checkpoint_task is None
    assert db_file.stat().st_size == size0, "a commit checkpointed the WAL on the order path"
    for i in range(100, 250):
        j.append("note", T0, None, {"i": i, "text": "x" * 1000})
        if i % 20 == 19:
            await j.flush()
    await j.flush()
    assert j._checkpoint_task is not None
    await asyncio.wait_for(j._checkpoint_task, 10)
    assert db_file.stat().st_size > size0 + 100_000, "the background checkpoint copied the WAL back"
    assert await j.count("note") == 250
    await j.close()
    again = await Journal.open(db_file)
    assert [r.data["i"] for r in await again.rows(["note"])] == list(range(250))
    await again.close()
