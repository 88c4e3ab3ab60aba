"""Numbers a venue sends that cannot be read, at Alpaca and through the whole engine (journal, the
venue's books, reconciliation after a restart); the readers and ccxt are in test_venue_numbers.py."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from conftest import ANY_READINESS, LOOSE_RISK, build_profile
from test_venue_numbers_support import (
    KEY, SECRET, CLOCK, MISSING, TIMEOUTS, GarbledBinance, GarbledAlpaca, put, garble_trades, order,
    fills, updates, criticals,
)

from engine.alerts import AlertBus
from engine.brokers.alpaca_broker import AlpacaBroker
from engine.brokers.keys import load_keys
from engine.brokers.retry import VenueError
from engine.models import Order, OrderPurpose, OrderStatus, OrderType, Quote, Side
from engine.venue_config import VenueSection


# -- Alpaca -------------------------------------------------------------------------------------------
@pytest.fixture
async def alpaca():
    emu = await GarbledAlpaca({KEY: SECRET}).start()
    v = VenueSection(name="alpaca", base_url=emu.url, timeouts=TIMEOUTS)
    keys = load_keys(v, "testnet", {"ALPACA_PAPER_API_KEY": KEY, "ALPACA_PAPER_API_SECRET": SECRET})
    b = AlpacaBroker(v, "testnet", keys, CLOCK, ["AAPL", "MSFT"])
    b.alerts = AlertBus()
    try:
        await b.connect()
        yield emu, b
    finally:
        await b.close()
        await emu.stop()


def garble_alpaca_orders(emu, key: str, value) -> None:
    one = put(key, value)
    for method, path in (("POST", "/v2/orders"), ("GET", "/v2/orders:by_client_order_id")):
        emu.garble(method, path, one)
    emu.garble("GET", "/v2/orders", lambda b: [one(o) for o in b])


@pytest.mark.parametrize("key, value", [("filled_avg_price", v) for v in (MISSING, "NaN", "abc", "0", "-5", "1e999")]
                         + [("filled_qty", v) for v in ("NaN", "Infinity", "-1")])
async def test_an_alpaca_fill_that_cannot_be_read_is_not_booked(alpaca, key, value):
    emu, b = alpaca
    garble_alpaca_orders(emu, key, value)
    await b.submit(order("tcN-5-1", Side.BUY, OrderType.MARKET, "10", "AAPL"))
    ev = b.drain_events()
    assert emu.core.free["AAPL"] == 10  # bought at the venue
    assert fills(ev) == [] and updates(ev) == [("tcN-5-1", OrderStatus.SUBMITTED, "")]
    [alert] = criticals(b.alerts)
    assert alert.data["field"] == key and alert.data["client_order_id"] == "tcN-5-1" and "alpaca" in alert.message
    await b.poll()
    assert b.drain_events() == [] and len(criticals(b.alerts)) == 1
    await b.submit(order("tcN-5-2", Side.BUY, OrderType.MARKET, "1", "AAPL"))
    await b.submit(order("tcN-5-3", Side.SELL, OrderType.STOP, "10", "AAPL", stop="150"))
    got = updates(b.drain_events())
    assert got[0][:2] == ("tcN-5-2", OrderStatus.REJECTED) and "held" in got[0][2]
    assert got[1][:2] == ("tcN-5-3", OrderStatus.SUBMITTED)


async def test_alpaca_orders_positions_cash_and_quotes_read_back_with_garbage(alpaca):
    emu, b = alpaca
    emu.core.place("MSFT", "BUY", "LIMIT", Decimal(1), Decimal(300), None, "tcN-0-7", 0)  # before a restart
    emu.garble("GET", "/v2/orders:by_client_order_id", put("filled_qty", "abc"))
    with pytest.raises(VenueError, match="filled_qty 'abc'"):
        await b.fetch_order("tcN-0-7")  # no order with a made-up filled quantity is adopted
    await b.submit(order("tcN-6-1", Side.BUY, OrderType.MARKET, "3", "AAPL"))
    emu.garble("GET", "/v2/positions", lambda body: [put("qty", "NaN")(p) for p in body])
    with pytest.raises(VenueError, match="qty 'NaN'"):
        await b.positions()
    emu.garble("GET", "/v2/account", put("cash", "abc"))
    with pytest.raises(VenueError, match="cash 'abc'"):
        await b.balances()
    # An empty or garbled side is no price: that quote is left out, the other symbol's stays.
    emu.garble("GET", "/v2/stocks/quotes/latest", lambda body: put("bp", 0)(body["quotes"]["AAPL"]))
    assert [q.symbol for q in await b.fetch_quotes()] == ["MSFT"]


# -- through the engine: journal, books, reconciliation -----------------------------------------------
async def open_venue_engine(profile, monkeypatch):
    """Engine.open on the Binance emulator (broker, alerts and journal wired as in a real start),
    with a quote per symbol so the gate can price an order."""
    from engine.engine import Engine
    from engine.journal import Journal
    from engine.profile import journal_path

    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", SECRET)
    j = await Journal.open(journal_path(profile))  # the stage grant `tradeconsole promote` would write
    if not await j.rows(kinds=["stage"]):
        j.append("stage", datetime.now(timezone.utc), "testnet", {"from": "paper", "to": "testnet", "direction": "promote"})
    await j.close()
    eng = await Engine.open(profile)
    now = eng.clock.now()
    for sym, bid, ask in (("BTC/USDT", "50000", "50001"), ("ETH/USDT", "3000", "3000.5")):
        q = Quote(sym, now, Decimal(bid), Decimal(ask), Decimal(5), Decimal(5), (Decimal(bid) + Decimal(ask)) / 2,
                  Decimal(1000))
        eng.quotes[sym] = q
        eng.market.update(q)
        eng.portfolio.mark(q)
        eng.broker.on_quote(q)
    return eng


async def test_the_engine_books_nothing_alerts_and_reconciles_after_a_restart(tmp_path, monkeypatch):
    emu = await GarbledBinance({KEY: SECRET}).start()
    garble_trades(emu, "binance", "price", "NaN")
    profile = build_profile(
        tmp_path, "binance-testnet", mode="testnet", stage="testnet", symbols=["BTC/USDT", "ETH/USDT"],
        venue={"name": "binance", "base_url": emu.url, "timeouts": TIMEOUTS}, sizing={"max_order_usd": 100000},
        risk={**LOOSE_RISK, **ANY_READINESS, "max_book_fraction": 10, "min_edge": 0, "min_confidence": 0,
              "cash_reserve_pct": 0, "max_position_pct": 100, "max_symbol_exposure_pct": 100})
    eng = await open_venue_engine(profile, monkeypatch)

    def btc_entry() -> Order:
        return Order(eng.orders.new_id(), "BTC/USDT", Side.BUY, OrderType.MARKET, Decimal("0.02"), OrderPurpose.ENTRY,
                     eng.clock.now(), protective_stop=Decimal("46000"), reason="test")
    try:
        cash = eng.portfolio.cash
        entry = btc_entry()
        assert await eng.orders.send(entry, "strategy"), entry.reason
        await eng.orders.process_events()
        await eng.journal.flush()
        assert emu.core.free["BTC"] > 0  # bought at the venue
        # Nothing booked on a made-up price: no fill row, no position, cash as it was, no stop sent.
        assert await eng.journal.rows(kinds=["fill"]) == []
        assert "BTC/USDT" not in eng.portfolio.positions and eng.portfolio.cash == cash
        assert entry.status is not OrderStatus.FILLED and entry.client_order_id in eng.orders.working
        assert [o.cid for o in emu.core.open_orders()] == []
        # Said loudly, pinned until acknowledged, and journaled.
        [pinned] = eng.alerts.unacknowledged()
        assert pinned.kind == "venue_unreadable_fill" and "price 'NaN'" in pinned.message
        assert "binance" in pinned.message and entry.client_order_id in pinned.message
        rows = [r for r in await eng.journal.rows(kinds=["alert"]) if r.ref == "venue_unreadable_fill"]
        assert len(rows) == 1 and rows[0].data["severity"] == "critical" and rows[0].data["data"]["field"] == "price"
        # A second entry in the symbol is refused before the venue; the operator hears why.
        again = btc_entry()
        assert await eng.orders.send(again, "strategy")
        await eng.orders.process_events()
        assert again.status is OrderStatus.REJECTED and "held" in again.reason
        assert again.client_order_id not in emu.core.by_cid
        # A halt still latches and ends; the entry the engine cannot close is reported, not hidden.
        await eng.halt("operator", "test")
        assert eng.state.value == "halted" and eng.cancels_outstanding == [entry.client_order_id]
    finally:
        await eng.close()

    restarted = await open_venue_engine(profile, monkeypatch)
    try:
        # The restart's reconciliation lists what was not booked: the order the venue finished and
        # the holding the journal lacks, for the operator to resolve (the halt's latch holds too).
        kinds = {(d.kind, d.symbol) for d in restarted.reconciliation}
        assert ("closed_while_down", "BTC/USDT") in kinds and ("quantity_mismatch", "BTC/USDT") in kinds
        assert any(a.kind == "reconciliation" for a in restarted.alerts.unacknowledged())
        assert restarted.state.value == "halted"
        assert await restarted.journal.rows(kinds=["fill"]) == []
    finally:
        await restarted.close()
        await emu.stop()
