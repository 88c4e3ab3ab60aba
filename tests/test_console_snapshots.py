"""SVG snapshots of the main screen (pytest-textual-snapshot), one per state an operator must
recognise at a glance, at 80x24 and 160x48.

The screen is driven by a frozen engine (test_console_frozen.py): a fixed `EngineSnapshot`, a
fixed log file, no engine loop, so every run paints the same pixels. Regenerate after a deliberate
change with `pytest tests/test_console_snapshots.py --snapshot-update`, look at the report, and
commit the SVGs under tests/__snapshots__/.
"""
from __future__ import annotations

import pytest

from console.app import TradeConsoleApp
from test_console_frozen import SCENARIOS, frozen_engine

SIZES = [(80, 24), (160, 48)]


async def painted(pilot) -> None:
    app = pilot.app
    while app.snapshots_painted < 1 or app.log_tail.lines_seen == 0:
        await pilot.pause(0.02)
    await pilot.pause()


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    # The theme and the mouse come from the environment; a snapshot must not.
    monkeypatch.delenv("TRADECONSOLE_THEME", raising=False)
    monkeypatch.delenv("TRADECONSOLE_NO_MOUSE", raising=False)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_main_screen(snap_compare, tmp_path, scenario, size):
    app = TradeConsoleApp(frozen_engine(tmp_path, scenario), start_engine=False)
    assert snap_compare(app, terminal_size=size, run_before=painted)


def test_live_mode_in_the_ansi_theme(snap_compare, tmp_path):
    """The 16-colour theme (TRADECONSOLE_THEME=ansi) for 256-colour terminals: live stays red."""
    app = TradeConsoleApp(frozen_engine(tmp_path, "live"), start_engine=False, theme="ansi")
    assert snap_compare(app, terminal_size=(80, 24), run_before=painted)
