"""Benchmark: bootstrap confidence intervals, 10,000 resamples over 10,000 trades.

Times `bootstrap_trades` (win rate, profit factor, expectancy) plus `bootstrap_sharpe` over a
year of daily returns, the work `tradeconsole readiness` and `report stage` do, on seeded
synthetic P&L. Median of a few runs; a Monte Carlo of the same size is timed for information.

    python bench/bootstrap.py [--trades N] [--resamples N] [--repeats N] [--workers N]

Last line: `bootstrap: <seconds> s (target <= 1 s)`.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

TARGET = 1.0


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np

    from engine.analytics.resample import bootstrap_sharpe, bootstrap_trades, monte_carlo

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trades", type=int, default=10_000)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None, help="threads (default: up to 2)")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(12345)
    pnl = rng.normal(2.0, 40.0, args.trades)  # a modest edge, dollars per trade
    daily = rng.normal(0.001, 0.01, 365)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ci = bootstrap_trades(pnl, resamples=args.resamples, seed=7, workers=args.workers)
        sh = bootstrap_sharpe(daily, 365, resamples=args.resamples, seed=7)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    mc = monte_carlo(pnl, 10_000.0, resamples=args.resamples, seed=7, workers=args.workers)
    mc_s = time.perf_counter() - t0
    print(f"win rate {ci['win_rate_pct']['low']:.2f}..{ci['win_rate_pct']['high']:.2f} %   "
          f"profit factor {ci['profit_factor']['low']:.3f}..{ci['profit_factor']['high']:.3f}   "
          f"expectancy {ci['expectancy']['low']:.3f}..{ci['expectancy']['high']:.3f}   "
          f"sharpe {sh['low']:.2f}..{sh['high']:.2f}")
    print(f"monte carlo {args.resamples:,} paths x {args.trades:,} trades: {mc_s:.2f} s "
          f"(p50 max drawdown {mc['max_drawdown_pct']['p50']:.2f} %)")
    print(f"runs: {', '.join(f'{t:.3f}' for t in times)} s")
    print(f"bootstrap: {statistics.median(times):.3f} s (target <= {TARGET:g} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
