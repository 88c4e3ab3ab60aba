"""kill -9 at random points, restart, and check what a trader needs after a crash: no fill lost,
no client order id sent twice, the latch kept, and the journal and the paper venue either agree
or their differences are reported (the engine then starts reduce-only)."""
from __future__ import annotations

import asyncio
import os
import select
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from engine.config_loader import load_profile
from engine.engine import Engine, paper_store_path
from engine.risk.gate import TradingState

KILLS = 20
PROFILE = {
    "name": "crash",
    "feed": {"speed": 0, "tick_seconds": 1},
    "approval": {"required": False},
    "orders": {"entry_type": "limit", "limit_timeout_seconds": 5},
    "risk": {"max_trades_per_hour": 60, "max_trades_per_day": 500, "min_seconds_between_trades": 0,
             "min_edge": 0.02, "min_confidence": 0.5, "max_consecutive_losses": 1000,
             "max_new_positions_per_day": 500, "max_new_positions_per_week": 500,
             "allowed_readiness": ["ready", "forming", "not_ready"]},
    "breakers": {"drawdown_stop": "block"},
    "logging": {"level": "WARNING"},
}


def write_profile(tmp: Path) -> Path:
    data = dict(PROFILE, journal={"path": str(tmp / "crash.sqlite")})
    path = tmp / "crash.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_and_kill(profile: Path, home: Path, seed: int, after: float) -> None:
    env = dict(os.environ, TRADECONSOLE_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "console", "run", "--headless", "--profile", str(profile),
                             "--seed", str(seed), "--duration", "30d"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        # Kill while it trades: first wait (bounded) for its first order in the journal, since on
        # a loaded machine start-up alone can outlast a fixed sleep and the kill would test nothing.
        journal = Path(yaml.safe_load(profile.read_text())["journal"]["path"])
        deadline = time.monotonic() + 60
        while not _has_order(journal):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the engine placed no order within 60 s"
            time.sleep(0.05)
        time.sleep(after)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)


def _has_order(path: Path) -> bool:
    if not path.exists():
        return False
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT 1 FROM events WHERE kind = 'order' LIMIT 1").fetchone() is not None
    except sqlite3.OperationalError:  # the schema is not there yet
        return False
    finally:
        db.close()


def journal_rows(path: Path, kind: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT seq, ref, data FROM events WHERE kind = ? ORDER BY seq", (kind,)).fetchall()
    finally:
        db.close()


def venue_orders(path: Path) -> dict[str, tuple[str, Decimal]]:
    db = sqlite3.connect(path)
    try:
        return {cid: (status, Decimal(filled)) for cid, status, filled in
                db.execute("SELECT client_order_id, status, filled_qty FROM orders")}
    finally:
        db.close()


def check_after_restart(jpath: Path) -> None:
    import orjson

    # No client order id sent twice: one 'submitted' row per id, ever.
    sent = Counter(ref for _, ref, data in journal_rows(jpath, "order")
                   if orjson.loads(data)["status"] == "submitted")
    assert all(n == 1 for n in sent.values()), [c for c, n in sent.items() if n > 1]
    # No fill lost: the venue has at least every fill the journal recorded, order by order.
    venue = venue_orders(paper_store_path(jpath))
    filled = Counter()
    for _, ref, data in journal_rows(jpath, "fill"):
        filled[ref] += Decimal(orjson.loads(data)["quantity"])
    for cid, qty in filled.items():
        assert cid in venue, f"journal fill for {cid} unknown to the venue"
        assert venue[cid][1] >= qty, (cid, venue[cid], qty)


@pytest.mark.parametrize("seed", range(KILLS))
def test_kill_9_then_restart_loses_nothing_and_reports_differences(tmp_path, seed):
    rng = random.Random(seed)
    home = tmp_path / "home"
    profile_path = write_profile(tmp_path)
    run_and_kill(profile_path, home, seed, after=rng.uniform(0.1, 1.3))
    jpath = tmp_path / "crash.sqlite"
    check_after_restart(jpath)

    async def restart() -> None:
        os.environ["TRADECONSOLE_HOME"] = str(home)
        eng = await Engine.open(load_profile(profile_path), seed=seed + 100)
        try:
            venue = await eng.broker.positions()
            ours = {s: p.quantity for s, p in eng.portfolio.positions.items()}
            if eng.reconciliation:
                # differences are reported, never guessed away, and entries stop
                assert eng.state is TradingState.REDUCE_ONLY
                kinds = {d.kind for d in eng.reconciliation}
                assert kinds <= {"quantity_mismatch", "unknown_at_venue", "unknown_to_venue", "closed_while_down",
                                 "balance_mismatch"}
                rows = await eng.journal.rows(kinds=["recovery"])
                assert rows and rows[-1].data["differences"]
            else:
                assert ours == venue
                assert abs((await eng.broker.balances())["USD"] - eng.portfolio.cash) <= Decimal("0.01")
                # every open position still has its protective stop at the venue
                open_ids = {o.client_order_id for o in await eng.broker.open_orders()}
                for sym in ours:
                    stop = eng.orders.stop_order(sym)
                    exiting = any(o.symbol == sym and o.purpose.value == "exit" for o in eng.orders.working.values())
                    assert exiting or (stop is not None and stop.client_order_id in open_ids), sym
            await eng.run(duration=600)  # trade on after the restart
        finally:
            await eng.close()

    asyncio.run(restart())
    check_after_restart(jpath)


def test_halt_latch_survives_kill_9(tmp_path):
    home = tmp_path / "home"
    profile_path = write_profile(tmp_path)
    env = dict(os.environ, TRADECONSOLE_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "console", "run", "--headless", "--profile", str(profile_path),
                             "--duration", "30d"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        # Wait for the engine's first log line (it has started: a fixed sleep lost the race on a
        # loaded machine, where imports alone can take longer), then give it time to trade.
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready and proc.stdout.readline(), "the headless engine never started"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # headless: SIGINT halts, journals, stops
        proc.communicate(timeout=20)  # reads stdout to the end: a full pipe must not stall it
    finally:
        if proc.poll() is None:
            proc.kill()

    async def restart() -> TradingState:
        os.environ["TRADECONSOLE_HOME"] = str(home)
        eng = await Engine.open(load_profile(profile_path))
        try:
            return eng.state
        finally:
            await eng.close()

    assert asyncio.run(restart()) is TradingState.HALTED


def _loose_profile(tmp: Path):
    return load_profile(write_profile(tmp))


async def _engine_with_position(tmp: Path) -> Engine:
    os.environ["TRADECONSOLE_HOME"] = str(tmp / "home")
    eng = await Engine.open(_loose_profile(tmp), seed=5)
    for _ in range(40):
        await eng.run(duration=600)
        if eng.portfolio.positions:
            return eng
    await eng.close()
    raise AssertionError("no position opened in 400 simulated minutes")


async def test_an_order_the_journal_never_saw_is_reported_and_can_be_cancelled(tmp_path):
    from engine.models import Order, OrderPurpose, OrderType, Side

    eng = await _engine_with_position(tmp_path)
    sym = next(iter(eng.quotes))
    q = eng.quotes[sym]
    # The venue takes an order the journal never recorded (the process died in between).
    ghost = Order(f"{eng.orders.id_prefix}999999", sym, Side.BUY, OrderType.LIMIT, Decimal("0.001"),
                  OrderPurpose.ENTRY, eng.clock.now(), limit_price=(q.bid * Decimal("0.5")).quantize(Decimal("0.01")))
    await eng.broker.submit(ghost)
    eng.broker.drain_events()
    await eng.close()

    again = await Engine.open(_loose_profile(tmp_path), seed=6)
    try:
        (diff,) = [d for d in again.reconciliation if d.kind == "unknown_at_venue"]
        assert diff.client_order_id == ghost.client_order_id
        assert again.state is TradingState.REDUCE_ONLY
        assert await again.resolve_difference(0, "mark_closed") is not None  # not an option here
        assert await again.resolve_difference(again.reconciliation.index(diff), "cancel") is None
        assert ghost.client_order_id not in {o.client_order_id for o in await again.broker.open_orders()}
        assert again.state is TradingState.ACTIVE
        (row,) = await again.journal.rows(kinds=["reconcile"])
        assert row.data["action"] == "cancel" and row.ref == ghost.client_order_id
    finally:
        await again.close()


async def test_a_quantity_the_venue_disagrees_with_is_reported_and_adopted(tmp_path):
    eng = await _engine_with_position(tmp_path)
    sym, pos = next(iter(eng.portfolio.positions.items()))
    held = pos.quantity
    await eng.close()
    store = sqlite3.connect(paper_store_path(tmp_path / "crash.sqlite"))
    store.execute("UPDATE positions SET quantity = ? WHERE symbol = ?", (str(held * 2), sym))
    store.commit()
    store.close()

    again = await Engine.open(_loose_profile(tmp_path), seed=6)
    try:
        (diff,) = again.reconciliation
        assert (diff.kind, diff.symbol, diff.journal, diff.venue) == ("quantity_mismatch", sym, str(held), str(held * 2))
        assert again.state is TradingState.REDUCE_ONLY
        # entries are refused until the operator answers
        snap = again.snapshot()
        assert snap.trading_state == "reduce_only"
        assert await again.resolve_difference(0, "adopt") is None
        assert again.portfolio.positions[sym].quantity == held * 2
        assert again.state is TradingState.ACTIVE
    finally:
        await again.close()


async def test_close_all_with_bounded_limit_exits_flattens_and_never_leaves_a_position_bare(tmp_path):
    os.environ["TRADECONSOLE_HOME"] = str(tmp_path / "home")
    prof = _loose_profile(tmp_path).model_copy(deep=True)
    prof.orders.exit_type = "limit"
    prof.orders.exit_slippage_bps = Decimal(50)
    eng = await Engine.open(prof, seed=5)
    try:
        for _ in range(40):
            await eng.run(duration=600)
            if eng.portfolio.positions:
                break
        assert eng.portfolio.positions
        await eng.halt("operator", "flatten")  # else the strategy would simply enter again
        await eng.close_all("operator")
        exits = [o for o in eng.orders.working.values() if o.purpose.value == "exit"]
        assert exits and all(o.type.value == "limit" for o in exits)
        for o in exits:
            q = eng.quotes[o.symbol]
            touch = q.bid if o.side.value == "sell" else q.ask
            assert abs(o.limit_price - touch) <= touch * Decimal("0.005") + Decimal("0.00000001")
        await eng.run(duration=60)
        assert not eng.portfolio.positions
    finally:
        await eng.close()
