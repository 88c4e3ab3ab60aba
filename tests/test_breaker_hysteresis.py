"""Breaker hysteresis: a level is raised the moment the ratio reaches its threshold, and left only
once the ratio is HYSTERESIS (5 points) below it (for the level the ratio is then in), so a loss hovering at 60 % or 80 % alerts once
per real crossing (docs/alerts.md), not on every other evaluation. Tripped day/week/re-arm
breakers still hold until their reset; the stale-data breaker clears below the margin too."""
from __future__ import annotations

from decimal import Decimal as D

from engine.engine import Engine
from engine.profile import Profile
from engine.risk.breakers import HYSTERESIS, Breaker, BreakerState

A, W, C, T = BreakerState.ARMED, BreakerState.WARNING, BreakerState.CRITICAL, BreakerState.TRIPPED
LIMIT = D(200)


def walk(ratios: list[str], reset: str = "day", start: BreakerState = A) -> list[BreakerState]:
    """The breaker's state after each evaluation, its ratio fed in turn."""
    feed = iter(ratios)
    b = Breaker("daily_loss", "block", "usd", reset, lambda: (D(next(feed)) * LIMIT, LIMIT))
    b.restore(start)
    out = []
    for _ in ratios:
        b.evaluate()
        out.append(b.state)
    return out


def test_the_margin_is_five_points():
    assert HYSTERESIS == D("0.05")


def test_a_level_is_raised_at_its_threshold_not_before():
    assert walk(["0.5999", "0.6", "0.7999", "0.8", "0.9999", "1"]) == [A, W, W, C, C, T]


def test_warning_is_left_only_five_points_below_sixty():
    assert walk(["0.6", "0.5999", "0.5501", "0.55", "0.5499"]) == [W, W, W, W, A]


def test_critical_is_left_below_seventy_five_for_the_level_the_ratio_is_in():
    assert walk(["0.8", "0.7501", "0.75", "0.7499"]) == [C, C, C, W]
    assert walk(["0.8", "0.5999"]) == [C, A]  # a fall past sixty lands at armed
    assert walk(["0.8", "0.5999", "0.6"]) == [C, A, W]  # and coming back is a crossing


def test_a_loss_hovering_at_a_threshold_changes_state_once():
    assert walk(["0.599", "0.601"] * 10) == [A] + [W] * 19
    assert walk(["0.799", "0.801"] * 10, start=W) == [W] + [C] * 19


def test_a_real_fall_and_rise_crosses_again():
    assert walk(["0.61", "0.54", "0.6"]) == [W, A, W]


def test_a_tripped_day_breaker_holds_whatever_the_ratio():
    assert walk(["1", "0", "0.5"]) == [T, T, T]


def test_a_self_clearing_breaker_clears_below_the_margin():
    assert walk(["1", "0.9999", "0.95", "0.9499"], reset="auto") == [T, T, T, C]
    assert walk(["1", "0"], reset="auto") == [T, A]


def profile(tmp_path) -> Profile:
    return Profile(journal={"path": str(tmp_path / "h.sqlite")}, feed={"speed": 0}, approval={"required": False})


def feed_daily_loss(eng: Engine, ratios: list[str]) -> None:
    b = next(b for b in eng.breakers if b.name == "daily_loss")
    feed = iter(ratios)
    b.measure = lambda: (D(next(feed)) * LIMIT, LIMIT)
    for _ in ratios:
        eng._evaluate_breakers(eng.clock.now())


async def test_hovering_at_eighty_pins_one_critical_alert_not_one_per_crossing(tmp_path):
    eng = await Engine.open(profile(tmp_path), seed=3)
    try:
        got = []
        eng.alerts.subscribe(lambda a: got.append(a) if a.kind == "breaker" else None)
        feed_daily_loss(eng, ["0.599", "0.601"] * 10)
        assert [a.severity for a in got] == ["warning"]
        pinned = len(eng.pinned_alerts())
        feed_daily_loss(eng, ["0.799", "0.801"] * 10)
        assert [a.severity for a in got] == ["warning", "critical"]
        assert len(eng.pinned_alerts()) == pinned + 1
        rows = await eng.journal.rows(kinds=["breaker"], ref="daily_loss")
        assert [(r.data["old"], r.data["new"]) for r in rows] == [("armed", "warning"), ("warning", "critical")]
    finally:
        await eng.close()


async def test_the_day_reset_still_arms_and_a_new_day_warns_afresh(tmp_path):
    eng = await Engine.open(profile(tmp_path), seed=3)
    try:
        got = []
        eng.alerts.subscribe(lambda a: got.append(a) if a.kind == "breaker" else None)
        feed_daily_loss(eng, ["0.85"])
        eng.new_period("day")
        b = next(b for b in eng.breakers if b.name == "daily_loss")
        assert b.state is A
        feed_daily_loss(eng, ["0.58", "0.6"])
        assert [a.severity for a in got] == ["critical", "warning"]
    finally:
        await eng.close()


async def test_a_warning_restored_at_restart_keeps_its_margin(tmp_path):
    eng = await Engine.open(profile(tmp_path), seed=3)
    feed_daily_loss(eng, ["0.61"])
    await eng.close()

    again = await Engine.open(profile(tmp_path), seed=4)
    try:
        b = next(b for b in again.breakers if b.name == "daily_loss")
        assert b.state is W
        got = []
        again.alerts.subscribe(lambda a: got.append(a) if a.kind == "breaker" else None)
        feed_daily_loss(again, ["0.58", "0.61", "0.56"])
        assert b.state is W and got == []
        feed_daily_loss(again, ["0.5499"])
        assert b.state is A
    finally:
        await again.close()
