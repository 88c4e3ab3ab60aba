"""Numbers a venue sends that cannot be read are never booked as 0 (engine/brokers/venue_fields.py).

The real client libraries talk to the 127.0.0.1 emulators, whose answers are garbled on their way
out (a trade without a price, "NaN", "1e999", ...): no fill is booked, a critical alert names venue,
order, field and raw value, the order is left for reconciliation and entries in its symbol are
refused; order snapshots, balances and positions with garbage fail the read instead of reading 0.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from test_venue_numbers_support import (
    KEY, SECRET, CLOCK, MISSING, GARBAGE, TIMEOUTS, GarbledBinance, GarbledBybit, put, garble_trades,
    order, fills, updates, criticals,
)

from engine.alerts import AlertBus
from engine.brokers.ccxt_broker import CcxtBroker
from engine.brokers.keys import load_keys
from engine.brokers.retry import VenueError
from engine.brokers.venue_fields import UnreadableNumber, number, positive
from engine.models import OrderStatus, OrderType, Side
from engine.venue_config import VenueSection


# -- the reader itself --------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [None, "", "NaN", "nan", "sNaN", "Infinity", "-Infinity", "1e999", "-1e999",
                                 "1e-999", "abc", "1,5", True, float("nan"), float("inf"), [], {}])
def test_garbage_is_never_a_number(raw):
    with pytest.raises(UnreadableNumber) as err:
        number(raw, "price")
    assert str(err.value).startswith("price ")
    with pytest.raises(UnreadableNumber):
        positive(raw, "price")


@pytest.mark.parametrize("raw, want", [("0", Decimal(0)), ("-1", Decimal(-1)), ("50001.00000001", Decimal("50001.00000001")),
                                       (" 7 ", Decimal(7)), (12.5, Decimal("12.5")), (3, Decimal(3)),
                                       (Decimal("0.1"), Decimal("0.1")), ("1e29", Decimal("1e29")), ("0E-40", Decimal(0))])
def test_finite_numbers_are_read_exactly(raw, want):
    got = number(raw, "qty")
    assert isinstance(got, Decimal) and got == want


def test_missing_takes_the_callers_default_only_when_it_names_one():
    assert number(None, "fee cost", missing=Decimal(0)) == 0 and number("", "fee cost", missing=Decimal(0)) == 0
    assert number(None, "filled", missing=None) is None
    with pytest.raises(UnreadableNumber, match="^fee cost missing$"):
        number(None, "fee cost")
    with pytest.raises(UnreadableNumber, match="^fee cost 'NaN' is not a usable number$"):
        number("NaN", "fee cost", missing=Decimal(0))  # a default is for absence, never for garbage
    assert UnreadableNumber("price", "9" * 500).shown == repr("9" * 32 + "...")  # bounded for an alert line


def test_a_price_or_quantity_must_be_above_zero():
    for raw in ("0", "-1", "-0.00000001", 0, Decimal("-0")):
        with pytest.raises(UnreadableNumber, match="not a positive number"):
            positive(raw, "amount")
    assert positive("0.00000001", "amount") == Decimal("0.00000001")




@pytest.fixture(params=["binance", "bybit"])
async def ccxt_rig(request):
    name = request.param
    emu = await (GarbledBinance if name == "binance" else GarbledBybit)({KEY: SECRET}).start()
    v = VenueSection(name=name, base_url=emu.url, timeouts=TIMEOUTS)
    keys = load_keys(v, "testnet", {f"{name.upper()}_TESTNET_API_KEY": KEY, f"{name.upper()}_TESTNET_API_SECRET": SECRET})
    b = CcxtBroker(v, "testnet", keys, CLOCK, ["BTC/USDT", "ETH/USDT"])
    b.alerts = AlertBus()
    try:
        await b.connect()
        yield name, emu, b
    finally:
        await b.close()
        await emu.stop()



# -- ccxt: fills --------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [("price", v) for v in GARBAGE] + [("amount", v) for v in ("NaN", "-1", "0")])
async def test_a_ccxt_trade_that_cannot_be_read_is_not_booked_and_is_alerted(ccxt_rig, field, value):
    await _unreadable_trade(ccxt_rig, field, value)


# A fee that is there must be read: in the bought asset it decides how much the fill moved. (Bybit's
# trade parser in ccxt refuses a garbled fee itself: the trades read fails, like a venue error.)
@pytest.mark.parametrize("ccxt_rig", ["binance"], indirect=True)
@pytest.mark.parametrize("value", ["abc", "Infinity"])
async def test_a_ccxt_trade_whose_fee_cannot_be_read_is_not_booked(ccxt_rig, value):
    await _unreadable_trade(ccxt_rig, "fee cost", value)


@pytest.mark.parametrize("ccxt_rig", ["binance"], indirect=True)
async def test_a_ccxt_trade_without_a_fee_is_booked_with_no_fee(ccxt_rig):
    name, emu, b = ccxt_rig
    garble_trades(emu, name, "fee cost", MISSING)  # a fee not reported is no fee charged: 0 is its reading
    await b.submit(order("tcN-2-1", Side.BUY, OrderType.MARKET, "0.01", "BTC/USDT"))
    ev = b.drain_events()
    [f] = fills(ev)
    assert (f.fee, f.price, f.quantity) == (0, Decimal("50001"), Decimal("0.01")) and criticals(b.alerts) == []
    assert updates(ev)[-1][:2] == ("tcN-2-1", OrderStatus.FILLED)


async def _unreadable_trade(ccxt_rig, field: str, value) -> None:
    name, emu, b = ccxt_rig
    garble_trades(emu, name, field, value)
    await b.submit(order("tcN-1-1", Side.BUY, OrderType.MARKET, "0.01", "BTC/USDT"))
    ev = b.drain_events()
    assert emu.core.free["BTC"] > 0  # the venue filled it: the difference the operator must reconcile is real
    assert fills(ev) == []
    assert updates(ev) == [("tcN-1-1", OrderStatus.SUBMITTED, "")]  # never reported filled
    [alert] = criticals(b.alerts)
    assert alert.kind == "venue_unreadable_fill" and alert.data["client_order_id"] == "tcN-1-1"
    assert alert.data["field"] == field and alert.data["venue"] == name and alert.data["symbol"] == "BTC/USDT"
    assert f"{field} " in alert.message and name in alert.message and "tcN-1-1" in alert.message
    if value not in (MISSING, ""):
        assert repr(value) in alert.message and alert.data["raw"] == repr(value)
    assert KEY not in alert.message and SECRET not in alert.message

    mine = await b.fetch_order("tcN-1-1")
    assert mine.status is not OrderStatus.FILLED and mine.filled_qty == 0 and mine.avg_fill_price == 0
    await b.poll()  # polling it again books nothing and says it once
    assert b.drain_events() == [] and len(criticals(b.alerts)) == 1

    # The venue may hold more than the engine knows: no entry adds to it until reconciled...
    posts = len([r for r in emu.requests if r.method == "POST"])
    await b.submit(order("tcN-1-2", Side.BUY, OrderType.MARKET, "0.01", "BTC/USDT"))
    [(cid, status, reason)] = updates(b.drain_events())
    assert (cid, status) == ("tcN-1-2", OrderStatus.REJECTED) and "held" in reason and "tcN-1-1" in reason
    assert len([r for r in emu.requests if r.method == "POST"]) == posts  # it never reached the venue
    # ...while a stop still protects, and other symbols trade as before.
    await b.submit(order("tcN-1-3", Side.SELL, OrderType.STOP, "0.001", "BTC/USDT", stop="40000"))
    await b.submit(order("tcN-1-4", Side.BUY, OrderType.LIMIT, "0.01", "ETH/USDT", limit="2900"))
    assert [u[:2] for u in updates(b.drain_events())] == [("tcN-1-3", OrderStatus.SUBMITTED),
                                                          ("tcN-1-4", OrderStatus.SUBMITTED)]


async def test_a_partly_filled_limit_stops_booking_at_the_first_unreadable_trade(ccxt_rig):
    name, emu, b = ccxt_rig
    await b.submit(order("tcN-3-1", Side.BUY, OrderType.LIMIT, "0.02", "BTC/USDT", limit="49000"))
    garble_trades(emu, name, "price", "NaN")
    emu.set_book("BTCUSDT", "48900", "48990")  # through the limit: the venue fills it
    await b.poll()
    assert fills(b.drain_events()) == [] and len(criticals(b.alerts)) == 1
    emu.rules.clear()  # later answers are clean again: still nothing of it is booked, nor its end
    await b.poll()
    assert b.drain_events() == [] and (await b.fetch_order("tcN-3-1")).status is OrderStatus.SUBMITTED


# -- ccxt: order snapshots and balances ---------------------------------------------------------------
def garble_filled(emu, name: str, value) -> None:
    """The venue's answer to an order lookup with its filled quantity garbled."""
    if name == "binance":
        emu.garble("GET", "/api/v3/order", put("executedQty", value))
    for path in ("/v5/order/realtime", "/v5/order/history") if name == "bybit" else ():
        emu.garble("GET", path, lambda b: [put("cumExecQty", value)(o) for o in b["result"]["list"]])


# Some garbage ccxt's own order parser refuses (its string arithmetic cannot take "abc" on Binance):
# the read fails as a venue error. What it lets through, the broker refuses. Either way no order
# with a made-up filled quantity comes out.
@pytest.mark.parametrize("value", ["abc", "NaN", "-1"])
async def test_an_order_read_back_with_an_unreadable_filled_quantity_is_no_order(ccxt_rig, value):
    name, emu, b = ccxt_rig
    # Placed before a restart: the broker does not track it and must read it from the venue.
    emu.core.place("BTCUSDT", "BUY", "LIMIT", "0.01", "40000", None, "tcN-0-9", emu.now_ms())
    garble_filled(emu, name, value)
    with pytest.raises(VenueError) as err:
        await b.fetch_order("tcN-0-9")
    if value == "-1":
        assert f"{name}: order tcN-0-9 (BTC/USDT): filled '-1'" in str(err.value)
    assert "tcN-0-9" not in b._tracks  # nothing adopted


@pytest.mark.parametrize("value", ["abc", "-1"])
async def test_a_finished_order_whose_filled_quantity_is_garbage_is_not_reported_done(ccxt_rig, value):
    name, emu, b = ccxt_rig
    await b.submit(order("tcN-4-1", Side.BUY, OrderType.LIMIT, "0.01", "BTC/USDT", limit="49000"))
    b.drain_events()
    garble_filled(emu, name, value)
    emu.set_book("BTCUSDT", "48900", "48990")
    refused_by_ccxt = False
    try:
        await b.poll()  # its trade is read and booked; then the order's own answer is garbage
    except VenueError:
        refused_by_ccxt = True
    assert all(status is not OrderStatus.FILLED for _, status, _ in updates(b.drain_events()))
    if not refused_by_ccxt:
        [alert] = criticals(b.alerts)
        assert alert.data["field"] == "filled" and f"filled {value!r}" in alert.message
        await b.poll()
        assert updates(b.drain_events()) == []


# ccxt's balance arithmetic refuses "NaN" or "abc" itself; "1e999" it carries, and the broker refuses.
@pytest.mark.parametrize("value", ["NaN", "1e999"])
async def test_a_garbled_balance_of_a_traded_asset_fails_the_read(ccxt_rig, value):
    name, emu, b = ccxt_rig
    emu.core.free["BTC"] = Decimal("0.5")
    if name == "binance":
        emu.garble("GET", "/api/v3/account",
                   lambda body: [put("free", value)(x) for x in body["balances"] if x["asset"] == "BTC"])
    else:
        emu.garble("GET", "/v5/account/wallet-balance",
                   lambda body: [put("walletBalance", value)(c) for c in body["result"]["list"][0]["coin"]
                                 if c["coin"] == "BTC"])
    with pytest.raises(VenueError) as err:
        await b.positions()  # never a position read as 0 (flat), nor as 1e999
    if value == "1e999":
        assert f"{name}: balance: BTC balance '1" in str(err.value)  # ccxt may write it out in digits
