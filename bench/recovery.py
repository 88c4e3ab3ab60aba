"""bench/recovery.py: restart and reconcile from a journal of 1,000,000 events.

Builds a realistic journal (decisions, orders, fills, alerts, equity rows and minute checkpoints
in the proportions a busy paper run writes them) plus the paper venue's books, then times
`Engine.open` on it: journal open, latch, recovery from the last checkpoint, reconciliation with
the venue. Last line: `recovery: <seconds> s (target <= 5 s)`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.clock import EPOCH_SIM_START  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.profile import Profile  # noqa: E402


async def seed_journal(profile: Profile, events: int) -> None:
    """A short real session gives real checkpoint/venue rows; bulk rows fill the journal up."""
    eng = await Engine.open(profile, seed=3)
    await eng.run(duration=4 * 3600)
    await eng.close()
    db = sqlite3.connect(profile.journal.path)
    have = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    last = db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    cp = db.execute("SELECT ts, data FROM events WHERE kind='checkpoint' ORDER BY seq DESC LIMIT 1").fetchone()
    # Bulk history goes *before* the last checkpoint, as in a long run: move the tail rows up.
    tail = db.execute("SELECT ts, kind, ref, data FROM events WHERE seq > ?", (last - 50,)).fetchall()
    db.execute("DELETE FROM events WHERE seq > ?", (last - 50,))
    kinds = ["decision"] * 5 + ["order"] * 3 + ["fill", "alert", "signal", "equity"]
    t0 = EPOCH_SIM_START
    rows = []
    n = events - have
    for i in range(n):
        kind = kinds[i % len(kinds)]
        # Round trips: a buy then a sell of the same size, so replay ends flat like real history.
        side = "buy" if (i // len(kinds)) % 2 == 0 else "sell"
        data = {"symbol": "BTC/USD", "side": side, "quantity": "0.01", "price": "60000.00", "fee": "0.12",
                "liquidity": "taker", "fill_id": f"H{i}", "i": i, "status": "filled" if kind == "order" else None}
        rows.append(((t0 + timedelta(seconds=i // 10)).isoformat(), kind, f"hist-{i // 3}", orjson.dumps(data).decode()))
        if len(rows) == 50_000:
            db.executemany("INSERT INTO events(ts, kind, ref, data) VALUES (?,?,?,?)", rows)
            rows.clear()
    db.executemany("INSERT INTO events(ts, kind, ref, data) VALUES (?,?,?,?)", rows)
    db.executemany("INSERT INTO events(ts, kind, ref, data) VALUES (?,?,?,?)", tail)
    if cp is not None:
        db.execute("INSERT INTO events(ts, kind, ref, data) VALUES (?,?,?,?)", (cp[0], "checkpoint", None, cp[1]))
    db.commit()
    total = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    db.close()
    print(f"journal: {total:,} events ({os.path.getsize(profile.journal.path) / 1e6:.0f} MB)")


async def timed_open(profile: Profile) -> float:
    t = time.perf_counter()
    eng = await Engine.open(profile, seed=4)
    took = time.perf_counter() - t
    r = eng.recovery
    print(f"recovered {r.positions} positions, {r.open_orders} open orders, {r.fills_replayed} fills replayed, "
          f"{len(eng.reconciliation)} differences, state {eng.state.value}")
    await eng.close()
    return took


async def main(events: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRADECONSOLE_HOME"] = tmp
        profile = Profile(journal={"path": str(Path(tmp) / "rec.sqlite")}, feed={"speed": 0},
                          approval={"required": False}, logging={"level": "WARNING"},
                          risk={"min_edge": 0.02, "min_confidence": 0.5, "max_consecutive_losses": 1000})
        await seed_journal(profile, events)
        times = sorted([await timed_open(profile) for _ in range(repeats)])
        # Worst case: no checkpoint survives, every fill since the start is replayed.
        db = sqlite3.connect(profile.journal.path)
        db.execute("DELETE FROM events WHERE kind = 'checkpoint'")
        db.commit()
        db.close()
        full = await timed_open(profile)
        print(f"without any checkpoint (full replay of every fill): {full:.2f} s")
    med = times[len(times) // 2]
    print(f"restart + reconcile: median {med:.3f} s over {repeats} (min {times[0]:.3f}, max {times[-1]:.3f})")
    print(f"recovery: {med:.2f} s (target <= 5 s)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    asyncio.run(main(a.events, a.repeats))
