"""Shared fixtures: profiles built in code, engines on a seeded simulated market, a data dir in tmp.

Every test runs with TRADECONSOLE_HOME pointed at its own tmp directory, so nothing ever writes
to the user's home. Engines run flat out (`feed.speed: 0`) in simulated time.
"""
from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from engine.engine import Engine
from engine.profile import Profile, RiskLimits

REPO = Path(__file__).resolve().parents[1]

# Throttles loosened so a few simulated hours give enough round trips to test with; every other
# limit keeps its conservative default.
LOOSE_RISK: dict[str, Any] = {
    "max_trades_per_day": 500,
    "max_trades_per_hour": 100,
    "min_seconds_between_trades": 0,
    "max_consecutive_losses": 100,
}
# Newer position-count throttles, where the schema has them.
for _key, _value in (("max_new_positions_per_day", 400), ("max_new_positions_per_week", 2000)):
    if _key in RiskLimits.model_fields:
        LOOSE_RISK[_key] = _value

# Every strategy readiness state, for tests that place orders before any warm-up (where the
# schema gates on readiness at all).
ANY_READINESS: dict[str, Any] = (
    {"allowed_readiness": ["ready", "forming", "not_ready"]} if "allowed_readiness" in RiskLimits.model_fields else {}
)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def build_profile(tmp: Path, name: str = "j", **sections: Any) -> Profile:
    """A profile whose journal and log live in `tmp`; sections are merged over the test base."""
    base: dict[str, Any] = {
        "journal": {"path": str(tmp / f"{name}.sqlite")},
        "logging": {"path": str(tmp / f"{name}.log")},
        "feed": {"speed": 0},
        "approval": {"required": False},
    }
    return Profile.model_validate(deep_merge(base, sections))


@pytest.fixture(autouse=True)
def tradeconsole_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Redirect the default data dir so no test touches ~."""
    home = tmp_path / "home"
    monkeypatch.setenv("TRADECONSOLE_HOME", str(home))
    return home


@pytest.fixture
def make_profile(tmp_path: Path) -> Callable[..., Profile]:
    def make(name: str = "j", **sections: Any) -> Profile:
        return build_profile(tmp_path, name, **sections)

    return make


@pytest.fixture
async def open_engine() -> Any:
    """`await open_engine(profile, seed=3)`; every engine opened this way is closed afterwards."""
    opened: list[Engine] = []

    async def opener(profile: Profile, seed: int = 3, **kw: Any) -> Engine:
        eng = await Engine.open(profile, seed=seed, **kw)
        opened.append(eng)
        return eng

    yield opener
    for eng in opened:
        await eng.close()


async def run_until(engine: Engine, pred: Callable[[], bool], *, step: float = 10,
                    limit: float = 8 * 3600, between: Callable[[], Awaitable[None]] | None = None) -> float:
    """Run simulated time in `step`-second slices until `pred()` holds; returns the time it took.

    Fails the test if `limit` simulated seconds pass first."""
    spent = 0.0
    while not pred():
        if spent >= limit:
            pytest.fail(f"condition not reached within {limit} simulated seconds")
        await engine.run(duration=step)
        spent += step
        if between is not None:
            await between()
    return spent


def cli_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TRADECONSOLE_HOME"] = str(home)
    env.pop("TRADECONSOLE_EXIT_WHEN_READY", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "console", *args]


def signed(side: str, qty: Decimal) -> Decimal:
    return qty if side == "buy" else -qty
