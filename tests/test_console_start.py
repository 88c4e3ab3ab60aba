"""The console's start (bench/startup.py): what it leaves for later must stay left, and what it
does differently to be quick must not change what it produces."""
from __future__ import annotations

import functools
import gc
import json
import subprocess
import sys
from statistics import NormalDist

import pytest
from textual.app import App

import console.cli as cli
from conftest import REPO
from console.app import TradeConsoleApp
from engine.feeds import sim


def test_the_mirrored_normal_table_is_the_inverse_cdf_to_the_last_bit():
    n = 1 << sim._NORMAL_BITS
    direct = [NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)]
    assert [z.hex() for z in sim._NORMAL] == [z.hex() for z in direct]


# What the console's default start imports (console/cli.py run path, the built-in profile, the app).
START = r"""
import json, sys
import console.cli as cli
cli._parser(commands=False)
import engine.headless, engine.config_loader, engine.engine, engine.services, console.app
engine.config_loader.load_profile(None)
print(json.dumps(sorted(sys.modules)))
"""
# Not needed before the first frame: dialogs and full screens (imported after it), the other
# commands, a real venue's wiring, YAML (no profile file).
LATER = ("console.modals", "console.screens", "console.order_form", "console.widgets.choice",
         "console.cli_control", "console.cli_analytics", "console.cli_alerts", "console.cli_stage",
         "engine.venue_wiring", "engine.stages", "yaml")


def test_the_console_start_leaves_what_the_first_screen_does_not_need():
    res = subprocess.run([sys.executable, "-c", START], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    loaded = set(json.loads(res.stdout.strip().splitlines()[-1]))
    assert "console.app" in loaded
    assert sorted(loaded.intersection(LATER)) == []


@pytest.fixture
def collector_on():
    gc.enable()
    yield
    gc.enable()
    gc.unfreeze()


def test_the_start_runs_without_automatic_collection_and_gives_it_back(monkeypatch, collector_on):
    seen = {}

    async def run_async(self, **kwargs):  # the screen is not drawn: the first frame never comes
        seen.update(collecting=gc.isenabled(), paused=self._start_gc_paused)

    monkeypatch.setattr(App, "run_async", run_async)
    assert cli.main(["run"]) == 0
    assert seen == {"collecting": False, "paused": True}
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_failed_start_gives_the_collector_back(tmp_path, collector_on, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["run", "--profile", str(tmp_path / "missing.yaml")])
    assert stopped.value.code == 2 and gc.isenabled()
    assert "no such file" in capsys.readouterr().err


def test_headless_leaves_the_collector_alone(monkeypatch, collector_on):
    seen = {}

    async def headless(*args):
        seen["collecting"] = gc.isenabled()
        return 0

    monkeypatch.setattr(cli, "_headless", headless)
    assert cli.main(["run", "--headless"]) == 0
    assert seen == {"collecting": True}


async def test_collection_resumes_after_the_first_frame_and_is_unfrozen_on_exit(
        make_profile, open_engine, collector_on):
    engine = await open_engine(make_profile(), seed=1)
    app = TradeConsoleApp(engine, exit_when_ready=True, start_gc_paused=True)
    gc.disable()
    async with app.run_test(size=(100, 40)) as pilot:
        while app.is_running:
            await pilot.pause(0.02)
    assert app.snapshots_painted >= 1 and engine.closed
    assert gc.isenabled() and gc.get_freeze_count() == 0


async def test_the_dialogs_are_imported_after_the_first_frame_off_the_loop(make_profile, open_engine, monkeypatch):
    import console.app as app_module

    threads: list = []
    original = TradeConsoleApp._import_dialogs

    @functools.wraps(original)
    def recorded(self):
        threads.append(original(self))
        return threads[-1]

    monkeypatch.setattr(app_module, "DIALOG_IMPORT_DELAY", 0.05)
    monkeypatch.setattr(TradeConsoleApp, "_import_dialogs", recorded)
    engine = await open_engine(make_profile(), seed=1)
    app = TradeConsoleApp(engine, start_engine=False)
    async with app.run_test(size=(100, 40)) as pilot:
        for _ in range(100):
            if threads:
                break
            await pilot.pause(0.02)
        assert app.snapshots_painted >= 1
    (thread,) = threads
    assert thread.name == "dialog-import"
    thread.join(10)
    assert not thread.is_alive()
    assert all(name in sys.modules for name in app_module.DIALOG_MODULES)
