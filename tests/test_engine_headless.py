"""A long unattended paper run (approval off, like paper-auto) and the invariants it must keep.

The run happens once per module (and once more for the determinism check); each test reads the
journal rows and the three independent views of the account: the journal's fills, the engine's
portfolio, and the paper broker's own account.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import ANY_READINESS, LOOSE_RISK, build_profile, signed
from engine.engine import Engine
from engine.journal import JournalRow
from engine.models import Order, OrderPurpose, OrderType, Side

SEED = 3
HOURS = 3
TERMINAL = {"filled", "cancelled", "rejected", "expired"}


@dataclass
class RunResult:
    rows: list[JournalRow]
    counters: dict[str, int]
    starting_cash: Decimal
    cash: Decimal
    equity: Decimal
    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    closed_trades: list[Decimal]
    open_trade_pnl: Decimal  # sum over open positions of (realized - fees) so far
    positions: dict[str, Decimal]
    avg_prices: dict[str, Decimal]
    position_stops: dict[str, tuple[str | None, Decimal | None]]  # symbol -> (stop order id, stop price)
    engine_working: dict[str, Order]
    broker_positions: dict[str, Decimal]
    broker_cash: Decimal
    broker_open: list[Order]
    broker_orders: dict[str, Order | None] = field(default_factory=dict)  # every journaled cid

    def kind(self, *kinds: str) -> list[JournalRow]:
        return [r for r in self.rows if r.kind in kinds]


async def _session(path: Path, seed: int, hours: float = HOURS) -> RunResult:
    profile = build_profile(path, "auto", risk=LOOSE_RISK)
    eng = await Engine.open(profile, seed=seed)
    try:
        await eng.run(duration=hours * 3600)
        # End on a moment with an open position, so the protective-stop check has a subject.
        extra = 0
        while not eng.portfolio.positions and extra < 4 * 3600:
            await eng.run(duration=60)
            extra += 60
        rows = await eng.journal.rows()
        p = eng.portfolio
        cids = {r.ref for r in rows if r.kind == "order"}
        result = RunResult(
            rows=rows,
            counters=dict(eng.counters),
            starting_cash=p.starting_cash,
            cash=p.cash,
            equity=p.equity,
            realized=p.realized_pnl,
            unrealized=p.unrealized_pnl,
            fees=p.fees,
            closed_trades=list(p.closed_trades),
            open_trade_pnl=sum((pos.realized_pnl - pos.fees for pos in p.positions.values()), Decimal(0)),
            positions={s: pos.quantity for s, pos in p.positions.items()},
            avg_prices={s: pos.avg_price for s, pos in p.positions.items()},
            position_stops={s: (pos.stop_order_id, pos.stop_price) for s, pos in p.positions.items()},
            engine_working=dict(eng.orders.working),
            broker_positions=await eng.broker.positions(),
            broker_cash=(await eng.broker.balances())["USD"],
            broker_open=await eng.broker.open_orders(),
            broker_orders={cid: await eng.broker.fetch_order(cid) for cid in cids},
        )
    finally:
        await eng.close()
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return asyncio.run(_session(tmp_path_factory.mktemp("headless"), SEED))


# -- trading happened ---------------------------------------------------------------------------
def test_the_run_trades(run: RunResult) -> None:
    fills = run.kind("fill")
    assert run.counters["fills"] == len(fills) > 0
    assert len(run.closed_trades) >= 3
    assert run.counters["orders"] > 0
    # the session is framed by a session row and (after close) nothing else is missing
    assert run.rows[0].kind == "session"
    assert any(r.kind == "equity" for r in run.rows)


# -- positions reconcile across journal, portfolio and broker -------------------------------------
def test_fills_reconcile_with_positions(run: RunResult) -> None:
    from_journal: dict[str, Decimal] = defaultdict(Decimal)
    for r in run.kind("fill"):
        d = r.data
        from_journal[d["symbol"]] += signed(d["side"], Decimal(d["quantity"]))
        # each fill row states the position it left; it must match the running sum
        assert Decimal(d["position_after"]) == from_journal[d["symbol"]], r
    journal_open = {s: q for s, q in from_journal.items() if q != 0}
    assert journal_open == run.positions
    assert run.broker_positions == run.positions
    assert run.positions, "the run should end with an open position"


def test_cash_from_journal_fills_matches_portfolio_and_broker(run: RunResult) -> None:
    cash = run.starting_cash
    for r in run.kind("fill"):
        d = r.data
        cash -= signed(d["side"], Decimal(d["quantity"])) * Decimal(d["price"]) + Decimal(d["fee"])
    assert cash == run.cash
    assert run.broker_cash == run.cash


def test_pnl_arithmetic_holds(run: RunResult) -> None:
    lhs = run.starting_cash + run.realized - run.fees + run.unrealized
    assert abs(lhs - run.equity) < Decimal("0.000001"), (lhs, run.equity)
    assert lhs.quantize(Decimal("0.01")) == run.equity.quantize(Decimal("0.01"))
    fills = run.kind("fill")
    assert sum((Decimal(r.data["realized"]) for r in fills), Decimal(0)) == run.realized
    assert sum((Decimal(r.data["fee"]) for r in fills), Decimal(0)) == run.fees
    # every round trip's net P&L is accounted for: closed ones plus what the open ones booked
    assert sum(run.closed_trades, Decimal(0)) + run.open_trade_pnl == run.realized - run.fees


# -- invariant 1: nothing reaches the broker without an approving decision ------------------------
def test_every_submitted_order_has_an_earlier_approving_decision(run: RunResult) -> None:
    decisions: dict[str, list[JournalRow]] = defaultdict(list)
    for r in run.kind("decision"):
        decisions[r.ref].append(r)
    submitted = [r for r in run.kind("order") if r.data["status"] == "submitted"]
    assert submitted
    purposes = {r.data["purpose"] for r in submitted}
    assert {"entry", "stop"} <= purposes
    for o in submitted:
        before = [d for d in decisions.get(o.ref, []) if d.seq < o.seq]
        assert before, f"order {o.ref} submitted without a decision"
        last = before[-1]
        assert last.data["approved"] is True and last.data["failed"] is None, (o, last)
        assert last.data["checks"], "a decision keeps its checks"
        assert all(c["passed"] for c in last.data["checks"])


def test_broker_knows_only_orders_with_a_submitted_row(run: RunResult) -> None:
    submitted = {r.ref for r in run.kind("order") if r.data["status"] == "submitted"}
    seen_by_broker = {cid for cid, o in run.broker_orders.items() if o is not None}
    assert seen_by_broker == submitted
    assert {o.client_order_id for o in run.broker_open} <= submitted
    # refused orders never reach the broker
    refused = {r.ref for r in run.kind("order") if r.data["status"] == "rejected"} - submitted
    assert refused, "some signals should have been refused by the gate in hours of trading"
    assert all(run.broker_orders[cid] is None for cid in refused)


def test_refused_decisions_name_a_failing_check(run: RunResult) -> None:
    refused = [r for r in run.kind("decision") if not r.data["approved"]]
    assert refused
    for r in refused:
        names = [c["name"] for c in r.data["checks"]]
        if r.data["failed"] == "sizing":
            continue
        assert r.data["failed"] in names
        first_fail = next(c for c in r.data["checks"] if not c["passed"])
        assert first_fail["name"] == r.data["failed"]


# -- invariant 3 (part): no position is ever left without a protective stop ---------------------
def test_open_positions_have_a_working_stop_at_the_end(run: RunResult) -> None:
    assert run.positions
    broker_stops = {o.client_order_id: o for o in run.broker_open if o.type is OrderType.STOP}
    for symbol, qty in run.positions.items():
        stop_id, stop_price = run.position_stops[symbol]
        assert stop_id is not None and stop_price is not None, symbol
        mine = run.engine_working.get(stop_id)
        assert mine is not None and mine.purpose is OrderPurpose.STOP
        venue = broker_stops.get(stop_id)
        assert venue is not None, f"{symbol}: the venue has no working stop"
        assert venue.remaining == abs(qty)
        assert venue.stop_price == stop_price
        assert (venue.side.value == "sell") == (qty > 0)
        # a long's stop sits below its entry price, a short's above
        avg = run.avg_prices[symbol]
        assert (stop_price < avg) if qty > 0 else (stop_price > avg), (symbol, stop_price, avg)
    # and no stray stops for flat symbols
    assert {o.symbol for o in broker_stops.values()} == set(run.positions)


def test_no_position_was_ever_bare_in_the_journal(run: RunResult) -> None:
    """Replay order and fill rows tick by tick: at the end of every tick, each open position is
    covered by a working stop of its full size (or a working exit that is flattening it)."""
    pos: dict[str, Decimal] = defaultdict(Decimal)
    orders: dict[str, dict] = {}
    working: set[str] = set()
    filled: dict[str, Decimal] = defaultdict(Decimal)
    checked = 0

    def check(ts: str) -> None:
        nonlocal checked
        for symbol, qty in pos.items():
            if qty == 0:
                continue
            checked += 1
            cover = [orders[c] for c in working if orders[c]["symbol"] == symbol]
            stops = [o for o in cover if o["purpose"] == "stop"
                     and Decimal(o["quantity"]) - filled[o["client_order_id"]] == abs(qty)]
            exits = [o for o in cover if o["purpose"] == "exit"]
            assert stops or exits, f"{symbol} position {qty} bare at {ts}"

    rel = [r for r in run.rows if r.kind in ("order", "fill")]
    for i, r in enumerate(rel):
        if r.kind == "order":
            orders[r.ref] = r.data
            if r.data["status"] in ("submitted", "partially_filled"):
                working.add(r.ref)
            elif r.data["status"] in TERMINAL:
                working.discard(r.ref)
        else:
            pos[r.data["symbol"]] += signed(r.data["side"], Decimal(r.data["quantity"]))
            filled[r.ref] += Decimal(r.data["quantity"])
        if i + 1 == len(rel) or rel[i + 1].ts != r.ts:
            check(r.ts)
    assert checked > 0


# -- invariant 4: client order ids are unique --------------------------------------------------
def test_client_order_ids_never_repeat(run: RunResult) -> None:
    orders = run.kind("order")
    assert all(r.ref == r.data["client_order_id"] for r in orders)
    submitted = [r.ref for r in orders if r.data["status"] == "submitted"]
    assert len(submitted) == len(set(submitted))
    # one logical order per id: symbol, side, type and purpose never change under one id
    shape: dict[str, tuple] = {}
    for r in orders:
        s = (r.data["symbol"], r.data["side"], r.data["type"], r.data["purpose"])
        assert shape.setdefault(r.ref, s) == s, r
    assert not [r for r in orders if "duplicate" in (r.data["reason"] or "")]
    fills_ids = [r.data["fill_id"] for r in run.kind("fill")]
    assert len(fills_ids) == len(set(fills_ids))


# -- invariant 7: money is exact ---------------------------------------------------------------
def test_fill_money_is_decimal_strings_that_round_trip(run: RunResult) -> None:
    for r in run.kind("fill"):
        for key in ("quantity", "price", "fee", "realized"):
            text = r.data[key]
            assert isinstance(text, str), (key, r)
            d = Decimal(text)
            assert d.is_finite() and str(d) == text
        assert Decimal(r.data["quantity"]) > 0 and Decimal(r.data["price"]) > 0
        assert Decimal(r.data["fee"]) >= 0
        assert -Decimal(r.data["price"]).as_tuple().exponent <= 8
    for value in (run.cash, run.equity, run.realized, run.unrealized, run.fees, *run.positions.values(),
                  *run.broker_positions.values(), run.broker_cash):
        assert type(value) is Decimal
    for r in run.kind("equity"):
        for key in ("equity", "cash", "realized", "unrealized", "fees"):
            assert isinstance(r.data[key], str)
            Decimal(r.data[key])


# -- invariant 8: deterministic ----------------------------------------------------------------
def _fills(res: RunResult) -> list[tuple]:
    return [(r.ts, r.ref, r.data) for r in res.kind("fill")]


def test_same_seed_same_fills_other_seed_differs(run: RunResult, tmp_path: Path) -> None:
    again = asyncio.run(_session(tmp_path / "again", SEED))
    assert _fills(again) == _fills(run)
    assert again.equity == run.equity
    # and the comparison can tell: another seed trades differently
    other = asyncio.run(_session(tmp_path / "other", SEED + 1, hours=1))
    assert _fills(other) != _fills(run)


# -- run() in slices, and the limit entry's market fallback ---------------------------------------
async def _ticks_after_slices(tmp: Path, slices: list[float]) -> tuple[int, int, datetime]:
    eng = await Engine.open(build_profile(tmp, "slices"), seed=SEED)
    try:
        eng.preroll()
        t0, ticks0 = eng.clock.now(), eng.counters["ticks"]
        for s in slices:
            await eng.run(duration=s)
        elapsed = int((eng.clock.now() - t0).total_seconds())
        return eng.counters["ticks"] - ticks0, elapsed * len(eng.profile.symbols), eng.clock.now()
    finally:
        await eng.close()


async def test_one_run_processes_every_quote_up_to_its_end(tmp_path: Path) -> None:
    seen, expected, _ = await _ticks_after_slices(tmp_path, [600])
    assert seen == expected > 0


async def test_running_in_slices_loses_no_quotes(tmp_path: Path) -> None:
    seen, expected, _ = await _ticks_after_slices(tmp_path, [200, 200, 200])
    assert seen == expected


async def test_stop_wakes_a_paced_run_at_once_however_slow_its_speed(tmp_path: Path) -> None:
    # At speed 0.001 the next one-second batch is ~17 minutes of wall time away: a halt or a
    # Ctrl-C must not wait for it, and the batch it was waiting for is traded by the next run.
    eng = await Engine.open(build_profile(tmp_path, "slow"), seed=3, speed=0.001)
    try:
        eng.preroll()
        runner = asyncio.create_task(eng.run())
        await asyncio.sleep(0.3)
        ticks = eng.counters["ticks"]
        eng.stop()
        await asyncio.wait_for(runner, 2)
        assert eng.counters["ticks"] == ticks and eng._carry is not None
    finally:
        await eng.close()


CSV_SYMBOL = "XYZ/USD"


def _csv_profile(tmp: Path, seconds: int = 120) -> object:
    """A replay where a buy limit at 99.50 never becomes marketable: ask 100.00, then 100.10."""
    lines = ["timestamp,symbol,bid,ask,bid_size,ask_size"]
    for i in range(seconds):
        ask = Decimal("100.00") if i < 5 else Decimal("100.10")
        lines.append(f"2026-01-05T00:{i // 60:02d}:{i % 60:02d}Z,{CSV_SYMBOL},{ask - Decimal('0.10')},{ask},1000,1000")
    path = tmp / "quotes.csv"
    path.write_text("\n".join(lines) + "\n")
    return build_profile(tmp, "csv", feed={"kind": "csv", "csv_path": str(path)}, symbols=[CSV_SYMBOL],
                         orders={"entry_type": "limit", "limit_timeout_seconds": 30}, risk=ANY_READINESS)


async def _limit_then_wait(tmp: Path, qty: Decimal) -> tuple[Engine, str]:
    eng = await Engine.open(_csv_profile(tmp))
    await eng.run(duration=2)
    order = Order(eng.orders.new_id(), CSV_SYMBOL, Side.BUY, OrderType.LIMIT, qty, OrderPurpose.ENTRY,
                  eng.clock.now(), limit_price=Decimal("99.50"), protective_stop=Decimal("92.00"))
    assert await eng.orders.send(order, "strategy") is True
    await eng.run(duration=60)
    return eng, order.client_order_id


async def test_limit_entry_falls_back_to_market_after_its_timeout(tmp_path: Path) -> None:
    eng, cid = await _limit_then_wait(tmp_path, Decimal("5"))
    try:
        assert (await eng.journal.rows(kinds=["order"], ref=cid))[-1].data["status"] == "cancelled"
        children = [r for r in await eng.journal.rows(kinds=["order"]) if r.data["parent_id"] == cid]
        assert children and children[0].data["type"] == "market"
        assert [r.data["status"] for r in children] == ["submitted", "filled"]
        pos = eng.portfolio.positions[CSV_SYMBOL]
        assert pos.quantity == Decimal("5") == (await eng.broker.positions())[CSV_SYMBOL]
        (fill,) = await eng.journal.rows(kinds=["fill"], ref=children[0].ref)
        assert Decimal(fill.data["price"]) >= Decimal("100.10")  # took the ask (plus slippage)
        stop = eng.orders.stop_order(CSV_SYMBOL)
        assert stop is not None and stop.stop_price == Decimal("92.00") and stop.quantity == Decimal("5")
    finally:
        await eng.close()


async def test_limit_entry_sized_at_the_cap_still_gets_its_fallback(tmp_path: Path) -> None:
    # 10 x 99.50 = 995 fits the 1000 cap (10 % of 10000); at the ask of 100.10 it is 1001.
    eng, cid = await _limit_then_wait(tmp_path, Decimal("10"))
    try:
        pos = eng.portfolio.positions.get(CSV_SYMBOL)
        assert pos is not None and pos.quantity > 0, "the approved entry was dropped"
        assert pos.quantity * Decimal("100.10") <= Decimal("1000")
    finally:
        await eng.close()
