"""A start that comes up HALTED carries out what the halt means for the orders it restores: every
entry still working at the venue is cancelled there (journaled) before any quote reaches the
venue, and every position's protective stop stays. Left working, a restored entry filled while
the engine showed HALTED (audit10 #1): after an offline `tradeconsole halt`, or a halt the process
was killed right after (its row committed, its cancels never sent).

The crash is written as it leaves the files: the venue's books hold what it had, the journal ends
at the halt row.
"""
from __future__ import annotations

import sqlite3
from decimal import Decimal as D
from pathlib import Path

from conftest import ANY_READINESS, LOOSE_RISK, build_profile
from engine.control.offline import offline_halt
from engine.engine import Engine, paper_store_path
from engine.manual import ManualOrderSpec
from engine.models import OrderPurpose, OrderStatus
from engine.risk.gate import TradingState
from engine.strategy.base import Strategy


class Quiet(Strategy):
    name = "quiet"

    def on_quote(self, quote, position_qty):
        return None


async def _session_with_entry_working(tmp: Path):
    """Session 1: BTC held with its stop, an ETH limit entry resting below the market."""
    prof = build_profile(tmp, symbols=["BTC/USD", "ETH/USD"],
                         risk={**LOOSE_RISK, **ANY_READINESS, "min_edge": 0, "min_confidence": 0},
                         orders={"limit_timeout_seconds": 3600}, paper={"latency_ms": 0}, control={"socket": False})
    eng = await Engine.open(prof, seed=1)
    eng.strategy = Quiet()
    eng.preroll()
    await eng.run(duration=5)
    assert await eng.submit_manual(ManualOrderSpec("BTC/USD", "buy", quantity=D("0.01"), type="market")) is None
    await eng.run(duration=2)
    stop = eng.orders.stop_order("BTC/USD")
    assert stop is not None and "BTC/USD" in eng.portfolio.positions
    below = (eng.quotes["ETH/USD"].bid * D("0.985")).quantize(D("0.01"))
    assert await eng.submit_manual(ManualOrderSpec("ETH/USD", "buy", quantity=D("0.1"), type="limit",
                                                   limit_price=below)) is None
    await eng.run(duration=2)
    (entry,) = [o for o in eng.orders.working.values() if o.purpose is OrderPurpose.ENTRY]
    return prof, eng, entry.client_order_id, stop.client_order_id


def _venue_status(tmp: Path, cid: str) -> str:
    db = sqlite3.connect(paper_store_path(tmp / "j.sqlite"))
    try:
        (status,) = db.execute("SELECT status FROM orders WHERE client_order_id = ?", (cid,)).fetchone()
        return status
    finally:
        db.close()


async def _assert_entry_cancelled_and_stop_kept(eng: Engine, tmp: Path, entry: str, stop: str) -> None:
    assert eng.state is TradingState.HALTED
    # At the venue (its own file, what it would fill from) and in the engine's books.
    assert _venue_status(tmp, entry) == "cancelled"
    assert entry not in {o.client_order_id for o in await eng.broker.open_orders()}
    assert entry not in eng.orders.working
    assert eng.orders.orders[entry].status is OrderStatus.CANCELLED
    session = (await eng.journal.last(["session"])).seq
    rows = await eng.journal.rows(["order"], ref=entry)
    assert rows[-1].data["status"] == "cancelled" and rows[-1].seq > session
    # The position's stop stays, working at the venue.
    assert _venue_status(tmp, stop) == "submitted"
    assert stop in {o.client_order_id for o in await eng.broker.open_orders()}
    assert eng.orders.stop_order("BTC/USD").client_order_id == stop
    assert not eng.cancels_outstanding
    assert any(a.kind == "halt" and "came up HALTED" in a.message for a in eng.alerts.recent())
    # Nothing to reconcile: the cancel is in the books before the venue is compared.
    assert not eng.reconciliation


async def test_an_offline_halt_cancels_the_entries_the_next_start_restores(tmp_path):
    prof, eng, entry, stop = await _session_with_entry_working(tmp_path)
    await eng.close()
    assert _venue_status(tmp_path, entry) == "submitted"
    await offline_halt(prof, "going to bed")

    eng = await Engine.open(prof, seed=2)
    try:
        await _assert_entry_cancelled_and_stop_kept(eng, tmp_path, entry, stop)
        eng.strategy = Quiet()
        eng.preroll()
        await eng.run(duration=30)
        assert not await eng.journal.rows(["fill"], ref=entry)
        assert eng.state is TradingState.HALTED and eng.orders.stop_order("BTC/USD").client_order_id == stop
    finally:
        await eng.close()


async def test_a_halt_killed_before_its_cancels_is_carried_out_by_the_restart(tmp_path):
    prof, eng, entry, stop = await _session_with_entry_working(tmp_path)
    # The latch's row commits, then kill -9: the task that cancels the entries never runs.
    eng.journal.append("halt", eng.clock.now(), None, {"source": "key", "reason": "F12", "first": True})
    await eng.journal.flush()
    crash_at = (await eng.journal.last(["halt"])).seq
    await eng.close()
    db = sqlite3.connect(tmp_path / "j.sqlite")
    db.execute("DELETE FROM events WHERE seq > ?", (crash_at,))
    db.commit()
    db.close()
    assert _venue_status(tmp_path, entry) == "submitted"

    eng = await Engine.open(prof, seed=2)
    try:
        await _assert_entry_cancelled_and_stop_kept(eng, tmp_path, entry, stop)
        assert eng.halt_reason.startswith("F12")
    finally:
        await eng.close()


async def test_an_armed_restart_leaves_its_entries_working(tmp_path):
    prof, eng, entry, _stop = await _session_with_entry_working(tmp_path)
    await eng.close()
    eng = await Engine.open(prof, seed=2)
    try:
        assert eng.state is TradingState.ACTIVE
        assert entry in eng.orders.working and _venue_status(tmp_path, entry) == "submitted"
    finally:
        await eng.close()


async def test_an_entry_the_venue_filled_while_down_stays_a_difference_to_book(tmp_path):
    # Not the halt's to cancel: the venue no longer holds it working. Left to the operator's answer,
    # it is booked at the venue's price with its stop, halted or not.
    from test_reconcile_safety import _entry_filled_while_down

    prof, entry = await _entry_filled_while_down(tmp_path)
    await offline_halt(prof, "going to bed")
    eng = await Engine.open(prof, seed=2)
    try:
        assert eng.state is TradingState.HALTED
        down = eng.reconciliation[0]
        assert (down.kind, down.client_order_id, down.actions) == ("closed_while_down", entry.client_order_id,
                                                                   ("book", "mark_closed"))
        assert entry.client_order_id in eng.orders.working
        assert await eng.resolve_difference(0, "book") is None
        assert eng.portfolio.positions[entry.symbol].quantity == entry.quantity
        assert eng.orders.stop_order(entry.symbol).stop_price == entry.protective_stop
        assert eng.state is TradingState.HALTED
    finally:
        await eng.close()
