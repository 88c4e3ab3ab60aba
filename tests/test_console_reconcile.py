"""After a restart that found the journal and the venue disagree, the console asks the operator
about each difference; the answer reaches the engine, is journaled, and entries resume."""
from __future__ import annotations

import os
import sqlite3
from decimal import Decimal

from console.app import TradeConsoleApp
from engine.engine import Engine, paper_store_path
from engine.profile import Profile
from engine.risk.gate import TradingState


async def test_reconciliation_modal_resolves_a_difference(tmp_path):
    os.environ["TRADECONSOLE_HOME"] = str(tmp_path / "home")
    prof = Profile(name="rc", journal={"path": str(tmp_path / "rc.sqlite")}, feed={"speed": 0},
                   approval={"required": False},
                   risk={"min_edge": 0.02, "min_confidence": 0.5, "max_trades_per_hour": 60,
                         "max_trades_per_day": 500, "min_seconds_between_trades": 0, "allowed_readiness": ["ready", "forming", "not_ready"]})
    eng = await Engine.open(prof, seed=5)
    for _ in range(40):
        await eng.run(duration=600)
        if eng.portfolio.positions:
            break
    sym, pos = next(iter(eng.portfolio.positions.items()))
    await eng.close()
    db = sqlite3.connect(paper_store_path(tmp_path / "rc.sqlite"))
    db.execute("UPDATE positions SET quantity = ? WHERE symbol = ?", (str(pos.quantity + Decimal(1)), sym))
    db.commit()
    db.close()

    again = await Engine.open(prof, seed=6)
    assert again.state is TradingState.REDUCE_ONLY and again.reconciliation
    app = TradeConsoleApp(again, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            # mounted: the dialog has put its safe default ("Later") in focus
            if app.screen.query("#choice-adopt") and app.screen.focused is not None:
                break
        assert "quantity mismatch" in str(app.screen.query_one("#dialog-body").render())
        # Each answer on its key, as its button says; a key of an answer not offered here (cancel:
        # a holding has no order to cancel) does nothing.
        assert "[a] Adopt" in str(app.screen.query_one("#choice-adopt").label)
        await pilot.press("x")
        await pilot.pause(0.1)
        assert not again.reconciliation[0].resolved and app.screen.query("#choice-adopt")
        await pilot.press("a")
        for _ in range(100):
            await pilot.pause(0.05)
            if again.state is TradingState.ACTIVE:
                break
        assert again.reconciliation[0].resolved == "adopt"
        assert again.state is TradingState.ACTIVE
        assert again.portfolio.positions[sym].quantity == pos.quantity + Decimal(1)
        rows = await again.journal.rows(kinds=["reconcile"])
        assert rows and rows[-1].data["action"] == "adopt"
