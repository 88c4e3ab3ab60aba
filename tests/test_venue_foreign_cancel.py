"""Cancelling an order the broker does not track (from before a restart: a halt's sweep, a
reconciliation answer) adopts it from the venue and cancels it: what it had filled before is
someone else's to book (the journal's, or reconciliation's), so its end books no earlier trade."""
from __future__ import annotations

from decimal import Decimal

import pytest
from venue_faults_support import fills, updates, venue

from engine.models import OrderStatus


@pytest.mark.parametrize("name", ["binance", "bybit"])
async def test_a_foreign_order_cancelled_books_none_of_its_earlier_trades(name):
    async with venue(name) as (emu, broker):
        o = emu.core.place("BTCUSDT", "BUY", "LIMIT", Decimal("0.02"), Decimal("40000"), cid="tcOLD-1")
        emu.core._fill(o, Decimal("0.01"), o.price, maker=True)  # filled in half before the restart
        assert await broker.cancel("tcOLD-1") is True
        events = broker.drain_events()
        assert [u.status for u in updates(events)] == [OrderStatus.CANCELLED]
        assert fills(events) == []  # the half that filled is the journal's already, never booked again
        assert emu.core.by_cid["tcOLD-1"].status == "CANCELED"
