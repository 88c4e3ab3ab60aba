"""Backtests: CSV market data through the same Engine the console and headless runs use.

The profile is copied with a CSV replay feed, speed 0 (flat out), no approval queue, the paper
broker, and its own journal, so a backtest never touches the paper journal and reports on its
result with the same metrics code. No services start: a backtest must not send alerts anywhere.

Walk-forward: the replay is cut into N rolling windows, each an in-sample stretch followed by an
out-of-sample stretch, the out-of-sample stretches back to back. The strategy has no fitted
parameters, but it adapts its timeframe weights as it goes and needs warm-up bars, so each window
runs one engine over its in-sample and out-of-sample data together (written as a slice CSV) and
the metrics are split at the boundary: the out-of-sample figures are those of a strategy that
has only seen earlier data.
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .journal_data import JournalReadError, load, read_meta
from .metrics import Metrics, compute, jsonable, periods_per_year

# (metric path, higher is better?) compared between a backtest and the paper journal
COMPARED = (
    ("trades.win_rate_pct", True), ("trades.profit_factor", True), ("trades.expectancy", True),
    ("returns.return_per_day_pct", True), ("returns.sharpe", True),
    ("drawdown.max_drawdown_pct", False), ("trades.fee_drag_pct", False),
)


def backtest_profile(profile: Any, csv_path: str | Path, journal: str | Path) -> Any:
    """The profile a backtest runs: same strategy, sizing, risk and fees; replay feed; own journal."""
    from engine.profile import Profile

    data = profile.model_dump(mode="json")
    data["feed"] = {**data["feed"], "kind": "csv", "csv_path": str(csv_path), "speed": 0}
    data["approval"] = {**data["approval"], "required": False}
    data["mode"] = "paper"  # it trades the paper broker whatever the profile is for
    data["venue"] = {**data["venue"], "name": "paper", "base_url": None}
    data["journal"] = {"path": str(journal)}
    data["logging"] = {**data["logging"], "path": str(Path(journal).with_suffix(".log"))}
    return Profile.model_validate(data)


# What says a journal is a backtest's own (its `meta` table): the only existing file a backtest
# may add rows to. A profile's journal would count the backtest's trades as go/no-go evidence.
MADE_BY = ("made_by", "backtest")


def check_journal(journal: str | Path) -> None:
    """Refuse (ValueError, one line) a journal path a backtest must not write: only a new file,
    or a journal a backtest made (MADE_BY), may take a backtest's rows. Checked before anything
    is written."""
    p = Path(journal)
    if p.is_dir():
        raise ValueError(f"--journal: {p} is a directory; a backtest journal is a file")
    if not p.exists():
        log = p.with_suffix(".log")
        if log.exists():  # its log would be written into another journal's log (and rotate it)
            raise ValueError(f"--journal: {p}: its log file {log} already exists; name a new file")
        return
    try:
        made_by = read_meta(p, MADE_BY[0])
    except JournalReadError as exc:
        raise ValueError(f"--journal: {exc}; name a new file") from None
    if made_by != MADE_BY[1]:
        raise ValueError(f"--journal: {p} exists and is not a journal a backtest made (a profile's journal would "
                         "count the backtest's trades as its own); name a new file")


@dataclass
class RunResult:
    journal: str
    quotes: int
    batches: int
    wall_seconds: float
    counters: dict[str, int]


async def run_engine(profile: Any) -> RunResult:
    """Replay the whole feed through a fresh Engine; the journal is closed when this returns."""
    from engine.engine import Engine

    engine = await Engine.open(profile, speed=0.0)
    t0 = time.perf_counter()
    try:
        await engine.journal.set_meta(*MADE_BY)
        await engine.run()
        await asyncio.sleep(0)  # a breaker halt's cancel task gets its turn before closing
        wall = time.perf_counter() - t0
        batches = getattr(engine.feed, "total_batches", 0)
        counters = dict(engine.counters)
    finally:
        await engine.close()
    return RunResult(str(profile.journal.path), counters["ticks"], batches, wall, counters)


def run_backtest(profile: Any, csv_path: str | Path, journal: str | Path) -> tuple[RunResult, Metrics]:
    """Run the replay (blocking: call it off the event loop) and measure its journal."""
    bt = backtest_profile(profile, csv_path, journal)
    res = asyncio.run(run_engine(bt))
    data = load(journal)
    m = compute(data, capital=data.starting_capital(profile.paper.starting_cash), ppy=periods_per_year(profile),
                tz=profile.venue.timezone)
    return res, m


# -- walk-forward ----------------------------------------------------------------------------------
def _write_quotes(path: Path, batches: list) -> None:
    """Quotes exactly as the engine received them (bars already turned into quotes)."""
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write("timestamp,symbol,bid,ask,bid_size,ask_size,last,volume\n")
        for batch in batches:
            for q in batch:
                f.write(f"{q.ts.isoformat()},{q.symbol},{q.bid},{q.ask},{q.bid_size},{q.ask_size},{q.last},{q.volume}\n")


def window_bounds(n: int, windows: int, is_fraction: float) -> list[tuple[int, int, int]]:
    """(start, boundary, end) batch indices of each window: in-sample [start, boundary),
    out-of-sample [boundary, end); out-of-sample stretches are contiguous and end at n."""
    if windows < 1:
        raise ValueError("--windows must be >= 1")
    if not 0 < is_fraction < 1:
        raise ValueError("--is-fraction must be between 0 and 1 (exclusive)")
    length = n / (is_fraction + windows * (1 - is_fraction))
    is_len, oos_len = is_fraction * length, (1 - is_fraction) * length
    if oos_len < 1 or is_len < 1:
        raise ValueError(f"{n} timestamps are too few for {windows} windows")
    out = []
    for k in range(windows):
        a = round(k * oos_len)
        b = round(k * oos_len + is_len)
        c = n if k == windows - 1 else round(k * oos_len + is_len + oos_len)
        out.append((a, b, c))
    return out


def summary(m: Metrics) -> dict[str, Any]:
    t, r, d = m.trades, m.returns, m.drawdown
    days = r["elapsed_days"]
    return jsonable({
        "trades": t["trades"], "win_rate_pct": t["win_rate_pct"], "profit_factor": t["profit_factor"],
        "expectancy": t["expectancy"], "net_pnl": t["net_pnl"], "fees": t["fees"],
        "return_pct": r["total_return_pct"], "return_per_day_pct": r["total_return_pct"] / days if days > 0 else None,
        "sharpe": r["sharpe"], "max_drawdown_pct": d["max_drawdown_pct"], "fee_drag_pct": t["fee_drag_pct"],
        "days": days,
    })


def read_batches(csv_path: str | Path) -> list:
    """The replay's batches (one per timestamp), the whole file validated (CsvFeedError)."""
    from engine.feeds.csv_replay import CsvReplayFeed

    feed = CsvReplayFeed(csv_path)
    batches = []
    while (b := feed.next_batch()) is not None:
        batches.append(b)
    return batches


def walk_forward(profile: Any, csv_path: str | Path, workdir: str | Path, windows: int,
                 is_fraction: float = 0.7, batches: list | None = None) -> list[dict[str, Any]]:
    """Run every window; returns per window its bounds and in/out-of-sample summaries.
    `batches`: the CSV's, when the caller has read it already (read_batches)."""
    if batches is None:
        batches = read_batches(csv_path)
    bounds = window_bounds(len(batches), windows, is_fraction)
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    ppy = periods_per_year(profile)
    out = []
    for k, (a, b, c) in enumerate(bounds, 1):
        slice_csv = wd / f"window-{k}.csv"
        _write_quotes(slice_csv, batches[a:c])
        journal = wd / f"window-{k}.sqlite"
        asyncio.run(run_engine(backtest_profile(profile, slice_csv, journal)))
        data = load(journal)
        cap = data.starting_capital(profile.paper.starting_cash)
        boundary: datetime = batches[b][0].ts
        ins = compute(data, capital=cap, ppy=ppy, tz=profile.venue.timezone, until=boundary)
        oos = compute(data, capital=cap, ppy=ppy, tz=profile.venue.timezone, since=boundary)
        out.append({"window": k, "in_sample": [batches[a][0].ts.isoformat(), boundary.isoformat()],
                    "out_of_sample": [boundary.isoformat(), batches[c - 1][0].ts.isoformat()],
                    "is": summary(ins), "oos": summary(oos), "journal": str(journal)})
    return out


# -- backtest vs paper -----------------------------------------------------------------------------
def _get(d: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _value(x: Any) -> float | None:
    if x is None:
        return None
    if x == "inf":
        return float("inf")
    return float(Decimal(x)) if isinstance(x, str) else float(x)


def compare(backtest: Metrics, paper: Metrics, factor: Decimal | float) -> list[dict[str, Any]]:
    """Each compared metric side by side; `flagged` when paper is worse than the backtest by more
    than `factor` of the backtest's magnitude (higher-is-better metrics: paper < b - |b| * f;
    lower-is-better: paper > b + |b| * f)."""
    f = float(factor)
    bd, pd = _with_rate(backtest), _with_rate(paper)
    rows = []
    for path, higher in COMPARED:
        b, p = _value(_get(bd, path)), _value(_get(pd, path))
        flagged = False
        # an infinite backtest profit factor (no losing trade) has no magnitude to compare with
        if b is not None and p is not None and math.isfinite(b) and not math.isnan(p):
            margin = abs(b) * f
            flagged = p < b - margin if higher else p > b + margin
        rows.append({"metric": path.split(".", 1)[1], "backtest": b, "paper": p,
                     "better": "higher" if higher else "lower", "flagged": flagged})
    return jsonable(rows)


def _with_rate(m: Metrics) -> dict[str, Any]:
    d = m.as_dict()
    days = m.returns["elapsed_days"]
    d["returns"]["return_per_day_pct"] = m.returns["total_return_pct"] / days if days > 0 else None
    return d
