"""A lone bad print does not move equity, so it cannot trip the loss or drawdown breakers; a new
level that holds (a gap) does, as soon as the spike filter takes it as the reference price."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal as D

from conftest import ANY_READINESS, LOOSE_RISK, run_until
from engine.operator import ManualOrderSpec
from engine.tracking import GAP_CONFIRM_QUOTES


async def test_equity_ignores_a_lone_spike_and_follows_a_gap_that_holds(make_profile, open_engine):
    prof = make_profile(approval={"required": False}, risk={**LOOSE_RISK, **ANY_READINESS, "max_price_jump_pct": 2})
    eng = await open_engine(prof, seed=5)
    eng.strategy.on_quote = lambda q, pos: None
    await eng.run(duration=30)
    assert await eng.submit_manual(ManualOrderSpec("BTC/USD", "buy", risk_usd=D(20))) is None
    await run_until(eng, lambda: "BTC/USD" in eng.portfolio.positions and eng.orders.stop_order("BTC/USD"), step=2)
    pos = eng.portfolio.positions["BTC/USD"]
    calm = eng.quotes["BTC/USD"]
    marked, equity = pos.last_price, eng.portfolio.equity
    t = eng.clock.now()

    async def quote_at(factor: str):
        nonlocal t
        t += timedelta(seconds=1)
        eng.clock.set(t)
        await eng.on_batch([replace(calm, ts=t, bid=calm.bid * D(factor), ask=calm.ask * D(factor))])

    # 3 % under, past the 2 % jump band, for one quote, then back: equity never saw it.
    await quote_at("0.97")
    assert (pos.last_price, eng.portfolio.equity) == (marked, equity)
    await quote_at("1")
    assert (pos.last_price, eng.portfolio.equity) == (marked, equity)
    # Inside the band is an ordinary move, marked at once.
    await quote_at("0.99")
    assert pos.last_price == calm.bid * D("0.99") and eng.portfolio.equity < equity
    await quote_at("1")
    assert (pos.last_price, eng.portfolio.equity) == (marked, equity)

    # The same drop, held: taken on its GAP_CONFIRM_QUOTES-th quote, and equity falls with it.
    for _ in range(GAP_CONFIRM_QUOTES - 1):
        await quote_at("0.97")
        assert pos.last_price == marked
    await quote_at("0.97")
    assert pos.last_price == calm.bid * D("0.97")
    assert eng.portfolio.equity == equity - pos.quantity * (marked - calm.bid * D("0.97"))
    assert "BTC/USD" in eng.portfolio.positions  # the default 8 % stop is further down
