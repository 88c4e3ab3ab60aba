"""OHLCV bars from the simulated market, for backtests that must not depend on downloaded data.

`python -m engine.analytics.datagen OUT.csv [--symbols ...] [--minutes N] [--seed N]` writes
bars in the layout `CsvReplayFeed` reads (timestamp,symbol,open,high,low,close,volume). The
bundled `config/data/sim-1m.csv` is this with its defaults; the same arguments always give the
same bytes (the market is seeded per symbol, and numbers are formatted from exact Decimals).
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from engine.clock import EPOCH_SIM_START
from engine.feeds.sim import SimulatedMarket

DEFAULT_SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD", "LTC/USD")
DEFAULT_MINUTES = 60 * 60  # two and a half days of one-minute bars: ~800 kB for four symbols
DEFAULT_SEED = 11
TICK_SECONDS = 10  # six quotes a bar: enough for a high and a low, cheap to generate
_VOL_STEP = Decimal("0.0001")


def bars(symbols: tuple[str, ...] | list[str], minutes: int, seed: int, bar_seconds: int = 60,
         start: datetime = EPOCH_SIM_START):
    """Yield (timestamp, symbol, open, high, low, close, volume) per symbol per bar, in time order."""
    market = SimulatedMarket(list(symbols), seed=seed, start=start, tick_seconds=TICK_SECONDS,
                             spike_probability=0.0, gap_probability=0.0002)
    per_bar = max(1, bar_seconds // TICK_SECONDS)
    for m in range(minutes):
        acc: dict[str, list] = {}
        for _ in range(per_bar):
            for q in market.next_batch():
                mid = q.mid
                a = acc.get(q.symbol)
                if a is None:
                    acc[q.symbol] = [mid, mid, mid, mid, q.volume]
                else:
                    a[1] = max(a[1], mid)
                    a[2] = min(a[2], mid)
                    a[3] = mid
                    a[4] += q.volume
        ts = int(start.timestamp()) + m * bar_seconds
        for sym in symbols:
            o, h, lo, c, v = acc[sym]
            yield ts, sym, o, h, lo, c, v


def _fmt(d: Decimal) -> str:
    return format(d.normalize(), "f")


def write_bars(path: str | Path, symbols=DEFAULT_SYMBOLS, minutes: int = DEFAULT_MINUTES,
               seed: int = DEFAULT_SEED) -> int:
    """Write the CSV (epoch-second timestamps keep it small); returns the number of bars."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("w", encoding="utf-8", newline="\n") as f:
        f.write("timestamp,symbol,open,high,low,close,volume\n")
        for ts, sym, o, h, lo, c, v in bars(tuple(symbols), minutes, seed):
            # mids of ticked prices are exact to half a tick; volume to 4 places
            f.write(f"{ts},{sym},{_fmt(o)},{_fmt(h)},{_fmt(lo)},{_fmt(c)},{_fmt(v.quantize(_VOL_STEP))}\n")
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="write simulated one-minute OHLCV bars as CSV")
    ap.add_argument("out")
    ap.add_argument("--symbols", nargs="+", default=list(DEFAULT_SYMBOLS))
    ap.add_argument("--minutes", type=int, default=DEFAULT_MINUTES)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    n = write_bars(args.out, args.symbols, args.minutes, args.seed)
    print(f"{args.out}: {n} bars, {Path(args.out).stat().st_size:,} bytes, "
          f"from {datetime.fromtimestamp(EPOCH_SIM_START.timestamp(), timezone.utc):%Y-%m-%d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
