"""Bybit v5 spot REST emulator (unified trading account), for ccxt's bybit.

Private endpoints check X-BAPI-API-KEY and the X-BAPI-SIGN HMAC (timestamp + key + recv window +
query string or JSON body), as Bybit does. Errors come back as HTTP 200 with a non-zero
`retCode`, rate limits as retCode 10006 (or HTTP 403 for the IP limit). Spot stop orders are
conditional orders (`orderFilter=StopOrder`, status Untriggered); cancelling one needs that
filter too, as on Bybit.
"""
from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any

from aiohttp import web

from . import PARAMS, RAW_BODY, Core, D, EmError, Emulator, EmOrder, Market, dec_str

ERRORS = {
    "insufficient": (170131, "Insufficient balance."),
    "unknown_order": (170213, "Order does not exist."),
    "duplicate": (170141, "Duplicate clientOrderId."),
    "invalid": (10001, "params error: symbol invalid"),
    "filter": (170140, "Order value exceeded lower limit."),
    "auth": (10003, "API key is invalid."),
    "signature": (10004, "error sign! origin_string[...]"),
    "429": (10006, "Too many visits!"),
}

STATUS = {"NEW": "New", "PARTIALLY_FILLED": "PartiallyFilled", "FILLED": "Filled", "CANCELED": "Cancelled",
          "REJECTED": "Rejected", "EXPIRED": "Cancelled"}


def default_markets() -> list[Market]:
    return [
        Market("BTCUSDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.000001"), Decimal("0.000048"), Decimal("1")),
        Market("ETHUSDT", "ETH", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.00062"), Decimal("1")),
    ]


class BybitEmulator(Emulator):
    name = "bybit"

    def __init__(self, keys: dict[str, str], env: str = "test", balances: dict[str, Any] | None = None,
                 markets: list[Market] | None = None, can_withdraw: bool = False, read_only: bool = False) -> None:
        self.keys = dict(keys)
        self.env = env
        self.can_withdraw = can_withdraw
        self.read_only = read_only
        self.core = Core(markets or default_markets(),
                         {k: D(v) for k, v in (balances or {"USDT": 100000, "BTC": 0, "ETH": 0}).items()},
                         fee_in="received")  # Bybit spot charges the asset received, as ccxt assumes
        self.core.books["BTCUSDT"] = (Decimal("50000"), Decimal("50001"))
        self.core.books["ETHUSDT"] = (Decimal("3000"), Decimal("3000.5"))
        self.stop_ids: set[int] = set()  # conditional (StopOrder) orders
        super().__init__()

    def set_book(self, symbol: str, bid: Any, ask: Any) -> None:
        self.core.set_book(symbol, bid, ask)

    def routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/v5/market/time", self.server_time)
        r.add_get("/v5/market/instruments-info", self.instruments)
        r.add_get("/v5/market/tickers", self.tickers)
        r.add_get("/v5/user/query-api", self.query_api)
        r.add_get("/v5/account/info", self.account_info)
        r.add_get("/v5/account/wallet-balance", self.wallet_balance)
        r.add_post("/v5/order/create", self.create)
        r.add_get("/v5/order/realtime", self.realtime)
        r.add_get("/v5/order/history", self.history)
        r.add_post("/v5/order/cancel", self.cancel)
        r.add_post("/v5/order/cancel-all", self.cancel_all)
        r.add_get("/v5/execution/list", self.executions)

    async def server_time(self, request: web.Request) -> web.Response:
        return self.ok({"timeSecond": str(self.now_ms() // 1000), "timeNano": str(self.now_ms() * 1000000)})

    # -- dialect --------------------------------------------------------------------------------
    def ok(self, result: Any) -> web.Response:
        return web.json_response({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                                  "time": self.now_ms()})

    def fail(self, code: int, msg: str) -> web.Response:
        return web.json_response({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {},
                                  "time": self.now_ms()})

    def error_response(self, kind: str) -> web.Response:
        if kind == "403":
            return web.Response(status=403, text="access too frequent")
        if kind.isdigit() and kind != "429":
            return web.Response(status=int(kind), text="<html>Bad Gateway</html>", content_type="text/html")
        code, msg = ERRORS.get(kind, (10016, "System error. Please try again later."))
        return self.fail(code, msg)

    def _auth(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("X-BAPI-API-KEY", "")
        secret = self.keys.get(key)
        if secret is None:
            return self.error_response("auth")
        ts = request.headers.get("X-BAPI-TIMESTAMP", "")
        rw = request.headers.get("X-BAPI-RECV-WINDOW", "")
        payload = request[RAW_BODY].decode() if request.method == "POST" else request.query_string
        want = hmac.new(secret.encode(), (ts + key + rw + payload).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, request.headers.get("X-BAPI-SIGN", "")):
            return self.error_response("signature")
        return None

    def _order_json(self, o: EmOrder) -> dict:
        stop = o.id in self.stop_ids
        status = STATUS[o.status]
        if stop and o.status == "NEW" and not o.triggered:
            status = "Untriggered"
        if stop and o.status == "CANCELED" and not o.triggered:
            status = "Deactivated"
        return {
            "orderId": str(o.id), "orderLinkId": o.cid, "blockTradeId": "", "symbol": o.symbol,
            "price": dec_str(o.price or Decimal(0), 2), "qty": dec_str(o.qty, 6), "side": o.side.title(),
            "isLeverage": "0", "positionIdx": 0, "orderStatus": status, "cancelType": "UNKNOWN",
            "rejectReason": "EC_NoError", "avgPrice": dec_str(o.avg, 2) if o.executed else "",
            "leavesQty": dec_str(o.qty - o.executed if o.open else Decimal(0), 6),
            "leavesValue": "0", "cumExecQty": dec_str(o.executed, 6), "cumExecValue": dec_str(o.quote_executed, 8),
            "cumExecFee": dec_str(sum((t.fee for t in self.core.trades if t.order_id == o.id), Decimal(0)), 8),
            "timeInForce": "IOC" if o.type == "MARKET" else "GTC",
            "orderType": "Limit" if o.type == "LIMIT" else "Market",
            "stopOrderType": "Stop" if stop else "", "orderIv": "",
            "triggerPrice": dec_str(o.stop_price or Decimal(0), 2), "takeProfit": "", "stopLoss": "",
            "tpTriggerBy": "", "slTriggerBy": "", "triggerDirection": 0, "triggerBy": "LastPrice" if stop else "",
            "lastPriceOnCreated": "", "reduceOnly": False, "closeOnTrigger": False, "smpType": "None",
            "smpGroup": 0, "smpOrderId": "", "tpslMode": "", "tpLimitPrice": "", "slLimitPrice": "",
            "placeType": "", "createdTime": str(o.time), "updatedTime": str(o.update_time),
        }

    # -- public ---------------------------------------------------------------------------------
    async def instruments(self, request: web.Request) -> web.Response:
        if request[PARAMS].get("category") != "spot":
            return self.ok({"category": request[PARAMS].get("category", ""), "list": [], "nextPageCursor": ""})
        out = [{
            "symbol": m.symbol, "baseCoin": m.base, "quoteCoin": m.quote, "innovation": "0", "status": "Trading",
            "marginTrading": "none", "stTag": "0",
            "lotSizeFilter": {"basePrecision": dec_str(m.step, 6), "quotePrecision": "0.00000001",
                              "minOrderQty": dec_str(m.min_qty, 6), "maxOrderQty": "100",
                              "minOrderAmt": dec_str(m.min_notional, 2), "maxOrderAmt": "2000000"},
            "priceFilter": {"tickSize": dec_str(m.tick, 2)},
            "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.05"},
        } for m in self.core.markets.values()]
        return self.ok({"category": "spot", "list": out, "nextPageCursor": ""})

    async def tickers(self, request: web.Request) -> web.Response:
        sym = request[PARAMS].get("symbol")
        out = []
        for m in self.core.markets.values():
            if sym and m.symbol != sym:
                continue
            bid, ask = self.core.books[m.symbol]
            last = (bid + ask) / 2
            out.append({"symbol": m.symbol, "bid1Price": dec_str(bid, 2), "bid1Size": "5", "ask1Price": dec_str(ask, 2),
                        "ask1Size": "5", "lastPrice": dec_str(last, 2), "prevPrice24h": dec_str(last, 2),
                        "price24hPcnt": "0", "highPrice24h": dec_str(ask, 2), "lowPrice24h": dec_str(bid, 2),
                        "turnover24h": "1000000", "volume24h": "100", "usdIndexPrice": dec_str(last, 2)})
        return self.ok({"category": "spot", "list": out})

    # -- private --------------------------------------------------------------------------------
    async def query_api(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        wallet = ["AccountTransfer", "SubMemberTransfer"] + (["Withdraw"] if self.can_withdraw else [])
        return self.ok({
            "id": "13770661", "note": "tradeconsole", "apiKey": request.headers["X-BAPI-API-KEY"],
            "readOnly": 1 if self.read_only else 0, "secret": "",
            "permissions": {"ContractTrade": [], "Spot": ["SpotTrade"], "Wallet": wallet, "Options": [],
                            "Derivatives": [], "CopyTrading": [], "BlockTrade": [], "Exchange": [], "NFT": [],
                            "Affiliate": []},
            "ips": ["*"], "type": 1, "deadlineDay": 83, "expiredAt": "2026-12-31T00:00:00Z",
            "createdAt": "2025-01-01T00:00:00Z", "unified": 0, "uta": 1, "userID": 24617703,
            "inviterID": 0, "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0, "rsaPublicKey": "",
            "isMaster": True, "parentUid": "0", "kycLevel": "LEVEL_DEFAULT", "kycRegion": "",
        })

    async def account_info(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        return self.ok({"unifiedMarginStatus": 4, "marginMode": "REGULAR_MARGIN", "isMasterTrader": False,
                        "spotHedgingStatus": "OFF", "updatedTime": str(self.now_ms()), "dcpStatus": "OFF",
                        "timeWindow": 10, "smpGroup": 0})

    async def wallet_balance(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        coins = []
        for a in sorted(set(self.core.free) | set(self.core.locked)):
            free = self.core.free.get(a, Decimal(0))
            locked = self.core.locked.get(a, Decimal(0))
            total = free + locked
            coins.append({"availableToBorrow": "", "bonus": "0", "accruedInterest": "0",
                          "availableToWithdraw": dec_str(free), "totalOrderIM": "0", "equity": dec_str(total),
                          "totalPositionMM": "0", "usdValue": dec_str(total), "unrealisedPnl": "0",
                          "collateralSwitch": True, "spotHedgingQty": "0", "borrowAmount": "0",
                          "totalPositionIM": "0", "walletBalance": dec_str(total), "cumRealisedPnl": "0",
                          "locked": dec_str(locked), "marginCollateral": True, "coin": a})
        usdt = self.core.free.get("USDT", Decimal(0))
        return self.ok({"list": [{
            "totalEquity": dec_str(usdt), "accountIMRate": "0", "totalMarginBalance": dec_str(usdt),
            "totalInitialMargin": "0", "accountType": "UNIFIED", "totalAvailableBalance": dec_str(usdt),
            "accountMMRate": "0", "totalPerpUPL": "0", "totalWalletBalance": dec_str(usdt), "accountLTV": "0",
            "totalMaintenanceMargin": "0", "coin": coins}]})

    async def create(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        p = request[PARAMS]
        if p.get("category") != "spot":
            return self.fail(10001, "params error: category")
        side = str(p.get("side", "")).upper()
        otype = str(p.get("orderType", ""))
        stop = p.get("triggerPrice")
        is_stop = p.get("orderFilter") == "StopOrder"
        if is_stop and not stop:
            return self.fail(10001, "params error: triggerPrice")
        type_ = "STOP" if is_stop and otype == "Market" else ("LIMIT" if otype == "Limit" else "MARKET")
        qty = D(p.get("qty", "0"))
        if type_ == "MARKET" and side == "BUY" and p.get("marketUnit", "quoteCoin") == "quoteCoin":
            _, ask = self.core.books[p.get("symbol", "")]
            qty = (qty / ask).quantize(self.core.markets[p["symbol"]].step)
        try:
            o = self.core.place(p.get("symbol", ""), side, type_, qty, p.get("price"), stop,
                                str(p.get("orderLinkId", "")), self.now_ms())
        except EmError as e:
            return self.error_response(e.kind)
        if is_stop:
            self.stop_ids.add(o.id)
        return self.ok({"orderId": str(o.id), "orderLinkId": o.cid})

    def _find(self, p: dict) -> EmOrder | None:
        o = self.core.find(p.get("orderId"), p.get("orderLinkId"))
        if o is not None and p.get("symbol") and o.symbol != p.get("symbol"):
            return None
        return o

    async def realtime(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        p = request[PARAMS]
        if p.get("orderId") or p.get("orderLinkId"):
            o = self._find(p)
            out = [] if o is None else [o]
        else:
            out = self.core.open_orders(p.get("symbol"))
            filt = p.get("orderFilter")
            if filt == "StopOrder":
                out = [o for o in out if o.id in self.stop_ids]
            elif filt == "Order":
                out = [o for o in out if o.id not in self.stop_ids]
        return self.ok({"category": "spot", "list": [self._order_json(o) for o in out], "nextPageCursor": ""})

    async def history(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        p = request[PARAMS]
        out = [o for o in self.core.orders.values() if not o.open and (not p.get("symbol") or o.symbol == p["symbol"])]
        if p.get("orderId") or p.get("orderLinkId"):
            o = self._find(p)
            out = [o] if o is not None and not o.open else []
        return self.ok({"category": "spot", "list": [self._order_json(o) for o in out], "nextPageCursor": ""})

    async def cancel(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        p = request[PARAMS]
        o = self._find(p)
        if o is None or not o.open:
            return self.error_response("unknown_order")
        # On Bybit spot a conditional order is only found with orderFilter=StopOrder.
        if (o.id in self.stop_ids) != (p.get("orderFilter") == "StopOrder"):
            return self.error_response("unknown_order")
        self.core.cancel(o, self.now_ms())
        return self.ok({"orderId": str(o.id), "orderLinkId": o.cid})

    async def cancel_all(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        p = request[PARAMS]
        stops = p.get("orderFilter") == "StopOrder"
        out = []
        for o in self.core.open_orders(p.get("symbol")):
            if (o.id in self.stop_ids) == stops:
                self.core.cancel(o, self.now_ms())
                out.append({"orderId": str(o.id), "orderLinkId": o.cid})
        return self.ok({"list": out, "success": "1"})

    async def executions(self, request: web.Request) -> web.Response:
        if (err := self._auth(request)) is not None:
            return err
        p = request[PARAMS]
        start = int(p.get("startTime", 0) or 0)
        out = []
        for t in reversed(self.core.trades):  # newest first, as Bybit
            if p.get("symbol") and t.symbol != p["symbol"]:
                continue
            if p.get("orderId") and str(t.order_id) != str(p["orderId"]):
                continue
            if t.time < start:
                continue
            o = self.core.orders[t.order_id]
            out.append({
                "symbol": t.symbol, "orderId": str(t.order_id), "orderLinkId": o.cid, "side": t.side.title(),
                "orderPrice": dec_str(o.price or Decimal(0), 2), "orderQty": dec_str(o.qty, 6),
                "leavesQty": dec_str(o.qty - o.executed, 6), "createType": "CreateByUser",
                "orderType": "Limit" if o.type == "LIMIT" else "Market",
                "stopOrderType": "Stop" if o.id in self.stop_ids else "", "execFee": dec_str(t.fee, 8),
                "execId": str(t.id), "execPrice": dec_str(t.price, 2), "execQty": dec_str(t.qty, 6),
                "execType": "Trade", "execValue": dec_str(t.price * t.qty, 8), "execTime": str(t.time),
                "feeCurrency": t.fee_asset, "isMaker": t.maker, "feeRate": "0.001", "tradeIv": "", "markIv": "",
                "markPrice": "", "indexPrice": "", "underlyingPrice": "", "blockTradeId": "", "closedSize": "",
                "seq": t.id,
            })
        limit = int(p.get("limit", 50) or 50)
        return self.ok({"category": "spot", "list": out[:limit], "nextPageCursor": ""})
