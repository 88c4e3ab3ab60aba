"""Market-data feeds. A feed only produces data: the engine sets its SimClock to each batch's ts
and paces by `FeedConfig.speed` itself; no feed sleeps or reads the clock."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from engine.feeds.csv_replay import CsvFeedError, CsvReplayFeed
from engine.feeds.sim import REGIMES, FeedEvent, SimulatedMarket
from engine.models import Quote
from engine.profile import FeedConfig

__all__ = [
    "REGIMES",
    "CsvFeedError",
    "CsvReplayFeed",
    "FeedEvent",
    "MarketFeed",
    "SimulatedMarket",
    "build_feed",
]


@runtime_checkable
class MarketFeed(Protocol):
    symbols: list[str]

    def next_batch(self) -> list[Quote] | None:
        """All quotes of the next timestamp (one ts, in `symbols` order); None when exhausted."""
        ...


def build_feed(cfg: FeedConfig, symbols: list[str], start: datetime) -> MarketFeed:
    """sim: a SimulatedMarket over `symbols` starting at `start`.
    csv: a CsvReplayFeed of `cfg.csv_path`; its timestamps come from the file (`start` is ignored)
    and its symbols must be among `symbols`. Raises CsvFeedError for an unusable file."""
    if cfg.kind == "sim":
        return SimulatedMarket(
            symbols,
            seed=cfg.seed,
            start=start,
            tick_seconds=cfg.tick_seconds,
            spike_probability=cfg.spike_probability,
            gap_probability=cfg.gap_probability,
        )
    if cfg.kind == "csv":
        if not cfg.csv_path:
            raise ValueError("feed.csv_path is required when feed.kind is csv")
        feed = CsvReplayFeed(Path(cfg.csv_path).expanduser())
        # The profile's limits (groups, exposure, pauses) are written against its symbols: a file
        # quoting others would trade what the operator never listed.
        foreign = [s for s in feed.symbols if s not in symbols]
        if foreign:
            raise CsvFeedError(cfg.csv_path, None, f"quotes {', '.join(foreign)}, which the profile's symbols "
                               f"({', '.join(symbols)}) do not list: add them to `symbols`, or replay a file of those")
        return feed
    raise ValueError(f"unknown feed kind: {cfg.kind!r}")
