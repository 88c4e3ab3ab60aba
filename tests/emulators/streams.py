"""Websocket market-data streams for the venue emulators, on the same 127.0.0.1 port as their REST API.

Each class is its REST emulator plus the venue's public quote stream, pushing the emulator's book
(`set_book`) to every subscriber in the venue's own dialect:

* Binance spot: `/ws/<n>` (ccxt appends a stream index to the `/ws` base); JSON
  `{"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 1}` -> `{"result": null, "id": 1}`,
  then raw bookTicker events `{"u", "s", "b", "B", "a", "A"}` on every change of the book.
* Bybit v5 spot: `/v5/public/spot`; `{"op": "subscribe", "args": ["orderbook.1.BTCUSDT"], "req_id"}`
  -> `{"success": true, "op": "subscribe", ...}`, then `orderbook.1` snapshots (Bybit sends level 1
  as snapshots only); `{"op": "ping"}` -> `{"ret_msg": "pong", ...}`.
* Alpaca: `/v2/iex`, msgpack frames: `[{"T": "success", "msg": "connected"}]` on connect, `auth`
  with the REST keys (`[{"T": "error", "code": 402, "msg": "auth failed"}]` and close otherwise),
  `subscribe` -> a `subscription` frame, then `{"T": "q", "S", "bp", "bs", "ap", "as", "t"}` quotes.

Each subscription gets the current book at once (so tests need not wait for a change), then every
change; `repeat_seconds` re-sends it on a timer, as Bybit's level-1 snapshots do. Controls for the
fallback paths: `mute` (connections accepted, subscriptions acknowledged, nothing pushed),
`drop()` (close every connection now), and the REST emulator's `fault("GET", path, "503")`, which
refuses the websocket upgrade like any request. `ws_connects` counts upgrades; `stop()` closes every
connection before the server, so nothing outlives a test.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable

import msgpack
from aiohttp import WSMsgType, web

from .alpaca import AlpacaEmulator
from .binance import BinanceEmulator
from .bybit import BybitEmulator
from . import dec_str


class _Streams:
    """Mixin: the subscriber registry, pushes, repeat timer and controls shared by the three."""

    repeat_seconds: float | None = None
    mute = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sockets: dict[web.WebSocketResponse, set[str]] = {}
        self.ws_connects = 0
        self.ws_messages: list[Any] = []  # what clients sent, decoded
        self._repeaters: set[asyncio.Task] = set()
        self._u = 0  # update counter for the dialects that number their messages
        super().__init__(*args, **kwargs)  # the venue's REST emulator, next in the MRO

    def set_book(self, symbol: str, bid: Any, ask: Any) -> None:
        super().set_book(symbol, bid, ask)  # type: ignore[misc]
        self._push(symbol)

    async def stop(self) -> None:
        await self._close_streams()
        await super().stop()  # type: ignore[misc]

    async def _open(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.ws_connects += 1
        self.sockets[ws] = set()
        if self.repeat_seconds:
            t = asyncio.ensure_future(self._repeat(ws))
            self._repeaters.add(t)
            t.add_done_callback(self._repeaters.discard)
        return ws

    async def _serve_json(self, request: web.Request,
                          on_message: Callable[[web.WebSocketResponse, dict], Awaitable[None]]) -> web.WebSocketResponse:
        """One client of a JSON dialect: every text message recorded, then handed to the venue's
        `on_message`; the client's subscriptions go when it does."""
        ws = await self._open(request)
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                d = json.loads(msg.data)
                self.ws_messages.append(d)
                await on_message(ws, d)
        finally:
            self.sockets.pop(ws, None)
        return ws

    async def _subscribe(self, ws: web.WebSocketResponse, symbols: set[str], ack: dict) -> None:
        """Add `symbols` to the client's subscriptions, acknowledge, then send each one's book."""
        self.sockets[ws] |= symbols
        await ws.send_json(ack)
        for s in symbols:
            await self._send_book(ws, s)

    async def _repeat(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.repeat_seconds or 1)
            for sym in list(self.sockets.get(ws, ())):
                await self._send_book(ws, sym)

    def _push(self, symbol: str) -> None:
        """The book of `symbol` changed: every subscriber hears of it (from set_book, on the loop)."""
        for ws, subs in list(self.sockets.items()):
            if symbol in subs:
                asyncio.ensure_future(self._send_book(ws, symbol))

    async def _send_book(self, ws: web.WebSocketResponse, symbol: str) -> None:
        if self.mute or ws.closed:
            return
        try:
            await self._send_quote(ws, symbol)
        except (ConnectionError, RuntimeError):
            pass  # the client went away between the check and the send

    async def _send_quote(self, ws: web.WebSocketResponse, symbol: str) -> None:  # pragma: no cover
        raise NotImplementedError

    async def drop(self) -> None:
        """Close every stream connection now (the venue restarting its stream servers)."""
        for ws in list(self.sockets):
            await ws.close()

    async def _close_streams(self) -> None:
        await self.drop()
        for t in list(self._repeaters):
            t.cancel()


class StreamingBinance(_Streams, BinanceEmulator):
    def routes(self, r: web.UrlDispatcher) -> None:
        super().routes(r)
        r.add_get("/ws/{n}", self.stream)

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_json(request, self._on_message)

    async def _on_message(self, ws: web.WebSocketResponse, d: dict) -> None:
        if d.get("method") != "SUBSCRIBE":
            return
        wanted = {p.split("@")[0].upper() for p in d.get("params", []) if p.endswith("@bookTicker")}
        await self._subscribe(ws, {s for s in self.core.markets if s in wanted},
                              {"result": None, "id": d.get("id")})

    async def _send_quote(self, ws: web.WebSocketResponse, symbol: str) -> None:
        bid, ask = self.core.books[symbol]
        self._u += 1
        await ws.send_json({"u": self._u, "s": symbol, "b": dec_str(bid), "B": "5.00000000",
                            "a": dec_str(ask), "A": "5.00000000"})


class StreamingBybit(_Streams, BybitEmulator):
    def routes(self, r: web.UrlDispatcher) -> None:
        super().routes(r)
        r.add_get("/v5/public/spot", self.stream)

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_json(request, self._on_message)

    async def _on_message(self, ws: web.WebSocketResponse, d: dict) -> None:
        op = d.get("op")
        if op == "ping":
            await ws.send_json({"success": True, "ret_msg": "pong", "conn_id": "emu", "req_id": d.get("req_id"),
                                "op": "ping"})
        elif op == "subscribe":
            syms = {a.split(".")[2] for a in d.get("args", []) if a.startswith("orderbook.1.")}
            await self._subscribe(ws, syms & set(self.core.markets),
                                  {"success": True, "ret_msg": "", "conn_id": "emu", "req_id": d.get("req_id"),
                                   "op": "subscribe"})

    async def _send_quote(self, ws: web.WebSocketResponse, symbol: str) -> None:
        bid, ask = self.core.books[symbol]
        self._u += 1
        ts = int(time.time() * 1000)
        await ws.send_json({"topic": f"orderbook.1.{symbol}", "type": "snapshot", "ts": ts, "cts": ts,
                            "data": {"s": symbol, "b": [[dec_str(bid), "1.500"]], "a": [[dec_str(ask), "2.000"]],
                                     "u": self._u, "seq": self._u}})


class StreamingAlpaca(_Streams, AlpacaEmulator):
    ws_refuse_auth = False  # the stream refuses the keys (e.g. a plan without this feed)

    def routes(self, r: web.UrlDispatcher) -> None:
        super().routes(r)
        r.add_get("/v2/iex", self.stream)

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = await self._open(request)
        authed = False
        try:
            await ws.send_bytes(msgpack.packb([{"T": "success", "msg": "connected"}]))
            async for msg in ws:
                if msg.type is not WSMsgType.BINARY:
                    continue
                d = msgpack.unpackb(msg.data)
                self.ws_messages.append({k: v for k, v in d.items() if k not in ("key", "secret")})
                if d.get("action") == "auth":
                    if self.ws_refuse_auth or d.get("key") not in self.keys or self.keys[d["key"]] != d.get("secret"):
                        await ws.send_bytes(msgpack.packb([{"T": "error", "code": 402, "msg": "auth failed"}]))
                        await ws.close()
                        break
                    authed = True
                    await ws.send_bytes(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
                elif d.get("action") == "subscribe" and authed:
                    syms = {s for s in d.get("quotes", []) if s in self.core.books}
                    self.sockets[ws] |= syms
                    await ws.send_bytes(msgpack.packb([{
                        "T": "subscription", "trades": [], "quotes": sorted(self.sockets[ws]), "bars": [],
                        "updatedBars": [], "dailyBars": [], "statuses": [], "lulds": [], "corrections": [],
                        "cancelErrors": []}]))
                    for s in syms:
                        await self._send_book(ws, s)
        finally:
            self.sockets.pop(ws, None)
        return ws

    async def _send_quote(self, ws: web.WebSocketResponse, symbol: str) -> None:
        bid, ask = self.core.books[symbol]
        await ws.send_bytes(msgpack.packb([{
            "T": "q", "S": symbol, "bx": "V", "bp": float(bid), "bs": 2, "ax": "V", "ap": float(ask), "as": 3,
            "c": ["R"], "z": "C", "t": msgpack.Timestamp.from_unix(time.time())}]))
