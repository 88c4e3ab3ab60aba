"""Operator commands against a real engine (paper broker, seeded simulated market, SimClock):
approve, reject, approval timeout, halt (latch), close-all, re-arm, and the quit-time exposure."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from decimal import Decimal as D

import pytest

from conftest import LOOSE_RISK, run_until
from engine.engine import Engine
from engine.models import OrderPurpose, OrderType
from engine.risk.gate import TradingState

# Limits rest 50 bps inside the touch and wait up to two hours before falling back to market, so
# a test can catch the engine with entries still working at the venue.
RESTING = {"limit_offset_bps": 50, "limit_timeout_seconds": 7200}


def approval_profile(make_profile, **extra):
    return make_profile(approval={"required": True, **extra.pop("approval", {})}, risk=LOOSE_RISK, **extra)


async def rows(engine: Engine, *kinds: str, ref: str | None = None, after: int = 0):
    return await engine.journal.rows(kinds=list(kinds), ref=ref, after_seq=after)


async def last_seq(engine: Engine) -> int:
    all_rows = await engine.journal.rows()
    return all_rows[-1].seq


def working_entries(engine: Engine):
    return [o for o in engine.orders.working.values() if o.purpose is OrderPurpose.ENTRY]


async def first_pending(engine: Engine) -> str:
    await run_until(engine, lambda: bool(engine.snapshot().approvals))
    return engine.snapshot().approvals[0].client_order_id


async def busy_engine(make_profile, open_engine, seed: int = 4) -> Engine:
    """Approve every entry as it comes until the engine holds, at the same moment, an open
    position (with its stop), a working entry order and a pending approval."""
    eng = await open_engine(approval_profile(make_profile, orders=RESTING), seed=seed)

    async def approve_all() -> None:
        s = eng.snapshot()
        if eng.portfolio.positions and working_entries(eng) and s.approvals:
            return
        for a in s.approvals:
            await eng.approve(a.client_order_id)

    await run_until(eng, lambda: bool(eng.portfolio.positions and working_entries(eng) and eng.snapshot().approvals),
                    between=approve_all)
    return eng


# -- approvals ---------------------------------------------------------------------------------
async def test_signal_waits_for_approval_then_approve_sends_and_fills(make_profile, open_engine):
    eng = await open_engine(approval_profile(make_profile), seed=3)
    cid = await first_pending(eng)
    view = eng.snapshot().approvals[0]
    assert view.quantity > 0 and view.stop_price is not None and view.checks
    assert all(c.passed for c in view.checks)
    assert 0 < view.seconds_left <= eng.profile.approval.timeout_seconds
    assert eng.exposure()[0] >= 1
    # pending: journaled, gate-approved, but unknown to the broker
    statuses = [r.data["status"] for r in await rows(eng, "order", ref=cid)]
    assert statuses == ["pending_approval"]
    (dec,) = await rows(eng, "decision", ref=cid)
    assert dec.data["approved"] is True
    assert await eng.broker.fetch_order(cid) is None

    assert await eng.approve(cid) is True
    assert cid not in {a.client_order_id for a in eng.snapshot().approvals}
    assert await eng.approve(cid) is False  # already taken: nothing happens twice
    (appr,) = await rows(eng, "approval", ref=cid)
    assert appr.data["result"] == "approved"
    decs = await rows(eng, "decision", ref=cid)
    assert len(decs) == 2 and decs[-1].data["approved"] is True  # judged again at approval time
    order_rows = await rows(eng, "order", ref=cid)
    assert [r.data["status"] for r in order_rows] == ["pending_approval", "submitted"]
    assert decs[-1].seq < order_rows[-1].seq
    assert await eng.broker.fetch_order(cid) is not None
    # approve what comes next too, until an approved entry fills at the venue
    approved = {cid}
    filled: list = []

    async def approve_and_poll() -> None:
        for a in eng.snapshot().approvals:
            if await eng.approve(a.client_order_id):
                approved.add(a.client_order_id)
        filled.extend(r for r in await rows(eng, "fill") if r.ref in approved and r not in filled)

    await run_until(eng, lambda: bool(filled), step=5, limit=4 * 3600, between=approve_and_poll)
    fill = filled[0]
    statuses = [r.data["status"] for r in await rows(eng, "order", ref=fill.ref)]
    assert statuses[:2] == ["pending_approval", "submitted"] and "filled" in statuses
    symbol = fill.data["symbol"]
    if symbol in eng.portfolio.positions:
        stop = eng.orders.stop_order(symbol)
        assert stop is not None and await eng.broker.fetch_order(stop.client_order_id) is not None
    stops = [r for r in await rows(eng, "order", after=fill.seq)
             if r.data["purpose"] == "stop" and r.data["symbol"] == symbol]
    assert stops and stops[0].data["status"] == "submitted"  # the fill got its protective stop


async def test_reject_journals_reason_and_nothing_reaches_the_broker(make_profile, open_engine):
    eng = await open_engine(approval_profile(make_profile), seed=3)
    cid = await first_pending(eng)
    assert await eng.reject(cid, "spread too wide") is True
    assert cid not in {a.client_order_id for a in eng.snapshot().approvals}
    (appr,) = await rows(eng, "approval", ref=cid)
    assert appr.data["result"] == "rejected"
    assert "spread too wide" in appr.data["reason"]
    assert eng.counters["rejected_by_operator"] == 1
    assert await eng.reject(cid, "again") is False
    assert await eng.approve(cid) is False
    await eng.run(duration=600)
    statuses = [r.data["status"] for r in await rows(eng, "order", ref=cid)]
    assert statuses == ["pending_approval", "rejected"]
    assert await eng.broker.fetch_order(cid) is None
    assert not await rows(eng, "fill", ref=cid)
    assert len(await rows(eng, "approval", ref=cid)) == 1


async def test_unknown_ids_are_refused_quietly(make_profile, open_engine):
    eng = await open_engine(approval_profile(make_profile), seed=3)
    assert await eng.approve("no-such-id") is False
    assert await eng.reject("no-such-id", "x") is False
    assert not await rows(eng, "approval", "order")


async def test_approval_expires_after_timeout_of_simulated_time(make_profile, open_engine):
    timeout = 120
    eng = await open_engine(approval_profile(make_profile, approval={"timeout_seconds": timeout}), seed=3)
    cid = await first_pending(eng)
    (pending,) = await rows(eng, "order", ref=cid)
    deadline = datetime.fromisoformat(pending.ts) + timedelta(seconds=timeout)
    # just before the deadline it is still waiting
    await eng.run(duration=(deadline - eng.clock.now()).total_seconds() - 6)
    assert deadline - timedelta(seconds=8) < eng.clock.now() < deadline
    assert cid in {a.client_order_id for a in eng.snapshot().approvals}
    assert not await rows(eng, "approval", ref=cid)
    await eng.run(duration=12)
    assert eng.clock.now() > deadline
    assert cid not in {a.client_order_id for a in eng.snapshot().approvals}
    (appr,) = await rows(eng, "approval", ref=cid)
    assert appr.data["result"] == "expired"
    expired_at = datetime.fromisoformat(appr.ts)
    assert deadline <= expired_at < deadline + timedelta(seconds=2)
    statuses = [r.data["status"] for r in await rows(eng, "order", ref=cid)]
    assert statuses == ["pending_approval", "expired"]
    assert eng.counters["expired"] >= 1
    assert any(r.ref == "approval_expired" for r in await rows(eng, "alert"))
    assert await eng.broker.fetch_order(cid) is None
    assert await eng.approve(cid) is False  # too late


# -- halt ----------------------------------------------------------------------------------------
async def test_halt_latches_at_once_cancels_entries_keeps_stops_and_blocks_new_orders(make_profile, open_engine):
    eng = await busy_engine(make_profile, open_engine)
    positions = {s: p.quantity for s, p in eng.portfolio.positions.items()}
    stops = {s: eng.orders.stop_order(s) for s in positions}
    assert all(stops.values())
    entries = [o.client_order_id for o in working_entries(eng)]
    pending = [a.client_order_id for a in eng.snapshot().approvals]
    before = await last_seq(eng)

    task = eng.halt("operator", "F12 pressed")
    # latched before anything is awaited
    assert eng.state is TradingState.HALTED
    # shown at once; "halted" only once the journal holds the halt (invariant 5)
    assert eng.snapshot().trading_state == "halting"
    assert eng.snapshot().approvals == ()
    assert eng.exposure()[0] == len(entries)  # entries are being cancelled; approvals are gone
    await task

    assert eng.exposure() == (0, len(positions))
    assert working_entries(eng) == []
    venue_open = await eng.broker.open_orders()
    assert not [o for o in venue_open if o.purpose is OrderPurpose.ENTRY]
    for cid in entries:
        assert (await eng.broker.fetch_order(cid)).status.value == "cancelled"
        assert (await rows(eng, "order", ref=cid))[-1].data["status"] == "cancelled"
    # every position keeps its protective stop, at the engine and at the venue
    venue_ids = {o.client_order_id for o in venue_open if o.type is OrderType.STOP}
    for symbol, stop in stops.items():
        assert eng.orders.stop_order(symbol) is stop
        assert stop.client_order_id in venue_ids
    assert {s: p.quantity for s, p in eng.portfolio.positions.items()} == positions
    # journal: the halt, the rejected approvals, one critical alert
    (halt,) = await rows(eng, "halt", after=before)
    assert halt.data == {"source": "operator", "reason": "F12 pressed", "first": True}
    for cid in pending:
        (appr,) = await rows(eng, "approval", ref=cid)
        assert appr.data["result"] == "rejected_by_halt"
    halt_alerts = [r for r in await rows(eng, "alert", after=before) if r.ref == "halt"]
    assert len(halt_alerts) == 1 and halt_alerts[0].data["severity"] == "critical"

    # an hour later: signals keep coming, the gate refuses every entry, nothing new leaves
    mark = await last_seq(eng)
    signals_before = eng.counters["signals"]
    await eng.run(duration=3600)
    assert eng.counters["signals"] > signals_before
    assert eng.state is TradingState.HALTED
    assert eng.snapshot().approvals == ()
    new_orders = await rows(eng, "order", after=mark)
    assert not [r for r in new_orders if r.data["purpose"] == "entry" and r.data["status"] != "rejected"]
    entry_decisions = [r for r in await rows(eng, "decision", after=mark) if r.data["purpose"] == "entry"]
    assert entry_decisions and all(r.data["failed"] == "trading_state" for r in entry_decisions)


async def test_second_halt_changes_nothing_but_is_recorded(make_profile, open_engine):
    eng = await busy_engine(make_profile, open_engine)
    before = await last_seq(eng)
    await eng.halt("operator", "first")
    working = set(eng.orders.working)
    await eng.halt("cli", "second")
    assert eng.state is TradingState.HALTED
    assert set(eng.orders.working) == working  # no further cancels: the stops stay
    alerts = [r for r in await rows(eng, "alert", after=before) if r.ref == "halt"]
    assert len(alerts) == 1  # one critical alert for one latch
    halts = await rows(eng, "halt", after=before)
    assert [h.data["source"] for h in halts] == ["operator", "cli"]  # every command is on record


async def test_the_manual_halt_light_follows_the_latch_at_once(make_profile, open_engine):
    """The breaker pane's manual-halt light is on with the header's HALTED, journaled with it:
    it lit only at the next breaker reading, seconds of market later."""
    eng = await busy_engine(make_profile, open_engine)
    before = await last_seq(eng)
    (manual,) = [b for b in eng.breakers if b.unit == "latch"]
    assert manual.state.value == "armed"
    task = eng.halt("operator", "now")
    assert manual.state.value == "tripped"  # before any further turn of the loop
    await task
    snap = eng.snapshot()
    assert snap.trading_state == "halted"
    assert [b.state for b in snap.breakers if b.name == manual.name] == ["tripped"]
    assert [(r.ref, r.data["new"]) for r in await rows(eng, "breaker", after=before)] == [(manual.name, "tripped")]


async def test_a_halt_the_journal_cannot_record_still_cancels_the_entries_and_says_so(make_profile, open_engine):
    import sqlite3

    eng = await busy_engine(make_profile, open_engine)
    entries = [o.client_order_id for o in working_entries(eng)]
    assert entries
    db = eng.journal._db
    execute = db.execute
    locked = True

    async def failing(sql, *args):
        if locked:
            raise sqlite3.OperationalError("database is locked")
        return await execute(sql, *args)

    db.execute = failing  # another process holds the write lock (or the disk is full)
    task = eng.halt("operator", "F12 pressed")
    with pytest.raises(sqlite3.OperationalError):
        await task  # the console's error dialog hears of it...
    # ...but the halt itself went on: no entry left working, here or at the venue, and a
    # critical alert says the journal has not got it yet.
    assert working_entries(eng) == []
    assert not [o for o in await eng.broker.open_orders() if o.purpose is OrderPurpose.ENTRY]
    (alert,) = [a for a in eng.alerts.unacknowledged() if a.kind == "halt"]  # pinned, as every critical
    assert alert.severity == "critical" and "the journal could not record it yet" in alert.message
    locked = False
    db.execute = execute
    await eng.journal.flush()  # the lock is gone: nothing the halt wrote was lost
    assert [r.data["reason"] for r in await eng.journal.rows(["halt"])] == ["F12 pressed"]
    cancelled = {r.ref for r in await eng.journal.rows(["order"]) if r.data["status"] == "cancelled"}
    assert set(entries) <= cancelled


async def test_halt_latch_survives_a_restart(make_profile, open_engine):
    profile = approval_profile(make_profile, orders=RESTING)
    eng = await busy_engine(make_profile, open_engine)
    first_ids = {r.ref for r in await rows(eng, "order")}
    await eng.halt("operator", "end of day")
    await eng.close()

    again = await open_engine(profile, seed=4)
    assert again.session == 2
    assert again.state is TradingState.HALTED
    assert "end of day" in again.halt_reason
    assert again.snapshot().trading_state == "halted"
    mark = await last_seq(again)
    await again.run(duration=3600)
    assert again.state is TradingState.HALTED
    new = await rows(again, "order", after=mark)
    assert not [r for r in new if r.data["status"] == "submitted" and r.data["purpose"] == "entry"]
    assert again.snapshot().approvals == ()
    assert not {r.ref for r in new} & first_ids  # a new session never reuses a client id

    # re-armed with a reason, the next session starts active
    assert await again.rearm("reviewed the book") is None
    await again.close()
    third = await open_engine(profile, seed=4)
    assert third.state is TradingState.ACTIVE and third.halt_reason == ""


CRASH = """
import asyncio, os, signal, sys
from engine.engine import Engine
from engine.profile import Profile
async def main():
    eng = await Engine.open(Profile.model_validate_json(sys.argv[1]), seed=3)
    await eng.run(duration=120)
    await eng.halt("operator", "before the crash")
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no session_end
asyncio.run(main())
"""


async def test_halt_latch_survives_kill_9(make_profile, open_engine):
    import subprocess
    import sys

    profile = approval_profile(make_profile)
    res = subprocess.run([sys.executable, "-c", CRASH, profile.model_dump_json()], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == -9, res.stderr
    eng = await open_engine(profile, seed=3)
    assert eng.session == 2
    assert eng.state is TradingState.HALTED and "before the crash" in eng.halt_reason
    assert not await rows(eng, "session_end")  # it really died
    (halt,) = await rows(eng, "halt")
    mark = await last_seq(eng)
    await eng.run(duration=600)
    new = await rows(eng, "order", after=mark)
    assert not [r for r in new if r.data["status"] in ("submitted", "pending_approval")]
    assert eng.counters["signals"] > 0  # there was something to refuse
    assert halt.data["reason"] == "before the crash"


async def test_restart_rebuilds_open_positions_from_the_journal(make_profile, open_engine):
    eng = await busy_engine(make_profile, open_engine)
    held = {s: p.quantity for s, p in eng.portfolio.positions.items()}
    assert held
    await eng.halt("operator", "restart")
    await eng.close()
    again = await open_engine(approval_profile(make_profile, orders=RESTING), seed=4)
    assert {s: p.quantity for s, p in again.portfolio.positions.items()} == held
    for symbol in held:
        assert again.orders.stop_order(symbol) is not None


# -- close-all ---------------------------------------------------------------------------------
async def test_close_all_flattens_every_position_while_halted_and_is_idempotent(make_profile, open_engine):
    eng = await busy_engine(make_profile, open_engine)
    symbols = set(eng.portfolio.positions)
    await eng.halt("operator", "flatten")
    mark = await last_seq(eng)
    await eng.close_all("operator")
    await eng.close_all("operator")  # pressed twice before anything filled
    await eng.run(duration=60)

    assert eng.portfolio.positions == {}
    assert await eng.broker.positions() == {}
    assert eng.orders.working == {}
    assert await eng.broker.open_orders() == []
    assert eng.exposure() == (0, 0)
    assert eng.state is TradingState.HALTED  # close-all does not re-arm
    new_orders = await rows(eng, "order", after=mark)
    exits = [r for r in new_orders if r.data["purpose"] == "exit" and r.data["status"] == "submitted"]
    assert sorted(r.data["symbol"] for r in exits) == sorted(symbols)  # one exit per position
    for r in exits:
        (dec,) = await rows(eng, "decision", ref=r.ref)
        assert dec.data["approved"] is True and dec.data["source"] == "operator" and dec.seq < r.seq
    stop_cancels = [r for r in new_orders if r.data["purpose"] == "stop" and r.data["status"] == "cancelled"]
    assert {r.data["symbol"] for r in stop_cancels} == symbols
    assert len(await rows(eng, "close_all", after=mark)) == 2
    # nothing opens again while halted
    await eng.run(duration=1800)
    assert eng.portfolio.positions == {} and await eng.broker.positions() == {}


async def test_close_all_with_nothing_open_is_harmless(make_profile, open_engine):
    eng = await open_engine(approval_profile(make_profile), seed=3)
    await eng.run(duration=60)
    await eng.close_all("operator")
    assert eng.portfolio.positions == {} and eng.orders.working == {}
    (row,) = await rows(eng, "close_all")
    assert row.data["positions"] == 0
    assert eng.state is TradingState.ACTIVE


# -- re-arm ------------------------------------------------------------------------------------
@pytest.mark.parametrize("reason", ["", "   ", "\t\n"])
async def test_rearm_without_a_reason_is_refused(make_profile, open_engine, reason):
    eng = await open_engine(approval_profile(make_profile), seed=3)
    await eng.halt("operator", "test")
    msg = await eng.rearm(reason)
    assert msg and "reason" in msg
    assert eng.state is TradingState.HALTED
    assert not await rows(eng, "rearm")


async def test_rearm_with_a_reason_re_arms_and_trading_resumes(make_profile, open_engine):
    eng = await open_engine(approval_profile(make_profile), seed=3)
    await eng.run(duration=60)
    await eng.halt("operator", "lunch")
    assert await eng.rearm("  back from lunch ") is None
    assert eng.state is TradingState.ACTIVE and eng.halt_reason == ""
    (row,) = await rows(eng, "rearm")
    assert row.data == {"reason": "back from lunch", "pause_peak": str(eng.portfolio.pause_peak), "acknowledged": []}
    mark = row.seq
    await first_pending(eng)  # signals become approvals again
    assert [r for r in await rows(eng, "order", after=mark) if r.data["status"] == "pending_approval"]


async def test_rearm_with_nothing_to_lift_or_asked_before_the_last_halt_is_refused(make_profile, open_engine):
    eng = await open_engine(approval_profile(make_profile), seed=3)
    await eng.run(duration=60)
    # Active, nothing tripped: re-arming would only re-base the drawdown pause and forget the
    # losing streak, so it is refused and nothing is journaled.
    assert eng.rearm_refusal() == "nothing to re-arm: trading is active and no breaker is tripped"
    assert await eng.rearm("just because") == eng.rearm_refusal()
    await eng.halt("operator", "first")
    assert eng.rearm_refusal() is None
    assert eng.snapshot().rearm_lifts  # the header offers the re-arm key
    seen = eng.trips
    await eng.halt("cli", "second, while the operator was typing")
    msg = await eng.rearm("stale", trips_seen=seen)
    assert msg == ("a halt (first) came after this re-arm was asked for: it stands; re-arm again to lift it")
    assert eng.state is TradingState.HALTED and not await rows(eng, "rearm")
    assert await eng.rearm("read both", trips_seen=eng.trips) is None
    assert eng.state is TradingState.ACTIVE
    assert [r.data["reason"] for r in await rows(eng, "rearm")] == ["read both"]

    # A breaker that trips while the dialog is open counts too: its re-arm is not the one asked.
    breakers = {b.name: b for b in eng.breakers}
    # (A day breaker blocking entries is lifted by the day boundary, not by a re-arm.)
    breakers["portfolio_day"].measure = lambda: (D(5), D(5))
    eng._evaluate_breakers(eng.clock.now())
    assert eng.state is TradingState.REDUCE_ONLY
    assert eng.rearm_refusal() == ("nothing to re-arm: portfolio_day lift on their own (at the venue's day or "
                                   "week boundary, or once quotes are fresh again)")
    await eng.journal.flush()
    assert not eng.snapshot().rearm_lifts  # ...and the header does not offer a key that would refuse
    breakers["portfolio_day"].measure = lambda: (D(0), D(5))
    eng.new_period("day")
    assert eng.state is TradingState.ACTIVE
    breakers["consecutive_losses"].measure = lambda: (D(5), D(5))
    eng._evaluate_breakers(eng.clock.now())
    assert eng.state is TradingState.REDUCE_ONLY
    seen = eng.trips
    breakers["portfolio_total"].measure = lambda: (D(20), D(20))
    eng._evaluate_breakers(eng.clock.now())
    assert await eng.rearm("stale", trips_seen=seen) == (
        "a breaker trip came after this re-arm was asked for: it stands; re-arm again to lift it")
    assert breakers["portfolio_total"].state.value == "tripped" and eng.state is TradingState.REDUCE_ONLY


async def test_drawdown_breaker_halts_and_rearm_is_refused_while_over_limit(make_profile, open_engine):
    risk = dict(LOOSE_RISK, drawdown_pause_pct=Decimal("0.2"), drawdown_stop_pct=Decimal("0.4"))
    for seed in (4, 5, 6, 7):
        eng = await open_engine(make_profile(f"dd{seed}", risk=risk), seed=seed)
        spent = 0
        while eng.state is not TradingState.HALTED and spent < 3 * 3600:
            await eng.run(duration=60)
            spent += 60
        if eng.state is TradingState.HALTED:
            break
    else:
        pytest.fail("no seed drew down 0.4 % in three hours")
    (halt,) = await rows(eng, "halt")
    assert halt.data["source"] == "breaker:drawdown_stop"
    b = {x.name: x for x in eng.breakers}["drawdown_stop"]
    assert b.state.value == "tripped"
    # breaker rows form a chain: one row per transition, no repeats
    last: dict[str, str] = {}
    for r in await rows(eng, "breaker"):
        assert r.data["old"] != r.data["new"]
        assert last.get(r.ref, "armed") == r.data["old"], r
        last[r.ref] = r.data["new"]
    crit = [r for r in await rows(eng, "alert") if r.ref == "breaker" and r.data["severity"] == "critical"]
    assert crit
    # re-arm is refused while the drawdown is still past the stop limit, accepted once it is not
    still_over = eng.portfolio.drawdown_pct >= Decimal("0.4")
    msg = await eng.rearm("I know")
    if still_over:
        assert msg and "drawdown_stop" in msg
        assert eng.state is TradingState.HALTED
        assert not await rows(eng, "rearm")
    else:
        assert msg is None and eng.state is not TradingState.HALTED
        assert len(await rows(eng, "rearm")) == 1


async def test_exposure_counts_working_entries_approvals_and_positions(make_profile, open_engine):
    eng = await open_engine(approval_profile(make_profile), seed=3)
    assert eng.exposure() == (0, 0)
    await first_pending(eng)
    assert eng.exposure() == (len(eng.snapshot().approvals), 0)
    await eng.reject(eng.snapshot().approvals[0].client_order_id, "no")
    assert eng.exposure() == (len(eng.snapshot().approvals), 0)


async def test_close_all_on_the_way_out_stops_new_entries_for_this_session_only(make_profile, open_engine):
    profile = make_profile(approval={"required": False}, risk=LOOSE_RISK)
    eng = await open_engine(profile, seed=4)
    await run_until(eng, lambda: bool(eng.portfolio.positions))
    mark = await last_seq(eng)
    await eng.close_all("console", stop_entries=True)
    await eng.run(duration=3600)  # an hour in which this strategy entered again before (see below)

    assert eng.portfolio.positions == {} and eng.exposure() == (0, 0)
    assert not [r for r in await rows(eng, "decision", after=mark) if r.data["purpose"] == "entry"]
    (row,) = await rows(eng, "close_all", after=mark)
    assert row.data["entries_stopped"] is True
    await eng.close()

    # Not a pause: the next session trades as configured, and enters again.
    again = await open_engine(profile, seed=4)
    assert again.entries_stopped is False
    mark = await last_seq(again)
    await run_until(again, lambda: bool(again.portfolio.positions), limit=3600 * 4)
    assert [r for r in await rows(again, "decision", after=mark) if r.data["purpose"] == "entry"]


async def test_a_run_that_dies_latches_the_halt_cancels_entries_and_keeps_stops(make_profile, open_engine):
    eng = await busy_engine(make_profile, open_engine)
    entries = [o.client_order_id for o in working_entries(eng)]
    stops = {s: eng.orders.stop_order(s) for s in eng.portfolio.positions}
    assert entries and stops and all(stops.values())
    before = await last_seq(eng)

    async def broken(batch) -> None:
        raise RuntimeError("a bug in the strategy")
    eng.on_batch = broken
    with pytest.raises(RuntimeError):
        await eng.run(600)

    # Nothing would handle an entry's fill from here on: the run's death is a halt.
    assert eng.state is TradingState.HALTED
    assert eng.halt_reason == "engine stopped with an error: RuntimeError: a bug in the strategy"
    assert working_entries(eng) == []
    assert not [o for o in await eng.broker.open_orders() if o.purpose is OrderPurpose.ENTRY]
    for cid in entries:
        assert (await rows(eng, "order", ref=cid))[-1].data["status"] == "cancelled"
    for symbol, stop in stops.items():
        assert eng.orders.stop_order(symbol) is stop  # the positions keep their stops
    (halt,) = await rows(eng, "halt", after=before)
    assert halt.data["source"] == "engine"
    # One critical alert says it all: the error, and that the engine halted.
    critical = [r for r in await rows(eng, "alert", after=before) if r.data["severity"] == "critical"]
    assert [r.ref for r in critical] == ["engine_failed"]
    assert "halted (working entries cancelled, stops kept)" in critical[0].data["message"]
    assert eng.snapshot().approvals == ()


async def test_flat_out_the_screen_still_gets_fresh_snapshots(make_profile, open_engine):
    """At speed 0 the loop gives the screen its turns inside the journal's commits, when rows are
    always uncommitted: the snapshot it reads then is the one the loop built at its last clean
    moment (the end of the last batch), never the one from before the run."""
    eng = await open_engine(make_profile(approval={"required": False}), seed=2)
    await eng.run(duration=5)
    before = eng.snapshot().ts
    seen = []
    commit = eng.journal._commit

    async def screen_reads_during_commit(rows):
        seen.append(eng.snapshot().ts)  # what the console's timer would read at this moment
        await commit(rows)
    eng.journal._commit = screen_reads_during_commit
    await eng.run(duration=120)
    assert len(seen) > 10
    assert seen[-1] > before + timedelta(seconds=60)  # it froze at `before`
