"""The console's go / no-go line: it shows the verdict of engine/analytics/readiness.py measured on
the engine's journal (off the loop, in a child process), the performance key or a click on it
opens the performance screen with every criterion, and a closed trade brings a new check."""
from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

import console.readiness_probe as probe_mod
import console.widgets.readiness as readiness_line
from console.app import TradeConsoleApp
from console.screens import PerformanceScreen
from engine.profile import Profile
from test_analytics_helpers import hand_worked_rows, write_journal
from test_console_frozen import FrozenEngine, frozen_profile, frozen_snapshot, write_log


@pytest.fixture(autouse=True)
def prompt_checks(monkeypatch):
    # At once rather than after the start-up grace, and again as soon as a trade closes.
    monkeypatch.setattr(readiness_line, "START_DELAY", 0.0)
    monkeypatch.setattr(readiness_line, "MIN_GAP", 0.0)
    monkeypatch.delenv("TRADECONSOLE_THEME", raising=False)


def lenient_paper() -> dict:
    """Criteria the hand-worked journal (5 trades over 3 days, +0.596 %, Sharpe 3.6) meets."""
    return {"stages": {"paper": {"min_trades": 5, "min_days": 2, "min_return_pct": "0.5", "min_sharpe": 1.0,
                                 "max_fee_drag_pct": 50}}}


@pytest.fixture
def journal(tmp_path) -> Path:
    """docs/metrics.md's hand-worked journal (written before the app's loop runs)."""
    return write_journal(tmp_path / "paper.sqlite", hand_worked_rows())


def engine_with_journal(tmp_path: Path, journal: Path, readiness: dict | None = None) -> FrozenEngine:
    profile = frozen_profile()
    if readiness is not None:
        profile = Profile.model_validate({**profile.model_dump(), "readiness": readiness})
    engine = FrozenEngine(frozen_snapshot(), write_log(tmp_path), profile)
    engine.journal = SimpleNamespace(path=journal)  # the console reads the engine's own journal
    return engine


async def answered(pilot, checks: int = 1, limit: float = 60.0) -> None:
    line = pilot.app.readiness_line
    until = time.monotonic() + limit
    while line.checks < checks:
        assert time.monotonic() < until, "the readiness check never answered"
        await pilot.pause(0.05)
    await pilot.pause()


async def test_the_line_shows_the_verdict_and_the_key_opens_the_criteria(tmp_path, journal):
    app = TradeConsoleApp(engine_with_journal(tmp_path, journal, lenient_paper()), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        line = app.readiness_line
        assert "checking" in line.text  # the first screen does not wait for the journal
        await answered(pilot)
        assert line.verdict["verdict"] == "GO" and (line.verdict["passed"], line.verdict["total"]) == (10, 10)
        assert "go/no-go paper" in line.text and "GO" in line.text and "10/10" in line.text and "m▸" in line.text

        await pilot.press("m")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PerformanceScreen)
        table = screen.criteria.content
        labels = [str(c) for c in table.columns[1].cells]
        assert labels[:3] == ["closed trades", "time trading", "return after fees"]
        assert next(str(c) for c in table.columns[2].cells) == "5"  # measured trades
        assert "GO" in str(table.title) and "10/10 criteria pass" in str(table.title)


async def test_a_click_on_the_line_opens_the_performance_screen(tmp_path, journal):
    app = TradeConsoleApp(engine_with_journal(tmp_path, journal), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await answered(pilot)
        line = app.readiness_line
        assert line.verdict["verdict"] == "NO-GO" and "NO-GO" in line.text  # default paper criteria: 100 trades
        failed = [c["name"] for c in line.verdict["criteria"] if not c["passed"]]
        assert "trades" in failed and "days" in failed
        await pilot.click("#readiness")
        await pilot.pause()
        assert isinstance(app.screen, PerformanceScreen)
        assert "NO-GO" in str(app.screen.criteria.content.title)


async def test_the_keymap_decides_the_key_the_line_names(tmp_path, journal):
    engine = engine_with_journal(tmp_path, journal)
    engine.profile = engine.profile.model_copy(update={"keys": {"performance": "f9"}})
    app = TradeConsoleApp(engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await answered(pilot)
        assert "f9▸" in app.readiness_line.text
        await pilot.press("f9")
        await pilot.pause()
        assert isinstance(app.screen, PerformanceScreen)


async def test_a_closed_trade_brings_a_new_check(tmp_path, journal):
    engine = engine_with_journal(tmp_path, journal)
    app = TradeConsoleApp(engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await answered(pilot)
        await pilot.pause(0.5)
        assert app.readiness_line.checks == 1  # ticks alone start nothing
        perf = engine.snap.performance
        engine.snap = replace(engine.snap, performance=replace(perf, trades=perf.trades + 1))
        await answered(pilot, checks=2)


async def test_without_criteria_or_journal_the_line_says_why(tmp_path, journal):
    app = TradeConsoleApp(engine_with_journal(tmp_path, journal, {"stages": {}}), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await answered(pilot)
        assert "no readiness criteria for stage paper" in app.readiness_line.text
        await pilot.press("m")
        await pilot.pause()
        assert "no readiness criteria" in str(app.screen.criteria.content)

    missing = engine_with_journal(tmp_path, tmp_path / "none.sqlite")
    app = TradeConsoleApp(missing, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await answered(pilot)
        assert "no journal" in app.readiness_line.text

    frozen = FrozenEngine(frozen_snapshot(), write_log(tmp_path))  # an engine with no journal at all
    app = TradeConsoleApp(frozen, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        assert app.readiness_line.text.endswith("no journal") and app.readiness_line.checks == 0


async def test_a_check_cut_short_reaps_its_child(monkeypatch):
    # The console quitting cancels a check mid-way: its child must be killed and waited for, not
    # left to the garbage collector after the loop that owns its pipes has closed.
    started: list[asyncio.subprocess.Process] = []
    real_exec = asyncio.create_subprocess_exec

    async def slow_child(*args, **kw):
        proc = await real_exec(sys.executable, "-c", "import time; time.sleep(30)", **kw)
        started.append(proc)
        return proc

    monkeypatch.setattr(probe_mod.asyncio, "create_subprocess_exec", slow_child)
    checking = asyncio.get_running_loop().create_task(probe_mod.Probe().ask(frozen_profile(), "unused.sqlite"))
    for _ in range(200):  # bounded: 10 s for the child to start
        if started:
            break
        await asyncio.sleep(0.05)
    checking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await checking
    (proc,) = started
    assert proc.returncode is not None, "the child was left running or unreaped"


@pytest.mark.parametrize("child, error", [("import time; time.sleep(30)", "took over 0.5 s"),
                                          ("raise SystemExit(3)", "without an answer (exit 3)")])
async def test_a_check_with_no_answer_names_the_stage_promote_would_judge(monkeypatch, child, error):
    """A paper profile rehearsing testnet caps is judged at paper (as `promote` judges it): the
    line for a check that never answered must not name testnet."""
    real_exec = asyncio.create_subprocess_exec

    async def child_process(*args, **kw):
        return await real_exec(sys.executable, "-c", child, **kw)

    monkeypatch.setattr(probe_mod.asyncio, "create_subprocess_exec", child_process)
    answer = await probe_mod.Probe().ask(frozen_profile("paper", stage="testnet"), "unused.sqlite", timeout=0.5)
    assert answer["stage"] == "paper" and error in answer["error"]
