"""What the venue-number tests share (tests/test_venue_numbers*.py): emulators whose JSON answers
are garbled on their way out, the edits that garble them, and small readers of broker events."""
from __future__ import annotations

import json
from decimal import Decimal

from aiohttp import web
from emulators import Emulator
from emulators.alpaca import AlpacaEmulator
from emulators.binance import BinanceEmulator
from emulators.bybit import BybitEmulator

from engine.alerts import AlertBus
from engine.brokers.base import OrderUpdate
from engine.clock import WallClock
from engine.models import Fill, Order, OrderPurpose, OrderStatus, OrderType, Side

KEY, SECRET = "numKEYtest0123456789", "numSECRETtest0123456789"
CLOCK = WallClock()
MISSING = object()  # the field left out of the venue's answer
GARBAGE = [MISSING, "", "NaN", "abc", "Infinity", "-1", "0", "1e999"]
TIMEOUTS = {"poll_seconds": 0, "request_seconds": 1, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05,
            "retries": 1, "unconfirmed_grace_seconds": 0.2}


# -- emulators that garble their answers --------------------------------------------------------------
class Garbling:
    """Emulator mixin: chosen JSON answers are edited on their way out, after the venue acted."""

    def __init__(self, *args, **kwargs) -> None:
        self.rules: dict[tuple[str, str], object] = {}
        super().__init__(*args, **kwargs)

    def garble(self, method: str, path: str, edit) -> None:  # edit(decoded body) changes it in place
        self.rules[(method, path)] = edit

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        resp = await Emulator._middleware(self, request, handler)
        edit = self.rules.get((request.method, request.path))
        if edit is None or resp.content_type != "application/json":
            return resp
        body = json.loads(resp.body)
        edit(body)
        return web.json_response(body, status=resp.status)


GarbledBinance = type("GarbledBinance", (Garbling, BinanceEmulator), {})
GarbledBybit = type("GarbledBybit", (Garbling, BybitEmulator), {})
GarbledAlpaca = type("GarbledAlpaca", (Garbling, AlpacaEmulator), {})


def put(key: str, value):
    """An edit of one dict: the key set to `value`, or dropped for MISSING."""
    return lambda d: d.pop(key, None) if value is MISSING else d.__setitem__(key, value)


TRADE_KEY = {"binance": {"price": "price", "amount": "qty", "fee cost": "commission"},
             "bybit": {"price": "execPrice", "amount": "execQty", "fee cost": "execFee"}}


def garble_trades(emu, name: str, field: str, value) -> None:
    """Every trade the venue reports (Binance: also the fills in its order answer) with `field` garbled."""
    one = put(TRADE_KEY[name][field], value)
    if name == "binance":
        emu.garble("POST", "/api/v3/order", lambda b: [one(f) for f in b.get("fills", [])])
        emu.garble("GET", "/api/v3/myTrades", lambda b: [one(t) for t in b])
    else:
        emu.garble("GET", "/v5/execution/list", lambda b: [one(t) for t in b["result"]["list"]])


def order(cid: str, side: Side, type_: OrderType, qty: str, symbol: str, *, limit: str | None = None,
          stop: str | None = None) -> Order:
    return Order(cid, symbol, side, type_, Decimal(qty), OrderPurpose.STOP if type_ is OrderType.STOP else OrderPurpose.ENTRY,
                 CLOCK.now(), limit_price=None if limit is None else Decimal(limit),
                 stop_price=None if stop is None else Decimal(stop))


def fills(events) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def updates(events) -> list[tuple[str, OrderStatus, str]]:
    return [(e.client_order_id, e.status, e.reason) for e in events if isinstance(e, OrderUpdate)]


def criticals(alerts: AlertBus) -> list:
    return [a for a in alerts.recent(200) if a.severity == "critical"]
