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

With a stream (`feed.stream: true`, engine/feeds/streams.py) each tick takes the quotes the
stream has heard within `stream_quiet_seconds` and polls only the symbols it has not: a healthy
stream makes no quote requests at all, a failed or mute one falls back to exactly the polling
above, per symbol, without the feed ever waiting on the stream. `source_kind` says which it was.

While the venue has asked for quiet (a rate limit with Retry-After: the broker's
`rate_limited_for()`), the feed sends no quote request: each tick is an empty batch (or the
streamed quotes), said once in the log, so the engine keeps running its events and breakers
instead of waiting inside the broker for the window to end.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from typing import Protocol

from ..clock import Clock
from ..models import Quote
from ..money import ZERO
from .streams import QuoteStream

log = logging.getLogger("tradeconsole.feed")


class QuoteSource(Protocol):
    async def fetch_quotes(self, symbols: list[str] | None = None) -> list[Quote]: ...

    # Optional: seconds left of a quiet window the venue asked for (0 when none).
    # def rate_limited_for(self) -> float: ...


class VenueFeed:
    is_async = True  # Engine.run takes the venue loop for it

    def __init__(self, source: QuoteSource, symbols: list[str], clock: Clock, interval: float, *,
                 stream: QuoteStream | None = None, quiet_seconds: float = 5.0) -> None:
        self.source = source
        self.symbols = list(symbols)
        self.clock = clock
        self.interval = interval
        self.stream = stream
        self.quiet_seconds = quiet_seconds
        self._due: float | None = None  # clock.monotonic() of the next poll
        self.polls = 0
        self.failures = 0
        self.streamed = 0  # quotes taken from the stream
        self.last_error = ""
        self.held = 0  # ticks that sent no quote request because the venue asked for quiet
        self._holding = False
        # Where the last batch came from: "poll", "stream", or "stream+poll" (some symbols quiet).
        self.source_kind = "poll"

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
        fresh: dict[str, tuple[Quote, float]] = {}
        if self.stream is not None:
            self.stream.start()  # lazily, on the loop that runs the feed; idempotent
            fresh = self.stream.fresh(self.quiet_seconds)
        quiet = [s for s in self.symbols if s not in fresh]
        self.streamed += len(fresh)
        self.source_kind = "poll" if not fresh else ("stream+poll" if quiet else "stream")
        polled: list[Quote] = []
        if quiet and self._hold_for_rate_limit():
            quiet = []
            if not fresh:
                return []
        if quiet:
            self.polls += 1
            try:
                polled = await self.source.fetch_quotes(quiet)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the venue is down or odd: an empty batch, not a dead loop
                if stop.is_set():
                    return None  # shutting down: the broker closed under the request
                self.failures += 1
                self.last_error = str(exc)[:300]  # broker errors are redacted already
                log.warning("venue quotes failed (%s): %s", type(exc).__name__, self.last_error)
                if not fresh:
                    return []
        ts = self.clock.now()
        # The venues' volume figures are rolling 24 h totals, not what traded since the last
        # quote: reported as unknown (0) so the liquidity check does not take them for a minute's.
        # A streamed quote is stamped when it was heard, so the gate's data-age check sees its
        # real age (the stream sends on change; a quiet book ages until polled).
        out = [dataclasses.replace(q, ts=ts - timedelta(seconds=age), volume=ZERO)
               for s in self.symbols if s in fresh for q, age in (fresh[s],)]
        return out + [dataclasses.replace(q, ts=ts, volume=ZERO) for q in polled]

    def _hold_for_rate_limit(self) -> bool:
        left_fn = getattr(self.source, "rate_limited_for", None)
        left = left_fn() if callable(left_fn) else 0.0
        if left <= 0:
            if self._holding:
                log.info("venue quotes: polling again after the venue's quiet window")
            self._holding = False
            return False
        self.held += 1
        if not self._holding:
            log.warning("venue quotes: not polled for %.0f s, the venue asked for quiet (rate limit)", left)
        self._holding = True
        return True

    async def close(self) -> None:
        """Stop the stream (its task and client); polling needs nothing closed."""
        if self.stream is not None:
            await self.stream.stop()


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`, waking at once when `stop` is set; True if it was."""
    if seconds <= 0:
        return stop.is_set()
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True
