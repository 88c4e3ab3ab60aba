"""The engine's own order path over a real-protocol venue: OrderManager + CcxtBroker + the Binance
emulator. Entry fill -> protective stop at the venue; halt cancels the entries and leaves the
stop; close-all cancels the stop and flattens. The engine is opened on a paper profile and the
broker swapped in, to drive the OrderManager directly; tests/test_venues_session.py opens venue
profiles through `Engine.open` itself."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from conftest import ANY_READINESS, build_profile
from emulators.binance import BinanceEmulator
from engine.brokers.ccxt_broker import CcxtBroker
from engine.brokers.keys import load_keys
from engine.clock import SimClock
from engine.engine import Engine
from engine.models import Order, OrderPurpose, OrderStatus, OrderType, Quote, Side
from engine.venue_config import VenueSection

KEY, SECRET = "engKEYtest0123456789", "engSECRETtest0123456789"


def quote(sym: str, bid: str, ask: str, ts: datetime) -> Quote:
    return Quote(sym, ts, Decimal(bid), Decimal(ask), Decimal(5), Decimal(5), (Decimal(bid) + Decimal(ask)) / 2,
                 Decimal(1000))


async def test_entry_stop_halt_and_close_all_through_the_engine(tmp_path):
    emu = await BinanceEmulator({KEY: SECRET}).start()
    profile = build_profile(tmp_path, symbols=["BTC/USDT", "ETH/USDT"], risk={
        "max_limit_distance_pct": 50, "max_volume_fraction": 1, "max_book_fraction": 10, "min_edge": 0,
        "min_confidence": 0, "cash_reserve_pct": 0, "max_position_pct": 100, "max_symbol_exposure_pct": 100,
        "max_group_exposure_pct": 100, "max_open_positions": 100, "max_trades_per_hour": 100,
        "max_trades_per_day": 100, "min_seconds_between_trades": 0, **ANY_READINESS},
        sizing={"max_order_usd": 100000}, paper={"starting_cash": 100000})
    now = datetime.now(timezone.utc)
    eng = await Engine.open(profile, clock=SimClock(now))
    v = VenueSection(name="binance", base_url=emu.url, timeouts={"poll_seconds": 0, "request_seconds": 1})
    keys = load_keys(v, "testnet", {"BINANCE_TESTNET_API_KEY": KEY, "BINANCE_TESTNET_API_SECRET": SECRET})
    broker = CcxtBroker(v, "testnet", keys, eng.clock, ["BTC/USDT", "ETH/USDT"],
                        on_api_failure=eng.api_failures.record)
    await broker.connect()
    await eng.broker.close()
    eng.broker = eng.orders.broker = broker
    try:
        for q in (quote("BTC/USDT", "50000", "50001", now), quote("ETH/USDT", "3000", "3000.5", now)):
            eng.quotes[q.symbol] = q
            eng.market.update(q)
            eng.portfolio.mark(q)
            broker.on_quote(q)
        entry = Order(eng.orders.new_id(), "BTC/USDT", Side.BUY, OrderType.MARKET, Decimal("0.02"),
                      OrderPurpose.ENTRY, now, protective_stop=Decimal("46000"), reason="test")
        assert await eng.orders.send(entry, "strategy"), entry.reason
        await eng.orders.process_events()  # fill -> the protective stop goes to the venue
        await eng.orders.dispatch()
        await eng.orders.process_events()
        pos = eng.portfolio.positions["BTC/USDT"]
        assert pos.quantity == emu.core.free["BTC"] + emu.core.locked["BTC"]  # fee in BTC accounted
        stop = eng.orders.stop_order("BTC/USDT")
        assert stop is not None and emu.core.by_cid[stop.client_order_id].type == "STOP"
        entries = []
        for i in range(3):
            o = Order(eng.orders.new_id(), "ETH/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.1"), OrderPurpose.ENTRY,
                      now, limit_price=Decimal(2900 - i), protective_stop=Decimal(2700), reason="test")
            assert await eng.orders.send(o, "strategy"), o.reason
            entries.append(o.client_order_id)
        await eng.orders.process_events()
        assert {o.cid for o in emu.core.open_orders()} == set(entries) | {stop.client_order_id}

        await eng.halt("test", "venue halt")
        assert {o.cid for o in emu.core.open_orders()} == {stop.client_order_id}  # the stop survives
        assert all(eng.orders.orders[c].status is OrderStatus.CANCELLED for c in entries)
        assert stop.client_order_id in eng.orders.working

        await eng.close_all("test")
        await eng.orders.process_events()
        assert emu.core.open_orders() == []
        assert "BTC/USDT" not in eng.portfolio.positions
        assert emu.core.free["BTC"] + emu.core.locked["BTC"] < Decimal("0.00001")  # at most dust
    finally:
        await eng.close()
        await emu.stop()
