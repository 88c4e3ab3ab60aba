"""A submit whose outcome was unknown and that the venue took late (audit9 F2).

* A market order (or a limit the last quote crosses) is never sent a second time after an
  ambiguous failure: a copy sent while the first is still queued could trade beside it (Binance
  refuses a reused client id among open orders only). It stays unconfirmed; the poller finds it.
* A re-send the venue refuses because the client id is taken (Binance -2010 "Duplicate order sent",
  Bybit 170141, Alpaca 422 "client_order_id must be unique") means the first copy landed: it is
  looked up and tracked, never reported REJECTED.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from engine.brokers.retry import Failure, VenueError
from engine.models import OrderStatus, OrderType, Quote
from venue_faults_support import (LOOKUPS, POST, RESTING, fills, order, poll_until_quiet, updates, venue, venue_bought,
                                  venue_order)

ALL = ["binance", "bybit", "alpaca"]
# The venue takes the order after the client gave up on it (request timeout 0.5 s); each lookup
# answers "no such order" at once (it is not there yet) but 0.3 s late, so a re-send arrives
# after the first copy landed: Bybit looks in two places (open, then history).
LATE = {"binance": 0.65, "bybit": 0.95, "alpaca": 0.65}


def _late_first_copy(name: str, emu) -> None:
    emu.fault("POST", POST[name], "slow", delay=LATE[name], process=False)
    for path in LOOKUPS[name]:
        emu.fault("GET", path, "slow", delay=0.3, process=True)


@pytest.mark.parametrize("name", ALL)
async def test_a_market_order_taken_late_is_never_sent_again_and_is_booked(name):
    async with venue(name, request_seconds=0.5) as (emu, b):
        _late_first_copy(name, emu)
        await b.submit(order(name, "tcR-1-1", OrderType.MARKET))
        ev = b.drain_events()
        assert updates(ev, OrderStatus.REJECTED) == []
        ev += await poll_until_quiet(b)
        assert emu.count("POST", POST[name]) == 1  # one copy only, ever
        assert venue_order(emu, "tcR-1-1").status == "FILLED"
        assert [u.status for u in updates(ev)] == [OrderStatus.SUBMITTED, OrderStatus.FILLED]
        assert sum(f.quantity for f in fills(ev)) == venue_bought(name, emu, "tcR-1-1") > 0


@pytest.mark.parametrize("name", ["binance", "bybit"])
async def test_a_limit_the_last_quote_crosses_is_never_sent_again(name):
    async with venue(name, request_seconds=0.5) as (emu, b):
        b.on_quote(Quote("BTC/USDT", datetime.now(timezone.utc), Decimal(49990), Decimal(50000), Decimal(1),
                         Decimal(1), Decimal(49995)))
        _late_first_copy(name, emu)
        await b.submit(order(name, "tcR-2-1", OrderType.LIMIT, "50100"))
        assert updates(b.drain_events(), OrderStatus.REJECTED) == []
        ev = await poll_until_quiet(b)
        assert emu.count("POST", POST[name]) == 1
        assert sum(f.quantity for f in fills(ev)) == venue_bought(name, emu, "tcR-2-1") > 0


@pytest.mark.parametrize("name", ALL)
async def test_a_resend_refused_as_a_duplicate_is_looked_up_not_rejected(name):
    async with venue(name, request_seconds=0.5) as (emu, b):
        _late_first_copy(name, emu)
        await b.submit(order(name, "tcR-3-1", OrderType.LIMIT, RESTING[name]))  # rests: safe to send again
        ev = b.drain_events() + await _settle(b)
        assert emu.count("POST", POST[name]) == 2 and len(emu.core.orders) == 1  # the second refused
        assert updates(ev, OrderStatus.REJECTED) == []
        assert [u.status for u in updates(ev)] == [OrderStatus.SUBMITTED]
        assert venue_order(emu, "tcR-3-1").status == "NEW" and "tcR-3-1" in b._working


async def _settle(b, rounds: int = 5) -> list:
    ev: list = []
    for _ in range(rounds):
        await b.poll()
        ev += b.drain_events()
        if all(b._tracks[c].unconfirmed_since is None for c in b._working):
            break
    return ev


@pytest.mark.parametrize("text, ccxt, alpaca", [
    ('InvalidOrder: binance {"code": -2010, "msg": "Duplicate order sent."}', True, False),
    ('InvalidOrder: bybit {"retCode": 170141, "retMsg": "Duplicate clientOrderId."}', True, False),
    ('HTTP 422: {"code": 40010001, "message": "client_order_id must be unique"}', False, True),
    ('InsufficientFunds: binance {"code": -2010, "msg": "Account has insufficient balance"}', False, False),
])
def test_duplicate_client_id_refusals_are_recognised(text, ccxt, alpaca):
    from engine.brokers.alpaca_errors import is_duplicate_id as alpaca_duplicate
    from engine.brokers.ccxt_errors import is_duplicate_id as ccxt_duplicate

    err = VenueError(Failure.FINAL, text)
    assert (ccxt_duplicate(err), alpaca_duplicate(err)) == (ccxt, alpaca)
