"""Benchmark: market events per second through the full engine path, headless, journal on.

Feed (simulated, speed 0) -> default strategy -> sizing -> risk gate -> orders -> paper broker ->
portfolio -> journal (SQLite in a temporary directory), approval off. The strategy's preroll
(warm-up on simulated history) runs before the timer starts; the figure is quotes processed by
`run()` (engine.counters["ticks"]) per wall second of `run()`, median of a few fresh engines.

    python bench/pipeline.py [--duration SIM_SECONDS] [--repeats N] [--seed N]

Last line: `pipeline: N events/s (target >= 20000 events/s)`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET = 20_000


def make_profile(tmp: Path, seed: int):
    from engine.profile import Profile

    return Profile(
        approval={"required": False},
        feed={"speed": 0, "seed": seed},
        journal={"path": str(tmp / "bench.sqlite")},
        logging={"path": str(tmp / "bench.log")},
    )


async def one_run(duration: float, seed: int) -> tuple[int, float, dict]:
    from engine.engine import Engine

    with tempfile.TemporaryDirectory(prefix="tc-bench-pipeline-") as d:
        tmp = Path(d)
        os.environ["TRADECONSOLE_HOME"] = str(tmp)
        engine = await Engine.open(make_profile(tmp, seed), speed=0.0)
        try:
            engine.preroll()  # warm-up: not part of the measured path
            t0 = time.perf_counter()
            await engine.run(duration=duration)
            wall = time.perf_counter() - t0
            ticks = engine.counters["ticks"]
            counters = dict(engine.counters)
            counters["journal_rows"] = engine.journal.rows_written
        finally:
            await engine.close()
    return ticks, wall, counters


async def main_async(args: argparse.Namespace) -> float:
    rates = []
    for i in range(args.repeats):
        ticks, wall, counters = await one_run(args.duration, args.seed)
        rate = ticks / wall
        rates.append(rate)
        print(f"run {i + 1}/{args.repeats}: {ticks:,} quotes in {wall:.2f} s = {rate:,.0f} events/s  "
              f"(signals {counters['signals']}, orders {counters['orders']}, fills {counters['fills']}, "
              f"journal rows {counters['journal_rows']:,})", flush=True)
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=12 * 3600.0,
                   help="simulated seconds per run (default 12 h = 43200)")
    p.add_argument("--repeats", type=int, default=3, help="fresh engines to run; the median is reported")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    rate = asyncio.run(main_async(args))
    print(f"pipeline: {rate:.0f} events/s (target >= {TARGET} events/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
