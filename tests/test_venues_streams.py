"""Streaming quotes: the real ccxt.pro and alpaca-py stream clients against the emulators' websocket
streams on 127.0.0.1 (tests/emulators/streams.py), through the venue feed.

A healthy stream feeds every tick without one REST quote request; a stream that is refused, goes
mute or drops falls back to polling for the symbols it is quiet on and comes back by itself; the
stream is closed (task and socket) when the feed or the engine closes.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable

import pytest
from emulators.streams import StreamingAlpaca, StreamingBinance, StreamingBybit

from engine.brokers.alpaca_broker import AlpacaBroker
from engine.brokers.ccxt_broker import CcxtBroker
from engine.brokers.keys import load_keys
from engine.clock import SimClock, WallClock
from engine.feeds.streams import build_stream
from engine.feeds.venue import VenueFeed
from engine.venue_config import VenueSection

KEY, SECRET = "strKEYtest0123456789abcd", "strSECRETtest0123456789abcd"

VENUES: dict[str, dict[str, Any]] = {
    "binance": {"emu": StreamingBinance, "symbols": ["BTC/USDT", "ETH/USDT"], "ids": ["BTCUSDT", "ETHUSDT"],
                "rest": ("GET", "/api/v3/ticker/bookTicker"), "ws": "/ws/0", "env": "TESTNET"},
    "bybit": {"emu": StreamingBybit, "symbols": ["BTC/USDT", "ETH/USDT"], "ids": ["BTCUSDT", "ETHUSDT"],
              "rest": ("GET", "/v5/market/tickers"), "ws": "/v5/public/spot", "env": "TESTNET"},
    "alpaca": {"emu": StreamingAlpaca, "symbols": ["AAPL", "MSFT"], "ids": ["AAPL", "MSFT"],
               "rest": ("GET", "/v2/stocks/quotes/latest"), "ws": "/v2/iex", "env": "PAPER"},
}


class Rig:
    def __init__(self, name: str, emu: Any, broker: Any, feed: VenueFeed) -> None:
        self.name, self.emu, self.broker, self.feed = name, emu, broker, feed
        self.stop = asyncio.Event()

    @property
    def rest_quotes(self) -> int:
        return self.emu.count(*VENUES[self.name]["rest"])

    async def batch(self) -> dict:
        got = await self.feed.next_batch_async(self.stop)
        return {q.symbol: q for q in got or []}

    async def batches_until(self, pred: Callable[[dict], bool], what: str, timeout: float = 8.0) -> dict:
        end = time.monotonic() + timeout
        while True:
            b = await self.batch()
            if pred(b):
                return b
            if time.monotonic() > end:
                pytest.fail(f"not within {timeout} s: {what} (source {self.feed.source_kind}, "
                            f"stream error {self.feed.stream.last_error!r})")

    async def close(self) -> None:
        self.stop.set()
        await self.feed.close()
        self.sockets_after_close = await sockets_left(self.emu)
        await self.broker.close()
        await self.emu.stop()


async def sockets_left(emu: Any, wait: float = 2.0) -> int:
    """Stream connections still open at the venue, once it has had `wait` s to see a close."""
    end = time.monotonic() + wait
    while emu.sockets and time.monotonic() < end:
        await asyncio.sleep(0.02)
    return len(emu.sockets)


async def rig(name: str, *, quiet: float = 1.0, emu_kwargs: dict | None = None, **emu_attrs: Any) -> Rig:
    v = VENUES[name]
    emu = v["emu"]({KEY: SECRET}, **(emu_kwargs or {}))
    for k, val in emu_attrs.items():
        setattr(emu, k, val)
    await emu.start()
    section = VenueSection(name=name, base_url=emu.url, timeouts={
        "poll_seconds": 0, "request_seconds": 2, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05})
    keys = load_keys(section, "testnet", {f"{name.upper()}_{v['env']}_API_KEY": KEY,
                                          f"{name.upper()}_{v['env']}_API_SECRET": SECRET})
    cls = AlpacaBroker if name == "alpaca" else CcxtBroker
    broker = cls(section, "testnet", keys, WallClock(), v["symbols"])
    await broker.connect()
    feed = VenueFeed(broker, v["symbols"], WallClock(), 0.05, stream=build_stream(broker, v["symbols"]),
                     quiet_seconds=quiet)
    return Rig(name, emu, broker, feed)


def streamed(b: dict) -> bool:
    return len(b) == 2


@pytest.mark.parametrize("name", list(VENUES))
async def test_a_healthy_stream_feeds_every_tick_without_rest_quotes(name):
    r = await rig(name, quiet=5.0)
    try:
        first = await r.batches_until(lambda b: r.feed.source_kind == "stream" and streamed(b), "streaming")
        sym = VENUES[name]["symbols"][0]
        assert first[sym].bid > 0 and first[sym].ask > first[sym].bid
        assert isinstance(first[sym].bid, Decimal)
        polled = r.rest_quotes
        # A change of the venue's book reaches the next batches through the socket alone.
        r.emu.set_book(VENUES[name]["ids"][0], "51234.5", "51235.5")
        moved = await r.batches_until(lambda b: sym in b and b[sym].bid == Decimal("51234.5"), "the new book")
        assert moved[sym].ask == Decimal("51235.5")
        for _ in range(5):
            assert streamed(await r.batch()) and r.feed.source_kind == "stream"
        assert r.rest_quotes == polled  # no quote request while the stream is healthy
        assert r.emu.ws_connects == 1
        assert r.feed.streamed > 0
    finally:
        await r.close()
    # Closed with the feed: the venue sees no socket left, the stream task is over.
    assert r.sockets_after_close == 0 and not r.feed.stream.running


@pytest.mark.parametrize("name", list(VENUES))
async def test_a_refused_stream_falls_back_to_polling_and_comes_back(name):
    r = await rig(name)
    try:
        # Two upgrades refused: quotes keep coming, by REST, and the stream keeps trying.
        f = r.emu.fault("GET", VENUES[name]["ws"], "503", times=2)
        b = await r.batches_until(lambda b: streamed(b) and r.feed.stream.failures >= 1,
                                  "a failed connect, polled quotes")
        assert r.feed.source_kind == "poll" and r.rest_quotes > 0
        assert all(q.bid > 0 for q in b.values())
        await r.batches_until(lambda b: r.feed.source_kind == "stream", "the stream back after the refusals", 12)
        assert f.hits == 2 and r.emu.ws_connects >= 1
        polled = r.rest_quotes
        for _ in range(3):
            assert streamed(await r.batch())
        assert r.rest_quotes == polled
    finally:
        await r.close()


@pytest.mark.parametrize("name", ["binance", "alpaca"])
async def test_a_mute_stream_is_polled_for_and_a_dropped_one_reconnects(name):
    r = await rig(name, quiet=0.3)
    try:
        await r.batches_until(lambda b: r.feed.source_kind == "stream", "streaming")
        r.emu.mute = True  # the socket stays open, nothing comes
        b = await r.batches_until(lambda b: r.feed.source_kind == "poll" and streamed(b), "polling the quiet symbols")
        assert all(q.ask > 0 for q in b.values())
        r.emu.mute = False
        await r.emu.drop()  # the venue closes the connection: the client reconnects by itself
        await r.batches_until(lambda b: r.feed.source_kind == "stream" and r.emu.ws_connects >= 2,
                              "streaming again on a new connection", 12)
    finally:
        await r.close()
    assert r.sockets_after_close == 0


async def test_the_stream_holds_no_keys_and_the_alpaca_stream_authenticates():
    """ccxt's stream exchange is public data only; Alpaca's stream signs in first, and when the
    venue refuses it (as Alpaca does a plan without the feed) nothing is subscribed and the feed polls."""
    r = await rig("binance", quiet=5.0)
    try:
        await r.batches_until(lambda b: r.feed.source_kind == "stream", "streaming")
        ex = r.feed.stream.ex
        assert not ex.apiKey and not ex.secret
        assert ex.urls["api"]["ws"]["spot"].startswith(f"ws://127.0.0.1:{r.emu.port}/")
    finally:
        await r.close()
    a = await rig("alpaca", quiet=0.5, ws_refuse_auth=True)
    try:
        await a.batches_until(lambda b: streamed(b) and a.emu.ws_connects >= 1, "polled quotes")
        for _ in range(5):
            assert streamed(await a.batch())
    finally:
        await a.close()
    assert a.feed.source_kind == "poll" and a.emu.ws_connects >= 1
    assert a.feed.stream.failures >= 1 and "auth failed" in a.feed.stream.last_error
    assert not any(m.get("action") == "subscribe" for m in a.emu.ws_messages)  # refused before subscribing


@pytest.mark.parametrize("name", ["binance", "alpaca"])
async def test_a_session_trades_on_streamed_quotes_and_close_stops_the_stream(tmp_path, monkeypatch, name):
    """`feed.stream: true` through `Engine.open`: the operator hears that quotes stream, the
    strategy's entry fills at the venue on them, no REST quote request is made once the stream
    is up, and `Engine.close` leaves no socket open at the venue."""
    from test_venues_session import Script, set_keys, start, until, venue_profile

    v = VENUES[name]
    emu = await v["emu"]({KEY: SECRET}).start()
    set_keys(monkeypatch, name, KEY, SECRET)
    eng = await start(venue_profile(tmp_path, name, emu.url, feed={"stream": True, "stream_quiet_seconds": 5}))
    runner = None
    try:
        runner = asyncio.create_task(eng.run())
        await until(lambda: eng.feed.source_kind == "stream", "quotes streaming")
        await until(lambda: any(a.kind == "feed" and "streaming" in a.message for a in eng.alerts.recent(50)),
                    "the operator told")
        polled = emu.count(*v["rest"])
        eng.strategy = Script(v["symbols"][0])
        await until(lambda: v["symbols"][0] in eng.portfolio.positions, "an entry filled on streamed quotes")
        assert emu.count(*v["rest"]) == polled
        assert emu.sockets
    finally:
        eng.stop()
        if runner is not None:
            await asyncio.wait_for(runner, 5)
        await eng.close()
        left = await sockets_left(emu)
        await emu.stop()
    assert left == 0 and not eng.feed.stream.running


def test_the_stream_keys_are_checked_like_every_other(tmp_path, monkeypatch):
    from engine.config_loader import ConfigError, load_profile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.yaml").write_text("feed:\n  stream: sometimes\n  stream_quiet_seconds: 0\n"
                                     "market_hours:\n  venue_clock_seconds: -1\n")
    with pytest.raises(ConfigError) as exc:
        load_profile("x.yaml")
    lines = exc.value.lines
    assert len(lines) == 3
    assert lines[0].startswith("x.yaml: feed.stream: ") and "'sometimes'" in lines[0]
    assert lines[1] == "x.yaml: feed.stream_quiet_seconds: must be > 0.0 (got 0)"
    assert lines[2] == "x.yaml: market_hours.venue_clock_seconds: must be >= 0.0 (got -1)"
    (tmp_path / "ok.yaml").write_text("feed:\n  stream: true\n")
    p = load_profile("ok.yaml")
    assert p.feed.stream is True and p.feed.stream_quiet_seconds == 5.0 and p.market_hours.venue_clock_seconds == 60


async def test_a_session_whose_stream_never_connects_says_so_and_trades_on_polled_quotes(tmp_path, monkeypatch):
    from test_venues_session import Script, set_keys, start, until, venue_profile

    emu = await StreamingBinance({KEY: SECRET}).start()
    emu.fault("GET", "/ws/0", "503", times=10_000)
    set_keys(monkeypatch, "binance", KEY, SECRET)
    eng = await start(venue_profile(tmp_path, "binance", emu.url, feed={"stream": True}))
    runner = asyncio.create_task(eng.run())
    try:
        await until(lambda: any(a.kind == "feed" for a in eng.alerts.recent(50)), "the operator told")
        (said,) = [a for a in eng.alerts.recent(50) if a.kind == "feed"]
        assert said.severity == "warning" and "quote stream not connected" in said.message and "polling" in said.message
        eng.strategy = Script("BTC/USDT")
        await until(lambda: "BTC/USDT" in eng.portfolio.positions, "an entry on polled quotes")
        assert eng.feed.source_kind == "poll" and emu.count("GET", "/api/v3/ticker/bookTicker") > 0
    finally:
        eng.stop()
        await asyncio.wait_for(runner, 5)
        await eng.close()
        await emu.stop()


def test_a_streamed_quote_ages_on_the_engine_clock():
    # Invariant 8: the stream's freshness is measured on the injected clock, not the wall's, so
    # a test or a replay drives it.
    from datetime import datetime, timezone

    from engine.clock import SimClock
    from engine.feeds.streams import QuoteStream
    from engine.models import Quote

    clock = SimClock(datetime(2026, 3, 2, 12, tzinfo=timezone.utc))
    stream = QuoteStream("binance", ["BTC/USDT"], clock)
    q = Quote("BTC/USDT", clock.now(), Decimal(100), Decimal("100.1"), Decimal(1), Decimal(1), Decimal("100.05"))
    stream._on_quote(q)
    clock.advance(4.5)
    assert stream.fresh(5.0) == {"BTC/USDT": (q, 4.5)}
    clock.advance(1.0)
    assert stream.fresh(5.0) == {}


@pytest.mark.parametrize("bid, ask", [("NaN", "100"), ("100", "Infinity"), ("abc", "100"), ("0", "100"),
                                      ("100", None), ("-1", "100")])
def test_a_quote_with_a_price_that_is_no_price_is_dropped(bid, ask):
    from engine.feeds.streams import QuoteStream, ticker_quote

    now = datetime(2026, 1, 5, tzinfo=timezone.utc)
    stream = QuoteStream("binance", ["BTC/USD"], SimClock(now))
    q = ticker_quote("BTC/USD", {"bid": bid, "ask": ask, "last": "100"}, now)
    if q is not None:
        stream._on_quote(q)  # a NaN used to raise here and fail the stream; Infinity was a quote
    assert "BTC/USD" not in stream.latest
    good = ticker_quote("BTC/USD", {"bid": "99.5", "ask": "100.5"}, now)
    stream._on_quote(good)
    assert stream.latest["BTC/USD"].bid == Decimal("99.5")
