"""Binance spot REST emulator (the /api/v3 endpoints ccxt's binance uses for spot trading).

Signed endpoints check the X-MBX-APIKEY header against the keys the emulator was given and
verify the HMAC-SHA256 signature of the query/body with the matching secret, as Binance does.
`env` says which environment the emulator plays ("test" or "live"): it only knows the keys of
that environment, so a live key sent to the testnet emulator is refused with -2015, as the real
testnet refuses it. `/sapi/v1/account/apiRestrictions` answers only when `env == "live"` (the
testnet has no /sapi).
"""
from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any

from aiohttp import web

from . import PARAMS, RAW_BODY, Core, D, EmError, Emulator, EmOrder, Market, dec_str, reply

ERRORS = {
    "insufficient": (400, -2010, "Account has insufficient balance for requested action."),
    "unknown_order": (400, -2013, "Order does not exist."),
    "cancel_unknown": (400, -2011, "Unknown order sent."),
    "duplicate": (400, -2010, "Duplicate order sent."),
    "invalid": (400, -1121, "Invalid symbol."),
    "filter": (400, -1013, "Filter failure: NOTIONAL"),
    "auth": (401, -2015, "Invalid API-key, IP, or permissions for action."),
    "signature": (400, -1022, "Signature for this request is not valid."),
}

TYPE_OUT = {"MARKET": "MARKET", "LIMIT": "LIMIT", "STOP": "STOP_LOSS"}
TYPE_IN = {"MARKET": "MARKET", "LIMIT": "LIMIT", "STOP_LOSS": "STOP"}


def default_markets() -> list[Market]:
    return [
        Market("BTCUSDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), Decimal("5")),
        Market("ETHUSDT", "ETH", "USDT", Decimal("0.01"), Decimal("0.0001"), Decimal("0.0001"), Decimal("5")),
    ]


class BinanceEmulator(Emulator):
    name = "binance"

    def __init__(self, keys: dict[str, str], env: str = "test", balances: dict[str, Any] | None = None,
                 markets: list[Market] | None = None, fee_in: str = "received", can_withdraw: bool = False,
                 can_trade: bool = True) -> None:
        self.keys = dict(keys)  # api key -> secret
        self.env = env
        self.can_withdraw = can_withdraw
        self.can_trade = can_trade
        self.core = Core(markets or default_markets(),
                         {k: D(v) for k, v in (balances or {"USDT": 100000, "BTC": 0, "ETH": 0}).items()},
                         fee_in=fee_in)
        for m in self.core.markets.values():
            self.core.books.setdefault(m.symbol, (Decimal("100"), Decimal("100.1")))
        self.core.books["BTCUSDT"] = (Decimal("50000"), Decimal("50001"))
        self.core.books["ETHUSDT"] = (Decimal("3000"), Decimal("3000.5"))
        super().__init__()

    def set_book(self, symbol: str, bid: Any, ask: Any) -> None:
        self.core.set_book(symbol, bid, ask)

    def routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/api/v3/ping", reply(dict))
        r.add_get("/api/v3/time", reply(lambda: {"serverTime": self.now_ms()}))
        r.add_get("/api/v3/exchangeInfo", self.exchange_info)
        r.add_get("/api/v3/ticker/24hr", self.ticker_24hr)
        r.add_get("/api/v3/ticker/bookTicker", self.book_ticker)
        r.add_get("/api/v3/account", self.account)
        r.add_post("/api/v3/order", self.new_order)
        r.add_get("/api/v3/order", self.get_order)
        r.add_delete("/api/v3/order", self.cancel_order)
        r.add_get("/api/v3/openOrders", self.open_orders)
        r.add_delete("/api/v3/openOrders", self.cancel_open_orders)
        r.add_get("/api/v3/myTrades", self.my_trades)
        r.add_get("/sapi/v1/account/apiRestrictions", self.api_restrictions)

    # -- dialect --------------------------------------------------------------------------------
    def error_response(self, kind: str) -> web.Response:
        if kind in ("429", "418"):
            return web.json_response({"code": -1003, "msg": "Too much request weight used; current limit is "
                                      "6000 request weight per 1 MINUTE."}, status=int(kind))
        if kind.isdigit():
            return web.Response(status=int(kind), text="<html><body>Service Unavailable</body></html>",
                                content_type="text/html")
        status, code, msg = ERRORS.get(kind, (400, -1000, kind))
        return web.json_response({"code": code, "msg": msg}, status=status)

    def _auth(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("X-MBX-APIKEY", "")
        secret = self.keys.get(key)
        if secret is None:
            return self.error_response("auth")
        if request.method in ("GET", "DELETE"):
            payload = request.query_string
        else:
            payload = request[RAW_BODY].decode()
            if request.query_string:
                payload = request.query_string + ("&" + payload if payload else "")
        if "&signature=" not in payload:
            return self.error_response("signature")
        body, sig = payload.rsplit("&signature=", 1)
        want = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            return self.error_response("signature")
        return None

    def _order_json(self, o: EmOrder, full: bool = False) -> dict:
        d = {
            "symbol": o.symbol, "orderId": o.id, "orderListId": -1, "clientOrderId": o.cid,
            "price": dec_str(o.price or Decimal(0)), "origQty": dec_str(o.qty), "executedQty": dec_str(o.executed),
            "cummulativeQuoteQty": dec_str(o.quote_executed), "status": o.status, "timeInForce": "GTC",
            "type": TYPE_OUT[o.type], "side": o.side, "stopPrice": dec_str(o.stop_price or Decimal(0)),
            "icebergQty": "0.00000000", "time": o.time, "updateTime": o.update_time,
            "isWorking": o.type != "STOP" or o.triggered, "workingTime": o.time,
            "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        if full:
            d["transactTime"] = o.update_time
            d["fills"] = [{"price": dec_str(t.price), "qty": dec_str(t.qty), "commission": dec_str(t.fee),
                           "commissionAsset": t.fee_asset, "tradeId": t.id}
                          for t in self.core.trades if t.order_id == o.id]
        return d

    # -- public ---------------------------------------------------------------------------------
    async def exchange_info(self, request: web.Request) -> web.Response:
        symbols = []
        for m in self.core.markets.values():
            symbols.append({
                "symbol": m.symbol, "status": "TRADING", "baseAsset": m.base, "baseAssetPrecision": 8,
                "quoteAsset": m.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                               "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": dec_str(m.tick), "maxPrice": "1000000.00000000",
                     "tickSize": dec_str(m.tick)},
                    {"filterType": "LOT_SIZE", "minQty": dec_str(m.min_qty), "maxQty": "9000.00000000",
                     "stepSize": dec_str(m.step)},
                    {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
                     "stepSize": "0.00000000"},
                    {"filterType": "NOTIONAL", "minNotional": dec_str(m.min_notional), "applyMinToMarket": True,
                     "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                    {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                ],
                "permissions": [], "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            })
        return web.json_response({"timezone": "UTC", "serverTime": self.now_ms(), "rateLimits": [],
                                  "exchangeFilters": [], "symbols": symbols})

    def _ticker(self, m: Market) -> dict:
        bid, ask = self.core.books[m.symbol]
        last = (bid + ask) / 2
        now = self.now_ms()
        return {"symbol": m.symbol, "priceChange": "0", "priceChangePercent": "0", "weightedAvgPrice": dec_str(last),
                "prevClosePrice": dec_str(last), "lastPrice": dec_str(last), "lastQty": "1", "bidPrice": dec_str(bid),
                "bidQty": "5.00000000", "askPrice": dec_str(ask), "askQty": "5.00000000", "openPrice": dec_str(last),
                "highPrice": dec_str(ask), "lowPrice": dec_str(bid), "volume": "1000", "quoteVolume": "1000000",
                "openTime": now - 86400000, "closeTime": now, "firstId": 1, "lastId": 2, "count": 2}

    def _select(self, request: web.Request) -> list[Market] | web.Response:
        p = request[PARAMS]
        if "symbol" in p:
            m = self.core.markets.get(p["symbol"])
            return self.error_response("invalid") if m is None else [m]
        if "symbols" in p:
            import json

            wanted = json.loads(p["symbols"])
            return [self.core.markets[s] for s in wanted if s in self.core.markets]
        return list(self.core.markets.values())

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        ms = self._select(request)
        if isinstance(ms, web.Response):
            return ms
        out = [self._ticker(m) for m in ms]
        return web.json_response(out[0] if "symbol" in request[PARAMS] else out)

    async def book_ticker(self, request: web.Request) -> web.Response:
        ms = self._select(request)
        if isinstance(ms, web.Response):
            return ms
        out = []
        for m in ms:
            bid, ask = self.core.books[m.symbol]
            out.append({"symbol": m.symbol, "bidPrice": dec_str(bid), "bidQty": "5.00000000",
                        "askPrice": dec_str(ask), "askQty": "5.00000000"})
        return web.json_response(out[0] if "symbol" in request[PARAMS] else out)

    # -- private --------------------------------------------------------------------------------
    async def account(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        balances = [{"asset": a, "free": dec_str(self.core.free.get(a, Decimal(0))),
                     "locked": dec_str(self.core.locked.get(a, Decimal(0)))}
                    for a in sorted(set(self.core.free) | set(self.core.locked))]
        return web.json_response({
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                "seller": "0.00000000"},
            "canTrade": self.can_trade, "canWithdraw": self.can_withdraw, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self.now_ms(),
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 354937868,
        })

    async def api_restrictions(self, request: web.Request) -> web.Response:
        if self.env != "live":
            return web.Response(status=404, text="Not Found")
        if (err := self._auth(request)) is not None:
            return err
        return web.json_response({
            "ipRestrict": False, "createTime": 1698645219000, "enableReading": True,
            "enableWithdrawals": self.can_withdraw, "enableInternalTransfer": False, "enableMargin": False,
            "enableFutures": False, "permitsUniversalTransfer": False, "enableVanillaOptions": False,
            "enableFixApiTrade": False, "enableFixReadOnly": False,
            "enableSpotAndMarginTrading": self.can_trade, "enablePortfolioMarginTrading": False,
        })

    async def new_order(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        p = request[PARAMS]
        type_in = TYPE_IN.get(p.get("type", ""))
        if type_in is None:
            return web.json_response({"code": -1116, "msg": "Invalid orderType."}, status=400)
        if type_in == "STOP" and not p.get("stopPrice"):
            return web.json_response({"code": -1102, "msg": "Mandatory parameter 'stopPrice' was not sent."},
                                     status=400)
        try:
            o = self.core.place(p.get("symbol", ""), p.get("side", ""), type_in, p.get("quantity", "0"),
                                p.get("price"), p.get("stopPrice"), p.get("newClientOrderId", ""), self.now_ms())
        except EmError as e:
            if e.kind == "filter":
                status, code = 400, -1013
                return web.json_response({"code": code, "msg": str(e)}, status=status)
            return self.error_response(e.kind)
        return web.json_response(self._order_json(o, full=True))

    def _lookup(self, request: web.Request) -> EmOrder | None:
        p = request[PARAMS]
        o = self.core.find(p.get("orderId"), p.get("origClientOrderId"))
        if o is not None and o.symbol != p.get("symbol"):
            return None
        return o

    async def get_order(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        o = self._lookup(request)
        if o is None:
            return self.error_response("unknown_order")
        return web.json_response(self._order_json(o))

    async def cancel_order(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        o = self._lookup(request)
        if o is None or not o.open:
            return self.error_response("cancel_unknown")
        self.core.cancel(o, self.now_ms())
        d = self._order_json(o)
        d["origClientOrderId"] = o.cid
        d["clientOrderId"] = f"cancel{o.id}"
        d["transactTime"] = o.update_time
        return web.json_response(d)

    async def open_orders(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        return web.json_response([self._order_json(o) for o in self.core.open_orders(request[PARAMS].get("symbol"))])

    async def cancel_open_orders(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        sym = request[PARAMS].get("symbol")
        out = []
        for o in self.core.open_orders(sym):
            self.core.cancel(o, self.now_ms())
            d = self._order_json(o)
            d["origClientOrderId"] = o.cid
            out.append(d)
        return web.json_response(out)

    async def my_trades(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        p = request[PARAMS]
        sym = p.get("symbol")
        start = int(p.get("startTime", 0) or 0)
        oid = p.get("orderId")
        from_id = int(p.get("fromId", 0) or 0)
        out = []
        for t in self.core.trades:
            if t.symbol != sym or t.time < start or t.id < from_id:
                continue
            if oid and str(t.order_id) != str(oid):
                continue
            out.append({"symbol": t.symbol, "id": t.id, "orderId": t.order_id, "orderListId": -1,
                        "price": dec_str(t.price), "qty": dec_str(t.qty), "quoteQty": dec_str(t.price * t.qty),
                        "commission": dec_str(t.fee), "commissionAsset": t.fee_asset, "time": t.time,
                        "isBuyer": t.side == "BUY", "isMaker": t.maker, "isBestMatch": True})
        limit = int(p.get("limit", 500) or 500)
        return web.json_response(out[:limit])
