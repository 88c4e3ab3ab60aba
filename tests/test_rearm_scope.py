"""A re-arm lifts what it is asked to lift and loosens nothing else: a re-arm after the operator's
own halt keeps the losing streak and the drawdown pause's base as they stood, so the fifth loss in a
row still trips consecutive_losses. Re-arming a tripped streak acknowledges it; the rearm row says
what was acknowledged, and a restart after a crash replays exactly that."""
from __future__ import annotations

import sqlite3
from decimal import Decimal as D

from conftest import ANY_READINESS, LOOSE_RISK

from engine.operator import ManualOrderSpec
from engine.risk.breakers import BreakerState
from engine.risk.gate import TradingState


def profile(make_profile):
    return make_profile(symbols=["ETH/USD"], approval={"required": False}, paper={"latency_ms": 0},
                        risk={**LOOSE_RISK, **ANY_READINESS, "max_consecutive_losses": 5,
                              "min_edge": 0.999, "min_confidence": 0.999})  # the strategy stays out


async def losing_round_trip(eng) -> None:
    assert await eng.submit_manual(ManualOrderSpec("ETH/USD", "buy", quantity=D("0.3"))) is None
    await eng.run(duration=3)
    assert await eng.close_position("ETH/USD") is None
    await eng.run(duration=3)


def breaker(eng, name):
    return next(b for b in eng.breakers if b.name == name)


async def crash_after_the_rearm(eng, prof) -> None:
    """Close, then cut the journal back to the rearm row: a kill -9 before the next checkpoint."""
    crash_at = (await eng.journal.last(["rearm"])).seq
    await eng.close()
    db = sqlite3.connect(prof.journal.path)
    db.execute("DELETE FROM events WHERE seq > ?", (crash_at,))
    db.commit()
    db.close()


async def after_losses(make_profile, open_engine, n: int):
    """A fresh engine after `n` losing round trips in a row: (profile, engine)."""
    prof = profile(make_profile)
    eng = await open_engine(prof)
    eng.preroll()
    for _ in range(n):
        await losing_round_trip(eng)
    return prof, eng


async def test_a_rearm_after_the_operators_halt_keeps_the_losing_streak_and_the_pause_base(make_profile, open_engine):
    prof, eng = await after_losses(make_profile, open_engine, 4)
    assert eng.portfolio.consecutive_losses() == 4
    base = eng.portfolio.pause_peak
    await eng.halt("operator", "F12: checking a news item")
    assert eng.state is TradingState.HALTED
    assert await eng.rearm("news checked") is None
    assert eng.portfolio.consecutive_losses() == 4 and eng.portfolio.pause_peak == base
    (row,) = await eng.journal.rows(["rearm"])
    assert row.data["acknowledged"] == []
    await losing_round_trip(eng)
    assert breaker(eng, "consecutive_losses").state is BreakerState.TRIPPED
    assert eng.state is TradingState.REDUCE_ONLY


async def test_a_crash_after_a_rearm_of_the_operators_halt_keeps_the_streak(make_profile, open_engine):
    prof, eng = await after_losses(make_profile, open_engine, 4)
    base = eng.portfolio.pause_peak
    await eng.halt("operator", "F12")
    assert await eng.rearm("looked") is None
    await crash_after_the_rearm(eng, prof)
    again = await open_engine(prof)
    assert again.portfolio.consecutive_losses() == 4
    assert again.portfolio.pause_peak == base


async def test_rearming_a_tripped_streak_acknowledges_it_and_a_restart_replays_only_that(make_profile, open_engine):
    prof, eng = await after_losses(make_profile, open_engine, 5)
    assert breaker(eng, "consecutive_losses").state is BreakerState.TRIPPED
    base = eng.portfolio.pause_peak
    assert await eng.rearm("five losses reviewed") is None
    assert eng.portfolio.consecutive_losses() == 0 and eng.portfolio.pause_peak == base
    (row,) = await eng.journal.rows(["rearm"])
    assert row.data["acknowledged"] == ["consecutive_losses"]
    await crash_after_the_rearm(eng, prof)
    again = await open_engine(prof)
    assert again.portfolio.consecutive_losses() == 0
    assert again.portfolio.pause_peak == base
