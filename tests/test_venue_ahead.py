"""The paper venue's own books are always ahead of the journal: at every journal commit (any one
could be the last before a kill -9), each fill the journal holds is already in the venue's file."""
from __future__ import annotations

import sqlite3
from collections import Counter
from decimal import Decimal

import orjson
import pytest

from conftest import ANY_READINESS, LOOSE_RISK
from engine.engine import paper_store_path
from engine.journal import Journal


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
