"""Shared by tests/test_venue_inflight.py and tests/test_venue_resend.py: each real venue broker on
its loopback emulator with the timeouts a fault scenario needs, the emulator's request paths, and
an alert recorder. Faults are injected through the emulators' own `fault(...)` (never by changing
them)."""
from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest

from emulators.alpaca import AlpacaEmulator
from emulators.binance import BinanceEmulator
from emulators.bybit import BybitEmulator
from engine.alerts import AlertBus
from engine.brokers.alpaca_broker import AlpacaBroker
from engine.brokers.base import OrderUpdate
from engine.brokers.ccxt_broker import CcxtBroker
from engine.brokers.keys import load_keys
from engine.clock import WallClock
from engine.models import Fill, Order, OrderPurpose, OrderStatus, OrderType, Side
from engine.venue_config import VenueSection

KEY, SECRET = "tcKEYtest0123456789abcdef", "tcSECRETtest0123456789abcdef"
CLOCK = WallClock()
EMULATORS = {"binance": BinanceEmulator, "bybit": BybitEmulator, "alpaca": AlpacaEmulator}
SYMBOL = {"binance": "BTC/USDT", "bybit": "BTC/USDT", "alpaca": "AAPL"}
POST = {"binance": "/api/v3/order", "bybit": "/v5/order/create", "alpaca": "/v2/orders"}
LOOKUPS = {"binance": ["/api/v3/order"], "bybit": ["/v5/order/realtime", "/v5/order/history"],
           "alpaca": ["/v2/orders:by_client_order_id"]}
# A buy limit that rests at each emulator's book, and one that crosses it (fills at once).
RESTING = {"binance": "40000", "bybit": "40000", "alpaca": "150"}
CROSSING = {"binance": "50100", "bybit": "50100", "alpaca": "195"}
QTY = {"binance": "0.01", "bybit": "0.01", "alpaca": "10"}


@asynccontextmanager
async def venue(name: str, **timeouts):
    """(emulator, connected broker) for `name`, its alerts on an AlertBus of its own."""
    emu = await EMULATORS[name]({KEY: SECRET}).start()
    t = {"poll_seconds": 0, "request_seconds": 3, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05,
         "retries": 3, "unconfirmed_grace_seconds": 30, **timeouts}
    v = VenueSection(name=name, base_url=emu.url, timeouts=t)
    if name == "alpaca":
        keys = load_keys(v, "testnet", {"ALPACA_PAPER_API_KEY": KEY, "ALPACA_PAPER_API_SECRET": SECRET})
        b = AlpacaBroker(v, "testnet", keys, CLOCK, ["AAPL", "MSFT"])
    else:
        env = {f"{name.upper()}_TESTNET_API_KEY": KEY, f"{name.upper()}_TESTNET_API_SECRET": SECRET}
        b = CcxtBroker(v, "testnet", load_keys(v, "testnet", env), CLOCK, ["BTC/USDT", "ETH/USDT"])
    b.alerts = AlertBus()
    try:
        await b.connect()
        yield emu, b
    finally:
        await b.close()
        await emu.stop()


def order(name: str, cid: str, type_: OrderType, limit: str | None = None) -> Order:
    return Order(cid, SYMBOL[name], Side.BUY, type_, Decimal(QTY[name]), OrderPurpose.ENTRY, CLOCK.now(),
                 limit_price=None if limit is None else Decimal(limit))


def updates(events, status: OrderStatus | None = None) -> list[OrderUpdate]:
    return [e for e in events if isinstance(e, OrderUpdate) and (status is None or e.status is status)]


def fills(events) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def venue_order(emu, cid: str):
    return emu.core.by_cid.get(cid)


def venue_bought(name: str, emu, cid: str) -> Decimal:
    """What the buy put in the account: the base asset that moved (ccxt spot, fee in base taken
    off) or the shares (Alpaca)."""
    core = emu.core
    if name == "alpaca":
        return Decimal(core.by_cid[cid].executed)
    return Decimal(core.free.get("BTC", 0)) + Decimal(core.locked.get("BTC", 0))


async def until(pred, what: str, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            pytest.fail(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)


async def poll_until_quiet(broker, rounds: int = 20) -> list:
    """Poll (bounded) until the broker tracks nothing working; every event on the way."""
    events: list = []
    for _ in range(rounds):
        await asyncio.sleep(0.02)  # a cancel carried out beside a poll (Alpaca) gets its turn
        await broker.poll()
        events += broker.drain_events()
        if not broker._working:
            break
    return events


def criticals(broker) -> list[str]:
    return [a.kind for a in broker.alerts.unacknowledged()]
