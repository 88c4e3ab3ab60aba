"""An engine no signal could stop: a warm-up (preroll) that never ended, on a tick so small the
clock never moved or a warm-up of a billion bars, with SIGINT and SIGTERM logged and ignored.
The schema bounds those fields, and a stop ends the warm-up within a few steps."""
from __future__ import annotations

import os
import signal

import pytest

from engine.config_loader import profile_from_mapping
from engine.headless import run_headless
from test_profile_files import refused

# The longest warm-up the bounds allow: 1001 bars of a day at 100 quotes a second (8.6e9 batches).
LONGEST = {"strategy": {"timeframes": [86_400], "warmup_bars": 1000}, "feed": {"speed": 0, "tick_seconds": 0.01}}
PAST_STOP = 500  # steps a warm-up may still take once asked to stop before the test calls it unstoppable


@pytest.mark.parametrize("text, line", [
    ("feed:\n  tick_seconds: 1e-300\n", "feed.tick_seconds: must be >= 0.01 (got 1e-300)"),
    ("feed:\n  tick_seconds: 0.009\n", "feed.tick_seconds: must be >= 0.01 (got 0.009)"),
    ("strategy:\n  warmup_bars: 1000000000\n", "strategy.warmup_bars: must be <= 1000 (got 1000000000)"),
    ("strategy:\n  timeframes: [10, 86401]\n",
     "strategy.timeframes: every timeframe must be at most 86400 seconds (a day) (got 86401)"),
    ("strategy:\n  timeframes: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n", "strategy.timeframes: at most 10 item(s)"),
])
def test_a_warm_up_that_would_never_end_is_refused(tmp_path, text, line):
    assert refused(tmp_path, text) == [f"{tmp_path / 'p.yaml'}: {line}"]


def test_the_bounds_themselves_are_accepted():
    p = profile_from_mapping({**LONGEST, "strategy": {**LONGEST["strategy"], "timeframes": list(range(1, 10)) + [86_400]}})
    assert (p.feed.tick_seconds, p.strategy.warmup_bars, max(p.strategy.timeframes)) == (0.01, 1000, 86_400)


def counted(eng, stop_after: int, stop):
    """Wrap the feed so the warm-up's batches are counted; `stop` is called after `stop_after` of
    them, and a warm-up still reading PAST_STOP batches later fails the test instead of hanging it."""
    next_batch = eng.feed.next_batch
    seen = {"n": 0}

    def wrapped():
        seen["n"] += 1
        if seen["n"] == stop_after:
            stop()
        assert seen["n"] <= stop_after + PAST_STOP, "the warm-up went on after it was asked to stop"
        return next_batch()

    eng.feed.next_batch = wrapped
    return seen


async def test_a_stop_ends_the_warm_up_in_one_call(make_profile, open_engine):
    eng = await open_engine(make_profile(**LONGEST))
    seen = counted(eng, 5, eng.stop)
    eng.preroll()  # no max_quotes: the whole warm-up at once, as far as a stop allows
    assert seen["n"] == 5 and not eng._prerolled


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_during_the_warm_up_ends_the_run(make_profile, open_engine, sig):
    eng = await open_engine(make_profile(**LONGEST, control={"on_sigterm": "shutdown"}))
    seen = counted(eng, 1000, lambda: os.kill(os.getpid(), sig))  # a few steps of 200 quotes in
    assert await run_headless(eng, duration=1) == 0
    assert 1000 <= seen["n"] <= 1000 + PAST_STOP
    assert not eng._prerolled and eng.closed
