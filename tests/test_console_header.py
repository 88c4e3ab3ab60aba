"""The header at 80 columns: mode, equity and the connection are always on the line; the profile's
name and a venue notice (an emulator, a proxy) are what gets cut, with an ellipsis, then the clock."""
from __future__ import annotations

from dataclasses import replace

import pytest
from rich.text import Text

from console.app import TradeConsoleApp
from test_console_frozen import SCENARIOS, FrozenEngine, frozen_snapshot, write_log
from test_console_keys import until

LONG_NAME = "live-momentum-btc-eth-sol-ltc-with-a-very-long-descriptive-name-x"  # 64, the most allowed


@pytest.mark.parametrize("changes", [
    {"venue_notice": "via 127.0.0.1:18443 (proxy)"},
    {"profile": LONG_NAME},
    {"profile": LONG_NAME, "venue_notice": "via 127.0.0.1:18443 (proxy)"},
])
async def test_mode_equity_and_connection_stay_on_the_header_at_80_columns(tmp_path, changes):
    snap = replace(frozen_snapshot(**SCENARIOS["live"]), venue="binance", connected=False, **changes)
    app = TradeConsoleApp(FrozenEngine(snap, write_log(tmp_path)), start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.snapshots_painted >= 1 and "DISCONNECTED" in app.header.info_text)
        app.refresh_snapshot()  # painted once laid out: the width is known
        await pilot.pause()
        line = app.header.info_text
        assert Text(line).cell_len <= app.header.info.content_region.width == 78
        assert line.startswith(" LIVE · REAL MONEY ")
        assert "equity $" in line and line.rstrip().endswith("○ DISCONNECTED")
        assert "…" in line  # the free-length part was cut, visibly
        if "venue_notice" in changes:
            assert "⚠ via" in line  # a proxy never passes for the venue, even cut


async def test_the_whole_header_when_it_fits(tmp_path):
    snap = replace(frozen_snapshot(**SCENARIOS["live"]), venue="binance", venue_notice="via proxy")
    app = TradeConsoleApp(FrozenEngine(snap, write_log(tmp_path)), start_engine=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: "● connected" in app.header.info_text)
        app.refresh_snapshot()
        await pilot.pause()
        assert "…" not in app.header.info_text and app.header.info_text.endswith("Z")
