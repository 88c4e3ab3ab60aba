"""Entries can be paused per strategy from the console (the palette names it): the strategy's
signals are refused by the gate's symbol_paused check while the operator's own orders still go,
and the header says what is paused."""
from __future__ import annotations

import time
from decimal import Decimal as D

from textual.command import CommandInput, CommandList, CommandPalette

from conftest import ANY_READINESS, LOOSE_RISK
from console.app import TradeConsoleApp
from engine.operator import ManualOrderSpec


async def until(pilot, condition, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await pilot.pause(0.02)


async def choose(app, pilot, query: str) -> None:
    await pilot.press("colon")
    await until(pilot, lambda: CommandPalette.is_open(app))
    app.screen.query_one(CommandInput).value = query
    await until(pilot, lambda: app.screen.query_one(CommandList).option_count > 0)
    await pilot.press("down", "enter")


async def test_pause_and_resume_a_strategy_from_the_palette(make_profile, open_engine):
    profile = make_profile(approval={"required": False}, risk={**LOOSE_RISK, **ANY_READINESS})
    eng = await open_engine(profile, seed=5)
    eng.strategy.on_quote = lambda q, pos: None
    await eng.run(duration=30)
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.snapshot is not None)
        await choose(app, pilot, "pause entries from strategy")
        await until(pilot, lambda: "strategy:ema_trend" in eng.pause_book.reasons)
        await until(pilot, lambda: "strategy:ema_trend" in app.header.state_text)
        assert eng.pause_book.blocking("BTC/USD", "ema_trend") == "strategy:ema_trend"
        # The operator's orders are not the strategy's: they still go.
        assert eng.pause_book.blocking("BTC/USD", "operator") is None
        assert await eng.submit_manual(ManualOrderSpec("BTC/USD", "buy", risk_usd=D(20))) is None
        await choose(app, pilot, "resume entries from strategy")
        await until(pilot, lambda: "strategy:ema_trend" not in eng.pause_book.reasons)
        await until(pilot, lambda: "strategy:ema_trend" not in app.header.state_text)
