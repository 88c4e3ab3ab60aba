"""`tradeconsole run --no-mouse --theme NAME`: the console's switches from the command line, the
same as TRADECONSOLE_NO_MOUSE and TRADECONSOLE_THEME, the flag winning over the environment; and
`--duration`, which the console honours as headless does."""
from __future__ import annotations

import pytest
from textual.app import App

import console.cli as cli
from console.app import TradeConsoleApp


@pytest.fixture
def started(monkeypatch):
    """Runs `tradeconsole run ...` in-process with a real engine; the screen itself is not drawn:
    records the mouse switch Textual was given and the theme the app took."""
    seen: dict = {}

    async def run_async(self, *, mouse=True, **kwargs):
        seen.update(mouse=mouse, theme=self.theme, app=type(self))
        if self.duration is not None:
            seen["duration"] = self.duration

    monkeypatch.setattr(App, "run_async", run_async)
    monkeypatch.delenv("TRADECONSOLE_NO_MOUSE", raising=False)
    monkeypatch.delenv("TRADECONSOLE_THEME", raising=False)
    return seen


def test_flags_reach_the_console(started):
    assert cli.main(["run", "--no-mouse", "--theme", "ansi"]) == 0
    assert started == {"mouse": False, "theme": "ansi-dark", "app": TradeConsoleApp}


def test_without_flags_the_mouse_is_on_and_the_theme_is_textuals(started):
    assert cli.main(["run"]) == 0
    assert started["mouse"] is True and started["theme"] == "textual-dark"


def test_a_flag_wins_over_the_environment(started, monkeypatch):
    monkeypatch.setenv("TRADECONSOLE_THEME", "ansi-light")
    assert cli.main(["run", "--theme", "nord"]) == 0
    assert started["theme"] == "nord"
    monkeypatch.setenv("TRADECONSOLE_NO_MOUSE", "1")
    assert cli.main(["run"]) == 0
    assert started["mouse"] is False and started["theme"] == "ansi-light"


@pytest.mark.parametrize("args, fragment", [
    (["--theme", "neon"], "--theme: unknown theme 'neon'; try ansi"),
    (["--headless", "--no-mouse"], "--no-mouse and --theme are for the console"),
    (["--headless", "--theme", "ansi"], "--no-mouse and --theme are for the console"),
])
def test_bad_flags_are_one_line_and_open_nothing(started, capsys, tradeconsole_home, args, fragment):
    assert cli.main(["run", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert started == {} and not tradeconsole_home.exists()


def test_duration_reaches_the_console(started):
    assert cli.main(["run", "--duration", "90s"]) == 0
    assert started["duration"] == 90.0


async def test_the_console_stops_the_engine_after_its_duration(make_profile, open_engine):
    import time

    engine = await open_engine(make_profile(feed={"speed": 0}), seed=3)
    app = TradeConsoleApp(engine, duration=30)
    async with app.run_test(size=(100, 30)) as pilot:
        deadline = time.monotonic() + 30
        while not (app._engine_worker is not None and app._engine_worker.is_finished):
            assert time.monotonic() < deadline, "the engine never stopped"
            await pilot.pause(0.05)
        started = engine.trading_started
        assert started is not None and 30 <= (engine.clock.now() - started).total_seconds() <= 31
        await pilot.pause(0.1)
        assert any("engine stopped running" in n.message for n in app._notifications)
