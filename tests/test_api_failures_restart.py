"""The API-failure breaker's window survives a restart: each counted failure is journaled
(`api_failure` row) and a start rebuilds the window from the rows within
`api_failure_window_seconds` of now. Kept in memory only, 4 failures, a restart, and 4 more
inside the 5-in-300 s window never tripped it (audit8 #3): a restart every few failures dodged
the halt.
"""
from __future__ import annotations

from datetime import timedelta

from conftest import build_profile
from engine.clock import SimClock
from engine.engine import Engine
from engine.risk.breakers import BreakerState
from engine.risk.gate import TradingState


def _profile(tmp):
    return build_profile(tmp, symbols=["ETH/USD"], control={"socket": False})


def _api(eng: Engine):
    return next(b for b in eng.breakers if b.name == "api_failures")


async def test_failures_before_a_restart_count_in_the_window_after_it(tmp_path):
    prof = _profile(tmp_path)
    eng = await Engine.open(prof, seed=1)
    for _ in range(4):
        eng.api_failures.record()  # what a venue broker's on_api_failure hook calls
    await eng.journal.flush()
    assert len(await eng.journal.rows(["api_failure"])) == 4
    await eng.close()

    eng = await Engine.open(prof, seed=1)  # its clock continues a minute on: inside the 300 s
    try:
        assert eng.api_failures.count() == 4
        eng.api_failures.record()
        eng._evaluate_breakers(eng.clock.now())
        assert _api(eng).state is BreakerState.TRIPPED
        assert eng.state is TradingState.HALTED
    finally:
        await eng.close()


async def test_failures_older_than_the_window_are_not_counted_again(tmp_path):
    prof = _profile(tmp_path)
    eng = await Engine.open(prof, seed=1)
    start = eng.clock.now()
    for _ in range(4):
        eng.api_failures.record()
    await eng.close()

    window = prof.breakers.api_failure_window_seconds
    eng = await Engine.open(prof, seed=1, clock=SimClock(start + timedelta(seconds=window + 60)))
    try:
        assert len(await eng.journal.rows(["api_failure"])) == 4  # kept, but out of the window
        assert eng.api_failures.count() == 0
    finally:
        await eng.close()


async def test_what_record_is_called_with_is_journaled(tmp_path):
    eng = await Engine.open(_profile(tmp_path), seed=1)
    try:
        eng.api_failures.record("rate_limit", endpoint="orders")
        await eng.journal.flush()
        (row,) = await eng.journal.rows(["api_failure"])
        assert row.data == {"what": ["rate_limit"], "endpoint": "orders"}
    finally:
        await eng.close()
