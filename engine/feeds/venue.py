"""The venue's own quotes, polled: top of book per symbol from the broker that trades them.

`feed.kind: venue` (the default with a real venue). Every `feed.tick_seconds` the feed asks the
broker's `fetch_quotes` (Binance `ticker/bookTicker`, Bybit `market/tickers`, Alpaca latest
quotes) and hands the engine one batch, stamped with the engine's clock (wall time) so quote age
and every other time the gate reads come from that one clock. Unlike the sim and CSV feeds it
has to wait for the network, so it is asynchronous (`next_batch_async`); `Engine.run` branches
to the venue loop once (engine/venue_wiring.py) and the simulated path never awaits a quote.

A poll that fails (the broker has already retried, backed off and counted it toward the
API-failure breaker) yields an empty batch: the engine still processes order events, expires
approvals and evaluates its breakers, and the stale-data breaker sees the silence.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Protocol

from ..clock import Clock
from ..models import Quote
from ..money import ZERO

log = logging.getLogger("tradeconsole.feed")


class QuoteSource(Protocol):
    async def fetch_quotes(self, symbols: list[str] | None = None) -> list[Quote]: ...


class VenueFeed:
    is_async = True  # Engine.run takes the venue loop for it

    def __init__(self, source: QuoteSource, symbols: list[str], clock: Clock, interval: float) -> None:
        self.source = source
        self.symbols = list(symbols)
        self.clock = clock
        self.interval = interval
        self._due: float | None = None  # clock.monotonic() of the next poll
        self.polls = 0
        self.failures = 0
        self.last_error = ""

    def next_batch(self) -> list[Quote] | None:
        """A venue has no simulated past to warm a strategy on: nothing to replay synchronously."""
        return None

    async def next_batch_async(self, stop: asyncio.Event, deadline: float | None = None) -> list[Quote] | None:
        """The next poll's quotes ([] when it failed), or None once `stop` is set or the next
        poll would fall after `deadline` (a `clock.monotonic()` time)."""
        now = self.clock.monotonic()
        due = now if self._due is None else self._due
        if deadline is not None and due > deadline:
            await _wait(stop, deadline - now)
            return None
        if due > now and await _wait(stop, due - now):
            return None
        if stop.is_set():
            return None
        self._due = max(due, self.clock.monotonic() - self.interval) + self.interval
        self.polls += 1
        try:
            quotes = await self.source.fetch_quotes(self.symbols)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the venue is down or odd: an empty batch, not a dead loop
            if stop.is_set():
                return None  # shutting down: the broker closed under the request
            self.failures += 1
            self.last_error = str(exc)[:300]  # broker errors are redacted already
            log.warning("venue quotes failed (%s): %s", type(exc).__name__, self.last_error)
            return []
        ts = self.clock.now()
        # The venues' volume figures are rolling 24 h totals, not what traded since the last
        # quote: reported as unknown (0) so the liquidity check does not take them for a minute's.
        return [dataclasses.replace(q, ts=ts, volume=ZERO) for q in quotes]


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`, waking at once when `stop` is set; True if it was."""
    if seconds <= 0:
        return stop.is_set()
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True
