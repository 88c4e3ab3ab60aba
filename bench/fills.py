"""Benchmark: orders filled per second through the risk gate, the paper broker and the journal.

A strategy defined here trades on every tick: a buy signal when flat, an exit signal when it holds
a position, so every symbol makes a round trip every couple of ticks. The profile opens every
limit wide (trade counts, interval, edge/confidence, open positions, loss breakers, cash reserve),
enters at market, and the paper broker has zero latency, so each order fills on submission. The
full engine path is unchanged: sizing, gate and its journaled decision, the outbox commit before
each submit, protective stops placed and cancelled, fills applied to the portfolio and journaled.

The figure is orders that reached status filled during `engine.run()` per wall second of it
(after the preroll; the feed is consumed in `run(duration=chunk)` slices until about `--seconds`
of wall time have passed), median of a few fresh engines.

    python bench/fills.py [--symbols 20] [--seconds 5] [--chunk SIM_SECONDS] [--repeats 3]

Last line: `fills: N orders/s (target >= 5000 orders/s)`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

TARGET = 5_000
KNOWN = ["BTC", "ETH", "SOL", "LTC", "AVAX", "LINK", "DOT", "XRP", "ADA", "DOGE"]


def symbols(n: int) -> list[str]:
    names = [f"{b}/USD" for b in KNOWN]
    names += [f"SYM{i:02d}/USD" for i in range(len(names) + 1, n + 1)]
    return names[:n]


def make_strategy():
    from engine.models import Side, Signal
    from engine.strategy.base import Strategy

    stop_frac = Decimal("0.92")  # 8 % under the entry: inside the stop-loss check's 5-15 % band
    stop_up = Decimal("1.08")
    q8 = Decimal("0.00000001")

    class EveryTickStrategy(Strategy):
        """Buy when flat, sell (exit) otherwise: a signal on every quote."""

        name = "every_tick"

        def on_quote(self, quote, position_qty):
            if position_qty == 0:
                return Signal(quote.symbol, Side.BUY, 1.0, 1.0, (quote.ask * stop_frac).quantize(q8),
                              quote.ask, "bench entry", self.name, quote.ts)
            # Held: an exit (the engine asks the strategy after the batch's fills, so this never
            # meets a position that has just closed). The stop above the bid keeps it a valid
            # signal for the gate's stop check whichever way it were read.
            return Signal(quote.symbol, Side.SELL, 1.0, 1.0, (quote.bid * stop_up).quantize(q8), quote.bid,
                          "bench exit", self.name, quote.ts)

    return EveryTickStrategy()


def make_profile(tmp: Path, n_symbols: int, seed: int):
    from engine.profile import Profile

    big = 1_000_000_000
    return Profile(
        symbols=symbols(n_symbols),
        approval={"required": False},
        feed={"speed": 0, "seed": seed},
        risk={
            "max_open_positions": 10_000,
            "max_trades_per_day": big,
            "max_trades_per_hour": big,
            "min_seconds_between_trades": 0,
            "min_edge": 0,
            "min_confidence": 0,
            "max_consecutive_losses": big,
            "daily_loss_pct": 100,
            "weekly_loss_pct": 100,
            "drawdown_pause_pct": 99,
            "drawdown_stop_pct": 100,
            "cash_reserve_pct": 0,
            "max_single_trade_loss_usd": big,
            "max_total_capital_usd": big,
            "max_new_positions_per_day": big,
            "max_new_positions_per_week": big,
            "max_symbol_exposure_pct": 100,
            "max_group_exposure_pct": 100,
            "max_spread_bps": 10_000,
            "max_volume_fraction": 1,
            "max_book_fraction": 10,
            "max_price_jump_pct": 100,
            "portfolio_day_stop_pct": 100,
            "portfolio_week_alert_pct": 100,
            "portfolio_total_pause_pct": 100,
            "allowed_readiness": ["ready", "forming", "not_ready"],
        },
        # Ample cash so spread and fees of many round trips never move a loss limit.
        paper={"latency_ms": 0, "starting_cash": big},
        orders={"entry_type": "market"},
        journal={"path": str(tmp / "bench.sqlite")},
        logging={"path": str(tmp / "bench.log")},
    )


async def one_run(args: argparse.Namespace) -> tuple[int, float, dict]:
    from engine.engine import Engine
    from engine.models import OrderStatus

    with tempfile.TemporaryDirectory(prefix="tc-bench-fills-") as d:
        tmp = Path(d)
        os.environ["TRADECONSOLE_HOME"] = str(tmp)
        engine = await Engine.open(make_profile(tmp, args.symbols, args.seed), speed=0.0)
        try:
            engine.strategy = make_strategy()
            engine.preroll()  # no orders; not timed
            before = sum(1 for o in engine.orders.orders.values() if o.status is OrderStatus.FILLED)
            # Consume the feed in slices of simulated time until the wall budget is spent, so the
            # run lasts a few seconds however fast or slow the engine is.
            t0 = time.perf_counter()
            cpu0 = time.thread_time()
            wall = 0.0
            while wall < args.seconds:
                await engine.run(duration=args.chunk)
                wall = time.perf_counter() - t0
            cpu = time.thread_time() - cpu0
            filled = sum(1 for o in engine.orders.orders.values() if o.status is OrderStatus.FILLED) - before
            info = dict(engine.counters)
            info["refused_decisions"] = sum(1 for o in engine.orders.orders.values()
                                            if o.status is OrderStatus.REJECTED)
            info["journal_rows"] = engine.journal.rows_written
            info["state"] = engine.state.value
            # The engine's own thread: wall time beyond it is the journal's commit (another
            # thread) and whatever the host takes away.
            info["cpu_us_per_order"] = 1e6 * cpu / filled if filled else float("nan")
        finally:
            await engine.close()
    return filled, wall, info


async def main_async(args: argparse.Namespace) -> float:
    rates = []
    for i in range(args.repeats):
        filled, wall, info = await one_run(args)
        rate = filled / wall
        rates.append(rate)
        print(f"run {i + 1}/{args.repeats}: {filled:,} orders filled in {wall:.2f} s = {rate:,.0f} orders/s  "
              f"({info['ticks']:,} quotes, signals {info['signals']:,}, orders sent {info['orders']:,}, "
              f"fills {info['fills']:,}, rejected {info['refused_decisions']}, "
              f"journal rows {info['journal_rows']:,}, state {info['state']}; "
              f"engine thread CPU {info['cpu_us_per_order']:.0f} us per filled order)", flush=True)
        if info["refused_decisions"] or info["state"] != "active":
            print("  warning: the gate refused orders or the engine left the active state; "
                  "the limits are not wide enough", flush=True)
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--symbols", type=int, default=20)
    p.add_argument("--seconds", type=float, default=5.0,
                   help="wall seconds per run (default 5); the feed is consumed in slices until then")
    p.add_argument("--chunk", type=float, default=10.0,
                   help="simulated seconds per engine.run() slice (one quote per symbol per second)")
    p.add_argument("--repeats", type=int, default=3, help="fresh engines to run; the median is reported")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    rate = asyncio.run(main_async(args))
    print(f"fills: {rate:.0f} orders/s (target >= {TARGET} orders/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
