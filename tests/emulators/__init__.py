"""Venue emulators: small aiohttp servers on 127.0.0.1 (a free port) that speak enough of each
venue's REST API for the real client libraries (ccxt, alpaca-py) to trade against them.

Each emulator keeps an account (balances, orders, trades), fills market orders at its book,
rests limits and stops until `set_book` moves the market through them, and injects faults on
demand (`fault(...)`): rate limits (429/418), 5xx, a reply slower than the client's timeout
(after the request was processed, as a lost reply would be), insufficient funds, unknown order.
Every request is logged (`requests`) so tests can count what reached the venue.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

__all__ = ["Emulator", "Fault", "D", "dec_str", "PARAMS", "RAW_BODY", "reply"]

PARAMS = web.RequestKey("params", dict)
RAW_BODY = web.RequestKey("raw_body", bytes)


def reply(data: Any):
    """An async handler answering `data()` as JSON (aiohttp wants coroutines as handlers)."""
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(data())
    return handler


def D(x: Any) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


def dec_str(x: Decimal, places: int = 8) -> str:
    return f"{x:.{places}f}"


@dataclass
class Fault:
    method: str
    path: str
    kind: str  # "429" | "418" | "500" | "502" | "503" | "slow" | "insufficient" | "unknown_order" | "auth"
    times: int = 1
    delay: float = 0.0  # "slow": seconds before replying
    process: bool = False  # handle the request first (the reply is lost/late, the effect is not)
    hits: int = 0


@dataclass
class Logged:
    method: str
    path: str
    params: dict[str, str]
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)


class Emulator:
    """Base: server lifecycle, fault injection and the request log. Subclasses add routes."""

    name = "emulator"

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._middleware])
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.faults: list[Fault] = []
        self.requests: list[Logged] = []
        self._ids = itertools.count(1)
        self.routes(self.app.router)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> "Emulator":
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "Emulator":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    def next_id(self) -> int:
        return next(self._ids)

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    # -- faults ---------------------------------------------------------------------------------
    def fault(self, method: str, path: str, kind: str, *, times: int = 1, delay: float = 0.0,
              process: bool | None = None) -> Fault:
        if process is None:
            process = kind == "slow"
        f = Fault(method.upper(), path, kind, times, delay, process)
        self.faults.append(f)
        return f

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for f in self.faults:
            if f.method == method and f.path == path and f.hits < f.times:
                f.hits += 1
                return f
        return None

    def error_response(self, kind: str) -> web.Response:
        """The venue's own body for an injected fault; subclasses speak their dialect."""
        status = int(kind) if kind.isdigit() else 400
        return web.json_response({"error": kind}, status=status)

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method.upper() and r.path == path)

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        params = dict(request.query)
        body = b""
        if request.can_read_body:
            body = await request.read()
            ctype = request.headers.get("Content-Type", "")
            if "json" in ctype and body:
                try:
                    data = json.loads(body)
                    if isinstance(data, dict):
                        params.update({k: v for k, v in data.items()})
                except ValueError:
                    pass
            elif body:
                from urllib.parse import parse_qsl

                params.update(dict(parse_qsl(body.decode(), keep_blank_values=True)))
        request[PARAMS] = params
        request[RAW_BODY] = body
        entry = Logged(request.method, request.path, params, headers=dict(request.headers))
        self.requests.append(entry)
        fault = self._take_fault(request.method, request.path)
        if fault is not None and not fault.process:
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
                resp = await handler(request)
            else:
                resp = self.error_response(fault.kind)
            entry.status = resp.status
            return resp
        resp = await handler(request)
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            else:
                resp = self.error_response(fault.kind)
        entry.status = resp.status
        return resp


# -- a small matching core the emulators share ----------------------------------------------------
class EmError(Exception):
    def __init__(self, kind: str, message: str = "") -> None:
        super().__init__(message or kind)
        self.kind = kind  # insufficient | invalid | unknown_order | duplicate | filter


@dataclass
class Market:
    symbol: str  # the venue's id, e.g. BTCUSDT
    base: str
    quote: str
    tick: Decimal = Decimal("0.01")
    step: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    min_notional: Decimal = Decimal("5")


@dataclass
class EmOrder:
    id: int
    cid: str
    symbol: str
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT | STOP (market stop)
    qty: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    time: int
    status: str = "NEW"  # NEW | PARTIALLY_FILLED | FILLED | CANCELED | REJECTED | EXPIRED
    executed: Decimal = Decimal(0)
    quote_executed: Decimal = Decimal(0)
    update_time: int = 0
    triggered: bool = False
    locked_asset: str = ""
    locked: Decimal = Decimal(0)

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def avg(self) -> Decimal:
        return self.quote_executed / self.executed if self.executed else Decimal(0)


@dataclass
class EmTrade:
    id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str
    time: int
    maker: bool


class Core:
    """Spot account and books: balances (free/locked), orders, trades, fills at the touch."""

    def __init__(self, markets: list[Market], balances: dict[str, Decimal], fee_rate: Decimal = Decimal("0.001"),
                 fee_in: str = "quote") -> None:
        self.markets = {m.symbol: m for m in markets}
        self.books: dict[str, tuple[Decimal, Decimal]] = {}
        self.free: dict[str, Decimal] = {k: D(v) for k, v in balances.items()}
        self.locked: dict[str, Decimal] = {k: Decimal(0) for k in balances}
        self.orders: dict[int, EmOrder] = {}
        self.by_cid: dict[str, EmOrder] = {}
        self.trades: list[EmTrade] = []
        self.fee_rate = fee_rate
        self.fee_in = fee_in  # "quote", "received" (the asset the trade brings in), or a third asset
        self._ids = itertools.count(1000)
        self._tids = itertools.count(5000)

    def set_book(self, symbol: str, bid: Any, ask: Any) -> None:
        self.books[symbol] = (D(bid), D(ask))
        for o in [o for o in self.orders.values() if o.symbol == symbol and o.open]:
            self._match(o, taker=False)

    # -- balances -------------------------------------------------------------------------------
    def _lock(self, o: EmOrder, asset: str, amount: Decimal) -> None:
        if self.free.get(asset, Decimal(0)) < amount:
            raise EmError("insufficient", "insufficient balance")
        self.free[asset] -= amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + amount
        o.locked_asset, o.locked = asset, amount

    def _unlock(self, o: EmOrder) -> None:
        if o.locked:
            self.locked[o.locked_asset] -= o.locked
            self.free[o.locked_asset] = self.free.get(o.locked_asset, Decimal(0)) + o.locked
            o.locked = Decimal(0)

    # -- orders ---------------------------------------------------------------------------------
    def place(self, symbol: str, side: str, type_: str, qty: Any, price: Any = None, stop: Any = None,
              cid: str = "", now: int = 0) -> EmOrder:
        m = self.markets.get(symbol)
        if m is None:
            raise EmError("invalid", "Invalid symbol.")
        if cid and cid in self.by_cid:
            raise EmError("duplicate", "Duplicate order sent.")
        qty = D(qty)
        price = None if price in (None, "") else D(price)
        stop = None if stop in (None, "") else D(stop)
        if qty <= 0 or qty < m.min_qty or (qty / m.step) % 1 != 0:
            raise EmError("filter", "Filter failure: LOT_SIZE")
        if price is not None and (price / m.tick) % 1 != 0:
            raise EmError("filter", "Filter failure: PRICE_FILTER")
        ref = price or stop or self._touch(symbol, side)
        if ref is not None and qty * ref < m.min_notional:
            raise EmError("filter", "Filter failure: NOTIONAL")
        o = EmOrder(next(self._ids), cid or f"emu-{next(self._ids)}", symbol, side, type_, qty, price, stop, now,
                    update_time=now)
        # Reserve what the order may spend.
        if side == "BUY":
            px = price if type_ == "LIMIT" else (self._touch(symbol, side) or stop or Decimal(0))
            need = qty * px * ((1 + self.fee_rate) if self.fee_in == "quote" else 1)
            if type_ == "STOP":
                need = Decimal(0)  # a buy stop reserves nothing until it triggers
            self._lock(o, m.quote, need) if need else None
        else:
            self._lock(o, m.base, qty)
        self.orders[o.id] = o
        self.by_cid[o.cid] = o
        self._match(o, taker=True)
        return o

    def cancel(self, o: EmOrder, now: int = 0) -> EmOrder:
        if not o.open:
            raise EmError("unknown_order", "Unknown order sent.")
        o.status = "CANCELED"
        o.update_time = now
        self._unlock(o)
        return o

    def _touch(self, symbol: str, side: str) -> Decimal | None:
        book = self.books.get(symbol)
        if book is None:
            return None
        return book[1] if side == "BUY" else book[0]

    def _match(self, o: EmOrder, taker: bool) -> None:
        touch = self._touch(o.symbol, o.side)
        if touch is None or not o.open:
            return
        buy = o.side == "BUY"
        if o.type == "STOP" and not o.triggered:
            if (buy and touch >= o.stop_price) or (not buy and touch <= o.stop_price):
                o.triggered = True
            else:
                return
        if o.type == "LIMIT":
            if (buy and touch > o.price) or (not buy and touch < o.price):
                return
            px = touch if taker else o.price
        else:
            px = touch
        self._fill(o, o.qty - o.executed, px, maker=(o.type == "LIMIT" and not taker))

    def _fill(self, o: EmOrder, qty: Decimal, px: Decimal, maker: bool) -> None:
        m = self.markets[o.symbol]
        cost = qty * px
        self._unlock(o)
        if self.fee_in not in ("quote", "received"):
            # Paid in a third asset (Binance's BNB): charged from its own balance, at a nominal
            # 1:1000 of the trade's quote value.
            fee_asset = self.fee_in
            fee = (cost * self.fee_rate / 1000).quantize(Decimal("1e-8"))
            self.free[fee_asset] = self.free.get(fee_asset, Decimal(0)) - fee
            if o.side == "BUY":
                self.free[m.quote] -= cost
                self.free[m.base] = self.free.get(m.base, Decimal(0)) + qty
            else:
                self.free[m.base] = self.free.get(m.base, Decimal(0)) - qty
                self.free[m.quote] = self.free.get(m.quote, Decimal(0)) + cost
        elif o.side == "BUY":
            fee_asset = m.quote if self.fee_in == "quote" else m.base
            fee = ((cost if fee_asset == m.quote else qty) * self.fee_rate).quantize(Decimal("1e-8"))
            spend = cost + (fee if fee_asset == m.quote else 0)
            if self.free.get(m.quote, Decimal(0)) < spend:
                o.status = "EXPIRED" if o.executed == 0 else "PARTIALLY_FILLED"
                return
            self.free[m.quote] -= spend
            self.free[m.base] = self.free.get(m.base, Decimal(0)) + qty - (fee if fee_asset == m.base else 0)
        else:
            fee_asset = m.quote
            fee = (cost * self.fee_rate).quantize(Decimal("1e-8"))
            self.free[m.base] = self.free.get(m.base, Decimal(0)) - qty
            self.free[m.quote] = self.free.get(m.quote, Decimal(0)) + cost - fee
        now = Emulator.now_ms()
        self.trades.append(EmTrade(next(self._tids), o.id, o.symbol, o.side, px, qty, fee, fee_asset, now, maker))
        o.executed += qty
        o.quote_executed += cost
        o.update_time = now
        o.status = "FILLED" if o.executed >= o.qty else "PARTIALLY_FILLED"

    def open_orders(self, symbol: str | None = None) -> list[EmOrder]:
        return [o for o in self.orders.values() if o.open and (symbol is None or o.symbol == symbol)]

    def find(self, order_id: Any = None, cid: str | None = None) -> EmOrder | None:
        if cid:
            return self.by_cid.get(cid)
        if order_id not in (None, ""):
            try:
                return self.orders.get(int(order_id))
            except ValueError:
                return None
        return None
