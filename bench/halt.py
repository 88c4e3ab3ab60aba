"""Benchmark: F12 (Engine.halt) to latch on and cancels issued for 200 open paper orders.

Each repetition puts N real working entry orders at the paper broker through the normal order
path (`engine.orders.send(order, "strategy")`: risk gate, journal outbox, broker), as far-from-
market buy limits that cannot fill, then times

    t0; task = engine.halt("bench", "bench"); t_latch; await task; t_done

`halt()` sets the latch synchronously; the task cancels every working entry at the broker,
processes the broker's cancel events and commits the halt to the journal. The figure is
t_done - t0 (latch on and all cancels issued and journaled), p50 over the repetitions, after a
warm-up repetition that is not counted. After every repetition all N orders are checked to be
cancelled at the broker and gone from engine.orders.working; the engine is then re-armed.

    python bench/halt.py [--orders 200] [--repeats 20] [--warmup 2]

Last line: `halt: X ms (target <= 20 ms)`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

TARGET_MS = 20.0


def make_profile(tmp: Path):
    from engine.profile import Profile

    return Profile(
        approval={"required": False},
        feed={"speed": 0},
        # Limits loosened so the gate passes a few hundred resting entries at once (it counts the
        # working ones against the position, exposure and cash limits).
        risk={
            "max_position_pct": 100,
            "max_symbol_exposure_pct": 100,
            "max_group_exposure_pct": 100,
            "max_open_positions": 10_000,
            "max_trades_per_day": 1_000_000,
            "max_trades_per_hour": 1_000_000,
            "min_seconds_between_trades": 0,
            "min_edge": 0,
            "min_confidence": 0,
            "cash_reserve_pct": 0,
            "max_total_capital_usd": 1_000_000_000,
            # The entries working in one symbol are one trade at their stop, together.
            "max_single_trade_loss_usd": 1_000_000,
            "max_new_positions_per_day": 1_000_000,
            "max_new_positions_per_week": 1_000_000,
            "max_limit_distance_pct": 50,  # the resting limits sit 40 % under the market
            "max_volume_fraction": 1,
            "max_book_fraction": 10,
            "allowed_readiness": ["ready", "forming", "not_ready"],
        },
        orders={"entry_type": "limit", "limit_timeout_seconds": 86_400},
        paper={"starting_cash": 1_000_000},
        journal={"path": str(tmp / "bench.sqlite")},
        logging={"path": str(tmp / "bench.log")},
    )


async def place_orders(engine, n: int) -> list[str]:
    """n resting buy limits 40 % under the bid, spread over the profile's symbols; real working orders."""
    from engine.models import Order, OrderPurpose, OrderStatus, OrderType, Side

    symbols = list(engine.profile.symbols)
    ids = []
    for i in range(n):
        sym = symbols[i % len(symbols)]
        q = engine.quotes[sym]
        limit = (q.bid * Decimal("0.6")).quantize(Decimal("0.01"))
        stop = (limit * Decimal("0.92")).quantize(Decimal("0.01"))
        qty = (Decimal(50) / limit).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
        order = Order(engine.orders.new_id(), sym, Side.BUY, OrderType.LIMIT, qty, OrderPurpose.ENTRY,
                      engine.clock.now(), limit_price=limit, protective_stop=stop, reason="bench resting entry")
        if not await engine.orders.send(order, "strategy"):
            raise SystemExit(f"bench setup: the risk gate refused order {i}: {order.reason}")
        ids.append(order.client_order_id)
    await engine.orders.process_events()  # the broker's SUBMITTED acks
    for cid in ids:
        broker_order = await engine.broker.fetch_order(cid)
        if broker_order is None or broker_order.status is not OrderStatus.SUBMITTED:
            raise SystemExit(f"bench setup: {cid} is not working at the broker")
        if cid not in engine.orders.working:
            raise SystemExit(f"bench setup: {cid} is not in engine.orders.working")
    return ids


async def verify_cancelled(engine, ids: list[str]) -> None:
    from engine.models import OrderStatus
    from engine.risk.gate import TradingState

    if engine.state is not TradingState.HALTED:
        raise SystemExit("halt did not latch")
    open_at_broker = {o.client_order_id for o in await engine.broker.open_orders()}
    for cid in ids:
        b = await engine.broker.fetch_order(cid)
        if b is None or b.status is not OrderStatus.CANCELLED or cid in open_at_broker:
            raise SystemExit(f"{cid} not cancelled at the broker ({None if b is None else b.status})")
        if cid in engine.orders.working or engine.orders.orders[cid].status is not OrderStatus.CANCELLED:
            raise SystemExit(f"{cid} still working in the engine")


async def main_async(args: argparse.Namespace) -> float:
    from engine.engine import Engine

    with tempfile.TemporaryDirectory(prefix="tc-bench-halt-") as d:
        tmp = Path(d)
        os.environ["TRADECONSOLE_HOME"] = str(tmp)
        engine = await Engine.open(make_profile(tmp), speed=0.0)
        try:
            engine.preroll()  # quotes for every symbol at the broker and in the engine
            totals, latches = [], []
            for rep in range(args.warmup + args.repeats):
                ids = await place_orders(engine, args.orders)
                await engine.journal.flush()
                t0 = time.perf_counter()
                task = engine.halt("bench", "bench")
                t_latch = time.perf_counter()
                await task
                t_done = time.perf_counter()
                await verify_cancelled(engine, ids)
                err = await engine.rearm("bench: next repetition")
                if err:
                    raise SystemExit(f"re-arm failed: {err}")
                if rep >= args.warmup:
                    totals.append((t_done - t0) * 1000)
                    latches.append((t_latch - t0) * 1000)
        finally:
            await engine.close()
    totals.sort()
    p90 = totals[min(len(totals) - 1, int(round(0.9 * (len(totals) - 1))))]
    print(f"{args.repeats} repetitions x {args.orders} working orders, all cancelled at the broker each time")
    print(f"latch on (halt() returns): p50 {statistics.median(latches) * 1000:.0f} us, "
          f"max {max(latches) * 1000:.0f} us")
    print(f"latch + all cancels issued + journaled (task done): p50 {statistics.median(totals):.2f} ms, "
          f"p90 {p90:.2f} ms, min {totals[0]:.2f} ms, max {totals[-1]:.2f} ms")
    return statistics.median(totals)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=200, help="working entry orders to cancel (default 200)")
    p.add_argument("--repeats", type=int, default=20, help="timed repetitions; p50 is reported")
    p.add_argument("--warmup", type=int, default=2, help="untimed repetitions first")
    args = p.parse_args(argv)
    ms = asyncio.run(main_async(args))
    print(f"halt: {ms:.2f} ms (target <= {TARGET_MS:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
