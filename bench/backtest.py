"""Benchmark: bars per second replayed through the full engine by `tradeconsole backtest`.

CSV replay feed (speed 0) -> strategy -> sizing -> risk gate -> orders -> paper broker ->
portfolio -> journal (SQLite in a temporary directory), approval off, no services: exactly what
`backtest` runs. Default data: the bundled config/data/sim-1m.csv (one-minute bars, four
symbols); the profile's trade throttles are loosened so the engine keeps trading through the
whole file (with the shipped limits it stops after a few losses and only refuses signals). The
figure is bars (quotes) per wall second of `Engine.run()`, median of a few runs; CSV parsing
and metrics are timed separately.

    python bench/backtest.py [--csv FILE] [--profile PATH] [--repeats N] [--shipped-limits]

Last line: `backtest: N bars/s (target none)`.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOOSE = {"max_trades_per_day": 500, "max_trades_per_hour": 100, "min_seconds_between_trades": 0,
         "max_consecutive_losses": 100, "max_new_positions_per_day": 400, "max_new_positions_per_week": 2000}


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from engine.analytics.backtest import backtest_profile, run_engine
    from engine.analytics.journal_data import load
    from engine.analytics.metrics import compute
    from engine.config_loader import load_profile
    from engine.profile import Profile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=str(ROOT / "config" / "data" / "sim-1m.csv"))
    ap.add_argument("--profile", default=str(ROOT / "config" / "paper-auto.yaml"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shipped-limits", action="store_true", help="keep the profile's trade throttles as they are")
    args = ap.parse_args(argv)

    base = load_profile(args.profile)
    if not args.shipped_limits:
        data = base.model_dump(mode="json")
        data["risk"].update(LOOSE)
        base = Profile.model_validate(data)
    rates, parse_s, metrics_s, trades = [], [], [], 0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="tc-bench-backtest-") as d:
            journal = Path(d) / "bt.sqlite"
            t0 = time.perf_counter()
            from engine.feeds.csv_replay import CsvReplayFeed

            CsvReplayFeed(args.csv)  # the engine parses it again on open; timed here on its own
            parse_s.append(time.perf_counter() - t0)
            res = asyncio.run(run_engine(backtest_profile(base, args.csv, journal)))
            rates.append(res.quotes / res.wall_seconds)
            t0 = time.perf_counter()
            m = compute(load(journal))
            metrics_s.append(time.perf_counter() - t0)
            trades = m.trades["trades"]
    print(f"{res.quotes:,} bars, {res.batches:,} timestamps, {trades} closed trades, "
          f"{res.counters['signals']:,} signals, {res.counters['fills']:,} fills")
    print(f"csv parse {statistics.median(parse_s):.3f} s   metrics {statistics.median(metrics_s):.3f} s   "
          f"runs: {', '.join(f'{r:,.0f}' for r in rates)} bars/s")
    print(f"backtest: {statistics.median(rates):,.0f} bars/s (target none)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
