"""Breakers through the engine: a day breaker resets at the venue's midnight, a re-arm breaker
survives a restart (its state is in the journal's checkpoint, not only in memory)."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from engine.engine import Engine
from engine.profile import Profile
from engine.risk.breakers import BreakerState
from engine.risk.gate import TradingState


def profile(tmp_path, **kw) -> Profile:
    base = dict(journal={"path": str(tmp_path / "b.sqlite")}, feed={"speed": 0},
                approval={"required": False}, venue={"timezone": "America/New_York"})
    return Profile(**(base | kw))


def breaker(eng: Engine, name: str):
    return next(b for b in eng.breakers if b.name == name)


async def test_daily_breaker_resets_at_the_venue_midnight_not_utc(tmp_path):
    from engine.clock import SimClock

    # hourly quotes from 10:00 New York time on the 5th (15:00 UTC)
    prof = profile(tmp_path, feed={"speed": 0, "tick_seconds": 3600})
    eng = await Engine.open(prof, seed=1, clock=SimClock(datetime(2026, 1, 5, 15, tzinfo=timezone.utc)))
    try:
        await eng.run(duration=3600)
        b = breaker(eng, "daily_loss")
        b.restore(BreakerState.TRIPPED)
        eng._apply_breaker_state()
        assert eng.state is TradingState.REDUCE_ONLY
        # past midnight UTC, still evening in New York: the same venue day
        while eng.clock.now() < datetime(2026, 1, 6, 1, tzinfo=timezone.utc):
            await eng.run(duration=3600)
        assert eng.clock.now().astimezone(eng.portfolio.tz).day == 5
        assert b.state is BreakerState.TRIPPED and eng.state is TradingState.REDUCE_ONLY
        while eng.clock.now() < datetime(2026, 1, 6, 6, tzinfo=timezone.utc):
            await eng.run(duration=3600)
        assert b.state is not BreakerState.TRIPPED
        assert eng.state is TradingState.ACTIVE
        rows = await eng.journal.rows(kinds=["breaker"], ref="daily_loss")
        assert rows[-1].data["reset"] == "day"
    finally:
        await eng.close()


async def test_a_tripped_rearm_breaker_survives_a_restart(tmp_path):
    eng = await Engine.open(profile(tmp_path), seed=1)
    await eng.run(duration=120)
    eng.portfolio.closed_trades.extend([Decimal("-1")] * 5)  # five losses in a row
    await eng.run(duration=120)
    assert breaker(eng, "consecutive_losses").state is BreakerState.TRIPPED
    assert eng.state is TradingState.REDUCE_ONLY
    await eng.close()

    again = await Engine.open(profile(tmp_path), seed=2)
    try:
        assert breaker(again, "consecutive_losses").state is BreakerState.TRIPPED
        assert again.state is TradingState.REDUCE_ONLY
        assert await again.rearm("reviewed the losing streak") is None
        assert again.state is TradingState.ACTIVE
    finally:
        await again.close()


async def test_a_warning_is_not_alerted_again_after_a_restart(tmp_path):
    eng = await Engine.open(profile(tmp_path), seed=1)
    await eng.run(duration=120)
    eng.portfolio.closed_trades.extend([Decimal("-1")] * 3)  # 3 of 5: warning (60 %)
    await eng.run(duration=120)
    assert breaker(eng, "consecutive_losses").state is BreakerState.WARNING
    warned = [a for a in eng.snapshot().alerts if "consecutive" in a.message]
    assert len(warned) == 1
    await eng.close()

    again = await Engine.open(profile(tmp_path), seed=2)
    try:
        assert breaker(again, "consecutive_losses").state is BreakerState.WARNING
        await again.run(duration=120)
        assert breaker(again, "consecutive_losses").state is BreakerState.WARNING
        assert not [a for a in again.snapshot().alerts if "consecutive" in a.message]  # the same crossing
        again.portfolio.closed_trades.append(Decimal("-1"))  # 4 of 5: a new crossing, critical (80 %)
        await again.run(duration=120)
        assert breaker(again, "consecutive_losses").state is BreakerState.CRITICAL
        assert len([a for a in again.snapshot().alerts if "consecutive" in a.message]) == 1
    finally:
        await again.close()
