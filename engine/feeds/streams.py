"""Streaming quotes from a venue's websocket, for the venue feed (engine/feeds/venue.py).

`feed.stream: true` with a real venue. A stream keeps the latest top of book of each symbol,
written by one background task that reconnects by itself; the feed reads what is fresh at each
tick and polls (REST, as without a stream) only the symbols the stream has been quiet on for
`feed.stream_quiet_seconds`. So a stream that fails, never connects, or goes mute costs nothing
but the REST polling that would have run anyway, and the feed never waits for it.

* ccxt venues (Binance spot, Bybit spot): a `ccxt.pro` exchange of the broker's venue, public
  data only (it is never given the keys), markets shared from the broker's exchange (no second
  `load_markets`), sandbox mode as the broker's, and with `venue.base_url` every websocket
  endpoint rewritten to that host (ws:// for http, wss:// for https), keeping its path.
  `watch_bids_asks`: Binance's `<symbol>@bookTicker` stream, Bybit's `orderbook.1.<symbol>` topic.
* Alpaca: alpaca-py's `StockDataStream` (msgpack frames: connect, auth with the keys, subscribe
  quotes), IEX feed; with `venue.data_url`/`base_url` its endpoint is `ws(s)://host/v2/iex`.
  The library reconnects by itself (with backoff); we run its loop as a task on ours.

Every stream is bounded: `stop()` cancels its task and closes its client; the engine stops it
with its services on `Engine.close` (engine/venue_wiring.py registers it). The libraries are
imported when the stream first connects, never at import.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from ..clock import Clock, WallClock
from ..models import Quote
from ..tasks import stop_task

log = logging.getLogger("tradeconsole.feed")

ZERO = Decimal(0)
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
# A connection that has said nothing for this long is recycled: a quiet market costs one
# reconnect a minute, a mute socket (a handler that died inside the library) is not kept forever.
SILENCE_RECYCLE_SECONDS = 60.0


def _dec(x: Any) -> Decimal:
    # Anything but a finite number reads as 0, and a quote with a side at 0 is dropped
    # (`_on_quote`): a NaN or infinite price must neither value a position nor break the stream.
    if x is None or x == "":
        return ZERO
    try:
        d = x if isinstance(x, Decimal) else Decimal(str(x))
    except (InvalidOperation, ValueError, TypeError):
        return ZERO
    return d if d.is_finite() else ZERO


def ws_base(url: str) -> str:
    """scheme://host[:port] of a REST base, as a websocket base (http -> ws, https -> wss)."""
    p = urlsplit(url)
    return f"{'wss' if p.scheme == 'https' else 'ws'}://{p.netloc}"


class QuoteStream:
    """The latest quote per symbol, kept by a reconnecting background task.

    Subclasses implement `_session()` (connect, subscribe, read until an error) and `_reset()`
    (drop the client). Nothing here ever raises into the feed."""

    def __init__(self, venue: str, symbols: list[str], clock: Clock | None = None) -> None:
        self.venue = venue
        self.symbols = list(symbols)
        self.clock = clock or WallClock()  # the broker's: the engine's one clock
        self.latest: dict[str, Quote] = {}
        self.heard: dict[str, float] = {}  # clock.monotonic() of each symbol's last update
        self.messages = 0
        self.failures = 0
        self.reconnects = 0
        self.last_error = ""
        self._task: asyncio.Task | None = None
        self._closed = False

    def start(self) -> None:
        """Start the background task (idempotent; needs the running loop)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"stream-{self.venue}")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def fresh(self, quiet_seconds: float) -> dict[str, tuple[Quote, float]]:
        """The quotes heard within `quiet_seconds`, by symbol, each with its age in seconds."""
        now = self.clock.monotonic()
        out = {}
        for s, q in self.latest.items():
            age = now - self.heard.get(s, -1e18)
            if age <= quiet_seconds:
                out[s] = (q, max(0.0, age))
        return out

    def _on_quote(self, q: Quote) -> None:
        if q.bid <= 0 or q.ask <= 0 or q.symbol not in self.symbols:
            return  # a one-sided or foreign book is not a quote to trade on
        self.latest[q.symbol] = q
        self.heard[q.symbol] = self.clock.monotonic()
        self.messages += 1

    def _failed(self, exc: BaseException, retry: str) -> None:
        from ..brokers.keys import redact

        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {redact(str(exc))[:300]}"
        log.warning("venue %s: quote stream failed (%s); polling covers, %s", self.venue, self.last_error, retry)

    async def _run(self) -> None:
        delay = BACKOFF_START
        while not self._closed:
            heard = self.messages
            try:
                await self._session()
                delay = BACKOFF_START  # it ended by itself (silence): reconnect at once
                self.reconnects += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the stream is best effort; polling covers
                if self.messages > heard:
                    delay = BACKOFF_START  # it worked before it broke: not one more failure in a row
                self._failed(exc, f"retry in {delay:.1f} s")
                await self._reset()
                await asyncio.sleep(delay)
                delay = min(BACKOFF_MAX, delay * 2)
                continue
            await self._reset()

    async def stop(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        await stop_task(task)
        await self._reset()

    async def _session(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def ticker_quote(symbol: str, t: dict | None, now: datetime) -> Quote | None:
    """A ccxt ticker / bid-ask structure as a Quote (None when one side is missing)."""
    if not t or t.get("bid") is None or t.get("ask") is None:
        return None
    bid, ask = _dec(t["bid"]), _dec(t["ask"])
    last = _dec(t.get("last")) or (bid + ask) / 2
    return Quote(symbol, now, bid, ask, _dec(t.get("bidVolume")), _dec(t.get("askVolume")), last,
                 _dec(t.get("baseVolume")))


class CcxtQuoteStream(QuoteStream):
    """`watch_bids_asks` on a ccxt.pro exchange of the broker's venue (public data only)."""

    def __init__(self, broker: Any, symbols: list[str]) -> None:
        super().__init__(broker.name, symbols, broker.clock)
        self.broker = broker
        self.ex: Any = None
        self._seen: dict[str, Any] = {}  # the last ticker object taken per symbol

    def _build(self) -> Any:
        import ccxt.pro as ccxtpro

        b = self.broker
        ex = getattr(ccxtpro, b.name)({
            "timeout": int(b.venue.timeouts.request_seconds * 1000),
            "options": {"defaultType": "spot"}, "verbose": False,
        })
        ex.number = str  # as the broker's exchange: prices reach Decimal without a float between
        if b.mode != "live":
            ex.set_sandbox_mode(True)
        # The broker loaded the markets once; the stream shares them (no second request).
        ex.set_markets_from_exchange(b.ex)
        if b.venue.base_url:
            rewrite_ws_urls(ex.urls["api"].get("ws"), ws_base(b.venue.base_url))
        return ex

    async def _session(self) -> None:
        if self.ex is None:
            self.ex = self._build()
        while True:
            try:
                got = await asyncio.wait_for(self.ex.watch_bids_asks(self.symbols), SILENCE_RECYCLE_SECONDS)
            except asyncio.TimeoutError:
                log.info("venue %s: quote stream silent for %.0f s; reconnecting", self.venue, SILENCE_RECYCLE_SECONDS)
                return
            now = datetime.now(timezone.utc)  # market data is real time, whatever the engine's clock
            # One watch returns when any symbol's book moves; others that moved meanwhile are in
            # the exchange's cache (`bidsasks`), each update a new object: take every new one.
            cache = getattr(self.ex, "bidsasks", None) or {}
            for sym in self.symbols:
                t = (got or {}).get(sym) or cache.get(sym)
                if t is None or t is self._seen.get(sym):
                    continue
                self._seen[sym] = t
                q = ticker_quote(sym, t, now)
                if q is not None:
                    self._on_quote(q)

    async def _reset(self) -> None:
        ex, self.ex = self.ex, None
        self._seen = {}
        if ex is not None:
            try:
                await ex.close()
            except Exception:  # noqa: BLE001 - closing a broken client
                log.debug("venue %s: closing the stream client failed", self.venue, exc_info=True)


def rewrite_ws_urls(node: Any, base: str) -> None:
    """Point every websocket endpoint in ccxt's `urls['api']['ws']` tree at `base`, keeping paths."""
    if not isinstance(node, dict):
        return
    for k, v in list(node.items()):
        if isinstance(v, str):
            p = urlsplit(v.replace("{hostname}", "x"))
            node[k] = base + p.path + (f"?{p.query}" if p.query else "")
        else:
            rewrite_ws_urls(v, base)


class AlpacaQuoteStream(QuoteStream):
    """alpaca-py's StockDataStream (IEX quotes), its reconnecting loop run as a task on ours."""

    def __init__(self, broker: Any, symbols: list[str]) -> None:
        super().__init__("alpaca", symbols, broker.clock)
        self.broker = broker
        self.client: Any = None

    def endpoint(self) -> str | None:
        v = self.broker.venue
        base = v.data_url or v.base_url
        return f"{ws_base(base)}/v2/iex" if base else None  # None: alpaca-py's own endpoint

    async def _handle(self, msg: dict) -> None:
        now = datetime.now(timezone.utc)
        bid, ask = _dec(msg.get("bp")), _dec(msg.get("ap"))
        self._on_quote(Quote(str(msg.get("S")), now, bid, ask, _dec(msg.get("bs")), _dec(msg.get("as")),
                             (bid + ask) / 2))

    async def _session(self) -> None:
        from alpaca.data.enums import DataFeed
        from alpaca.data.live.stock import StockDataStream

        owner = self

        class _Counted(StockDataStream):
            """The library retries a failed connect or auth itself; count and say each one."""

            async def _start_ws(self) -> None:
                try:
                    await super()._start_ws()
                except Exception as exc:
                    owner._failed(exc, "the library retries")
                    raise

        keys = self.broker._keys
        t = self.broker.venue.timeouts
        self.client = _Counted(
            keys.api_key.reveal(), keys.secret.reveal(), raw_data=True, feed=DataFeed.IEX,
            url_override=self.endpoint(),
            websocket_params={"ping_interval": 10, "ping_timeout": 30, "max_queue": 1024,
                              "open_timeout": t.request_seconds, "close_timeout": 2})
        self.client.subscribe_quotes(self._handle, *self.symbols)
        # The library's own loop: connect, auth, subscribe, read; it reconnects with backoff
        # (1-30 s) and returns only when stopped. The public run() would need a thread and its
        # own event loop; this runs on ours and is cancelled by stop().
        await self.client._run_forever()

    async def _reset(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - closing a broken client
                log.debug("venue alpaca: closing the stream client failed", exc_info=True)


def build_stream(broker: Any, symbols: list[str]) -> QuoteStream | None:
    """The streaming source for a connected broker's venue, or None when it has none."""
    name = getattr(broker, "name", "")
    if name in ("binance", "bybit"):
        return CcxtQuoteStream(broker, symbols)
    if name == "alpaca":
        return AlpacaQuoteStream(broker, symbols)
    return None
