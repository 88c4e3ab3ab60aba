"""A `tradeconsole halt` that lands while the engine is starting (after Engine.open read the latch
as armed, before the control service took over) is carried out as a halt, not only shown: the
entries the start restored are cancelled (stops kept), a critical alert says so, and the market
trading through the entry's limit afterwards fills nothing."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from conftest import ANY_READINESS, LOOSE_RISK

from engine.control import service as control_service
from engine.control.offline import offline_halt
from engine.control.service import start_control
from engine.engine import Engine
from engine.manual import ManualOrderSpec
from engine.models import OrderPurpose, Quote
from engine.risk.gate import TradingState
from engine.strategy.base import Strategy

RISK = {**LOOSE_RISK, "min_edge": 0, "min_confidence": 0, "max_single_trade_loss_usd": 1000,
        "max_position_pct": 30, "max_symbol_exposure_pct": 30, "max_book_fraction": 10,
        "max_volume_fraction": 1, "risk_per_trade_pct": 5, **ANY_READINESS}


class Quiet(Strategy):
    name = "quiet"

    def on_quote(self, quote, position_qty):
        return None


@pytest.fixture(autouse=True)
def quick_lock(monkeypatch):
    monkeypatch.setattr(control_service, "LOCK_WAIT", 0.2)


async def push(eng, symbol, bid, ask):
    eng.clock.set(eng.clock.now() + timedelta(seconds=1))
    q = Quote(symbol, eng.clock.now(), D(bid), D(ask), D(1000), D(1000), (D(bid) + D(ask)) / 2, D(100000))
    await eng.on_batch([q])


async def test_halt_latched_while_starting_cancels_the_restored_entries_and_keeps_the_stop(make_profile):
    profile = make_profile(risk=RISK, symbols=["BTC/USD", "ETH/USD"], sizing={"max_order_usd": 3000},
                           orders={"limit_timeout_seconds": 3600}, paper={"latency_ms": 0},
                           control={"socket": False})
    eng = await Engine.open(profile, seed=1)
    try:
        eng.strategy = Quiet()
        eng.preroll()
        await eng.run(duration=5)
        assert await eng.submit_manual(ManualOrderSpec("BTC/USD", "buy", quantity=D("0.01"), type="market")) is None
        await eng.run(duration=2)
        below = (eng.quotes["ETH/USD"].bid * D("0.985")).quantize(D("0.01"))
        assert await eng.submit_manual(ManualOrderSpec("ETH/USD", "buy", quantity=D("0.1"), type="limit",
                                                       limit_price=below)) is None
        await eng.run(duration=2)
        (entry,) = [c for c, o in eng.orders.working.items() if o.purpose is OrderPurpose.ENTRY]
        stops = {c for c, o in eng.orders.working.items() if o.purpose is OrderPurpose.STOP}
        assert stops
    finally:
        await eng.close()

    eng = await Engine.open(profile, seed=2)  # reads the latch: armed
    svc = None
    try:
        eng.strategy = Quiet()
        assert eng.state is TradingState.ACTIVE and entry in eng.orders.working
        trips = eng.trips
        await offline_halt(profile, "3am: halt now")  # the CLI found no socket yet
        svc = await start_control(eng)  # picks the latch up
        assert eng.state is TradingState.HALTED and "3am: halt now" in eng.halt_reason
        assert eng.trips == trips + 1
        assert entry not in eng.orders.working
        assert entry not in {o.client_order_id for o in await eng.broker.open_orders()}
        assert stops <= set(eng.orders.working)  # the position keeps its stop
        assert any(a.severity == "critical" and a.kind == "halt" for a in eng.alerts.recent())
        # The market trades through the old limit: nothing fills.
        await push(eng, "ETH/USD", below * D("0.99"), below * D("0.995"))
        await push(eng, "ETH/USD", below * D("0.99"), below * D("0.995"))
        assert await eng.journal.rows(["fill"], ref=entry) == []
        assert "ETH/USD" not in eng.portfolio.positions
    finally:
        if svc is not None:
            await svc.stop()
        await eng.close()
