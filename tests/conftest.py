"""Shared fixtures: profiles built in code, engines on a seeded simulated market, a data dir in tmp.

Every test runs with TRADECONSOLE_HOME pointed at its own tmp directory, so nothing ever writes
to the user's home. Engines run flat out (`feed.speed: 0`) in simulated time.
"""
from __future__ import annotations

import os
import re
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


# -- the suite-wide secret scan -----------------------------------------------------------------
# Venue tests hold their fake keys in module constants with these names. After the whole suite,
# every file the program wrote under pytest's temp tree (journals and their WAL, logs, paper
# venue books, reports) and every test's captured output and log are searched for those values.
# Profiles a test wrote on purpose (YAML with a pasted key, to prove it is refused) are inputs,
# not output, and are skipped.
SECRET_CONSTANTS = re.compile(r"^(LIVE_)?(KEY|SECRET)$|^(TK|TS|LK|LS)$")
INPUT_SUFFIXES = {".yaml", ".yml", ".py"}
_captured: list[tuple[str, str]] = []


def _test_secrets() -> dict[str, str]:
    found: dict[str, str] = {}
    for name, mod in list(sys.modules.items()):
        if not (name.startswith("test_") or name.startswith("tests.")):
            continue
        for attr, value in vars(mod).items():
            if SECRET_CONSTANTS.match(attr) and isinstance(value, str) and len(value) >= 12:
                found[value] = f"{name}.{attr}"
    return found


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    text = "\n".join(content for _, content in report.sections)
    if report.longrepr is not None:
        text += "\n" + str(report.longrepr)
    if text.strip():
        _captured.append((report.nodeid, text))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    secrets = _test_secrets()
    if not secrets:
        return
    leaks: list[str] = []
    for nodeid, text in _captured:
        leaks += [f"{where} in the output of {nodeid}" for value, where in secrets.items() if value in text]
    factory = getattr(session.config, "_tmp_path_factory", None)
    roots = [Path(factory.getbasetemp())] if factory is not None and factory._basetemp is not None else []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or path.suffix in INPUT_SUFFIXES:
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            leaks += [f"{where} in {path}" for value, where in secrets.items() if value.encode() in data]
    if leaks:
        # Names and places only: the report itself must not print a secret.
        session.config.get_terminal_writer().line(
            "secret scan: test keys reached written output:\n  " + "\n  ".join(sorted(set(leaks))), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
