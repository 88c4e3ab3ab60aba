"""Alpaca REST emulator: trading API v2 (account, clock, orders incl. by client order id,
positions) and the market-data latest-quotes endpoint, for alpaca-py's TradingClient and
StockHistoricalDataClient (`url_override` = this server, without /v2).

Keys are checked from the APCA-API-KEY-ID / APCA-API-SECRET-KEY headers. `env="test"` plays the
paper endpoint: its account number starts with "PA", as Alpaca's paper accounts do, and a key of
the other environment is refused with 401. Shares bought are held by a working sell stop, so a
sell beyond what is free fails with "insufficient qty available", as on Alpaca.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from aiohttp import web

from . import PARAMS, Core, D, EmError, Emulator, EmOrder, Market

STATUS = {"NEW": "new", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled", "CANCELED": "canceled",
          "REJECTED": "rejected", "EXPIRED": "expired"}
TYPE_IN = {"market": "MARKET", "limit": "LIMIT", "stop": "STOP"}
TYPE_OUT = {v: k for k, v in TYPE_IN.items()}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat().replace("+00:00", "Z")


class AlpacaEmulator(Emulator):
    name = "alpaca"

    def __init__(self, keys: dict[str, str], env: str = "test", cash: Any = 100000, is_open: bool = True,
                 status: str = "ACTIVE", trading_blocked: bool = False) -> None:
        self.keys = dict(keys)
        self.env = env
        self.is_open = is_open
        # The market clock's next open / close (GET /v2/clock); None: 16 h / 2 h from now.
        self.next_open: datetime | None = None
        self.next_close: datetime | None = None
        self.status = status
        self.trading_blocked = trading_blocked
        markets = [Market(s, s, "USD", Decimal("0.01"), Decimal("0.000000001"), Decimal("0.000000001"), Decimal("1"))
                   for s in ("AAPL", "MSFT")]
        self.core = Core(markets, {"USD": D(cash), "AAPL": Decimal(0), "MSFT": Decimal(0)}, fee_rate=Decimal(0))
        self.core.books["AAPL"] = (Decimal("190.00"), Decimal("190.02"))
        self.core.books["MSFT"] = (Decimal("410.00"), Decimal("410.05"))
        self.uuids: dict[int, str] = {}
        self.account_id = str(uuid.uuid4())
        super().__init__()

    def set_book(self, symbol: str, bid: Any, ask: Any) -> None:
        self.core.set_book(symbol, bid, ask)

    def routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/v2/account", self.account)
        r.add_get("/v2/clock", self.clock)
        r.add_post("/v2/orders", self.create)
        r.add_get("/v2/orders", self.list_orders)
        r.add_delete("/v2/orders", self.cancel_all)
        r.add_get("/v2/orders:by_client_order_id", self.by_client_id)
        r.add_get("/v2/orders/{order_id}", self.get_order)
        r.add_delete("/v2/orders/{order_id}", self.cancel)
        r.add_get("/v2/positions", self.positions)
        r.add_get("/v2/stocks/quotes/latest", self.latest_quotes)

    # -- dialect --------------------------------------------------------------------------------
    def error_response(self, kind: str) -> web.Response:
        table = {
            "429": (429, 42900000, "rate limit exceeded"),
            "insufficient": (403, 40310000, "insufficient buying power"),
            "insufficient_qty": (403, 40310000, "insufficient qty available for order"),
            "unknown_order": (404, 40410000, "order not found"),
            "duplicate": (422, 40010001, "client_order_id must be unique"),
            "filter": (422, 40010001, "invalid order: qty or notional below the minimum"),
            "invalid": (422, 40010001, "invalid symbol"),
            "not_cancelable": (422, 42210000, "order is not cancelable"),
            "auth": (401, 40110000, "request is not authorized"),
        }
        if kind in table:
            status, code, msg = table[kind]
            return web.json_response({"code": code, "message": msg}, status=status)
        if kind.isdigit():
            return web.Response(status=int(kind), text="upstream connect error", content_type="text/plain")
        return web.json_response({"code": 50010000, "message": kind}, status=500)

    def _auth(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("APCA-API-KEY-ID", "")
        if self.keys.get(key) is None or self.keys[key] != request.headers.get("APCA-API-SECRET-KEY"):
            return self.error_response("auth")
        return None

    def _uuid(self, o: EmOrder) -> str:
        return self.uuids.setdefault(o.id, str(uuid.UUID(int=o.id)))

    def _order_json(self, o: EmOrder) -> dict:
        filled = o.status == "FILLED"
        return {
            "id": self._uuid(o), "client_order_id": o.cid, "created_at": _iso(o.time), "updated_at": _iso(o.update_time),
            "submitted_at": _iso(o.time), "filled_at": _iso(o.update_time) if filled else None,
            "expired_at": None, "canceled_at": _iso(o.update_time) if o.status == "CANCELED" else None,
            "failed_at": None, "replaced_at": None, "replaced_by": None, "replaces": None,
            "asset_id": str(uuid.UUID(int=hash(o.symbol) & (2 ** 64 - 1))), "symbol": o.symbol,
            "asset_class": "us_equity", "notional": None, "qty": str(o.qty), "filled_qty": str(o.executed),
            "filled_avg_price": str(o.avg) if o.executed else None, "order_class": "simple",
            "order_type": TYPE_OUT[o.type], "type": TYPE_OUT[o.type], "side": o.side.lower(),
            "time_in_force": "gtc" if o.type == "STOP" else "day",
            "limit_price": str(o.price) if o.price is not None else None,
            "stop_price": str(o.stop_price) if o.stop_price is not None else None,
            "status": STATUS[o.status], "extended_hours": False, "legs": None, "trail_percent": None,
            "trail_price": None, "hwm": None, "position_intent": "buy_to_open" if o.side == "BUY" else "sell_to_close",
        }

    # -- endpoints ------------------------------------------------------------------------------
    async def account(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        cash = self.core.free["USD"] + self.core.locked.get("USD", Decimal(0))
        mv = sum((self.core.free.get(s, Decimal(0)) + self.core.locked.get(s, Decimal(0))) * self.core.books[s][0]
                 for s in ("AAPL", "MSFT"))
        number = ("PA" if self.env == "test" else "") + "3TQ8UFYB2X"
        return web.json_response({
            "id": self.account_id, "account_number": number, "status": self.status, "crypto_status": "ACTIVE",
            "currency": "USD", "buying_power": str(self.core.free["USD"]),
            "regt_buying_power": str(self.core.free["USD"]), "daytrading_buying_power": "0",
            "non_marginable_buying_power": str(self.core.free["USD"]), "options_buying_power": "0",
            "cash": str(cash), "accrued_fees": "0", "pending_transfer_in": "0", "portfolio_value": str(cash + mv),
            "pattern_day_trader": False, "trading_blocked": self.trading_blocked, "transfers_blocked": False,
            "account_blocked": False, "created_at": "2024-01-02T15:00:00Z", "trade_suspended_by_user": False,
            "multiplier": "1", "shorting_enabled": False, "equity": str(cash + mv), "last_equity": str(cash + mv),
            "long_market_value": str(mv), "short_market_value": "0", "initial_margin": "0",
            "maintenance_margin": "0", "last_maintenance_margin": "0", "sma": "0", "daytrade_count": 0,
        })

    async def clock(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        now = datetime.now(timezone.utc).replace(microsecond=0)
        return web.json_response({
            "timestamp": now.isoformat(), "is_open": self.is_open,
            "next_open": (self.next_open or now + timedelta(hours=16)).isoformat(),
            "next_close": (self.next_close or now + timedelta(hours=2)).isoformat(),
        })

    async def create(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        p = request[PARAMS]
        if self.trading_blocked:
            return web.json_response({"code": 40310000, "message": "account is not authorized to trade"}, status=403)
        type_ = TYPE_IN.get(str(p.get("type", "")))
        if type_ is None:
            return self.error_response("invalid")
        side = str(p.get("side", "")).upper()
        sym = str(p.get("symbol", ""))
        try:
            o = self.core.place(sym, side, type_, p.get("qty", "0"), p.get("limit_price"), p.get("stop_price"),
                                str(p.get("client_order_id") or uuid.uuid4()), self.now_ms())
        except EmError as e:
            kind = "insufficient_qty" if e.kind == "insufficient" and side == "SELL" else e.kind
            return self.error_response(kind)
        return web.json_response(self._order_json(o))

    async def list_orders(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        p = request[PARAMS]
        status = p.get("status", "open")
        syms = set(p["symbols"].split(",")) if p.get("symbols") else None
        out = []
        for o in self.core.orders.values():
            if status == "open" and not o.open or status == "closed" and o.open:
                continue
            if syms is not None and o.symbol not in syms:
                continue
            out.append(self._order_json(o))
        return web.json_response(out[: int(p.get("limit", 500) or 500)])

    async def by_client_id(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        o = self.core.find(cid=request[PARAMS].get("client_order_id"))
        return self.error_response("unknown_order") if o is None else web.json_response(self._order_json(o))

    def _by_uuid(self, oid: str) -> EmOrder | None:
        try:
            return self.core.orders.get(uuid.UUID(oid).int)
        except ValueError:
            return None

    async def get_order(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        o = self._by_uuid(request.match_info["order_id"])
        return self.error_response("unknown_order") if o is None else web.json_response(self._order_json(o))

    async def cancel(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        o = self._by_uuid(request.match_info["order_id"])
        if o is None:
            return self.error_response("unknown_order")
        if not o.open:
            return self.error_response("not_cancelable")
        self.core.cancel(o, self.now_ms())
        return web.Response(status=204)

    async def cancel_all(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        out = []
        for o in self.core.open_orders():
            self.core.cancel(o, self.now_ms())
            out.append({"id": self._uuid(o), "status": 200, "body": self._order_json(o)})
        return web.json_response(out, status=207)

    async def positions(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        out = []
        for sym in ("AAPL", "MSFT"):
            qty = self.core.free.get(sym, Decimal(0)) + self.core.locked.get(sym, Decimal(0))
            if qty == 0:
                continue
            buys = [t for t in self.core.trades if t.symbol == sym and t.side == "BUY"]
            cost = sum((t.price * t.qty for t in buys), Decimal(0))
            bq = sum((t.qty for t in buys), Decimal(0))
            avg = cost / bq if bq else Decimal(0)
            bid = self.core.books[sym][0]
            out.append({
                "asset_id": str(uuid.UUID(int=hash(sym) & (2 ** 64 - 1))), "symbol": sym, "exchange": "NASDAQ",
                "asset_class": "us_equity", "asset_marginable": True, "avg_entry_price": str(avg), "qty": str(qty),
                "qty_available": str(self.core.free.get(sym, Decimal(0))), "side": "long",
                "market_value": str(qty * bid), "cost_basis": str(avg * qty),
                "unrealized_pl": str((bid - avg) * qty), "unrealized_plpc": "0", "unrealized_intraday_pl": "0",
                "unrealized_intraday_plpc": "0", "current_price": str(bid), "lastday_price": str(bid),
                "change_today": "0",
            })
        return web.json_response(out)

    async def latest_quotes(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        syms = [s for s in str(request[PARAMS].get("symbols", "")).split(",") if s]
        now = datetime.now(timezone.utc).isoformat()
        out = {}
        for s in syms:
            if s in self.core.books:
                bid, ask = self.core.books[s]
                out[s] = {"t": now, "ax": "V", "ap": float(ask), "as": 3, "bx": "V", "bp": float(bid), "bs": 2,
                          "c": ["R"], "z": "C"}
        return web.json_response({"quotes": out})
