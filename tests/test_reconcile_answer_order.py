"""A round trip the venue closed while the engine was down (its stop filled, the journal never
heard) is booked before anything about that symbol or the cash is adopted: adopted first, the
holding was dropped at the mark and the round trip's realized P&L, fees and trade count never
reached the books, and the book was then refused (audit10 #4). The bookable difference is listed
first (the console's dialog and `tradeconsole reconcile` both read that list), and an adopt that
would lose it is refused in one line until it is booked.

The venue's side is written into the paper venue's own file between sessions.
"""
from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from engine.control.differences import reconcile_reply
from engine.engine import Engine
from engine.risk.gate import TradingState
from test_reconcile_safety import Quiet, _holding_eth, venue, warm

FEE = D("1.95")


async def _stop_filled_while_down(tmp: Path):
    """Session 1 holds ETH with its stop; the venue fills the stop while the engine is down."""
    prof, eng = await _holding_eth(tmp)
    pos = eng.portfolio.positions["ETH/USD"]
    held, avg, stop_price, stop = pos.quantity, pos.avg_price, pos.stop_price, pos.stop_order_id
    before = {"realized": eng.portfolio.realized_pnl, "fees": eng.portfolio.fees, "trades": eng.portfolio.totals.count}
    await eng.close()
    db = venue(tmp)
    db.execute("UPDATE orders SET status = 'filled', filled_qty = ?, avg_fill_price = ?, fees = ? "
               "WHERE client_order_id = ?", (str(held), str(stop_price), str(FEE), stop))
    db.execute("UPDATE positions SET quantity = '0' WHERE symbol = 'ETH/USD'")
    cash = D(dict(db.execute("SELECT key, value FROM account"))["cash"]) + held * stop_price - FEE
    db.execute("UPDATE account SET value = ? WHERE key = 'cash'", (str(cash),))
    db.commit()
    db.close()
    return prof, held, avg, stop_price, stop, before


async def _restarted(prof) -> Engine:
    eng = await Engine.open(prof, seed=2)
    await warm(eng, Quiet())
    return eng


def _index(eng: Engine, kind: str) -> int:
    (i,) = [i for i, d in enumerate(eng.reconciliation) if d.kind == kind]
    return i


async def test_the_fill_while_down_is_listed_first_and_adopt_waits_for_it(tmp_path):
    prof, held, avg, stop_price, stop, before = await _stop_filled_while_down(tmp_path)
    eng = await _restarted(prof)
    try:
        kinds = [d.kind for d in eng.reconciliation]
        assert sorted(kinds) == ["balance_mismatch", "closed_while_down", "quantity_mismatch"]
        # First in the engine's list, so first in the dialog and in `tradeconsole reconcile`.
        assert kinds[0] == "closed_while_down" and eng.reconciliation[0].actions == ("book", "mark_closed")
        assert reconcile_reply(eng)["differences"][0]["kind"] == "closed_while_down"

        # Adopting the holding or the cash first is refused, one line naming what to book; nothing done.
        for kind in ("quantity_mismatch", "balance_mismatch"):
            problem = await eng.resolve_difference(_index(eng, kind), "adopt")
            assert problem is not None and "\n" not in problem and f"book {stop} first" in problem
        assert not await eng.journal.rows(["reconcile"])
        assert eng.portfolio.positions["ETH/USD"].quantity == held
        assert not any(d.resolved for d in eng.reconciliation)

        # Booked: the round trip is in the books, P&L, fees and trade count.
        assert await eng.resolve_difference(0, "book") is None
        assert "ETH/USD" not in eng.portfolio.positions
        (fill,) = await eng.journal.rows(["fill"], ref=stop)
        assert D(fill.data["price"]) == stop_price and D(fill.data["fee"]) == FEE
        p = eng.portfolio
        assert p.fees == before["fees"] + FEE
        assert p.realized_pnl == before["realized"] + (stop_price - avg) * held
        assert p.totals.count == before["trades"] + 1
        assert eng.reconciliation[_index(eng, "quantity_mismatch")].resolved == "book"
        # The cash now matches the venue's: the book answered that line too.
        venue_cash = (await eng.broker.balances())["USD"]
        assert p.cash == venue_cash
        assert eng.reconciliation[_index(eng, "balance_mismatch")].resolved == "book"
        assert eng.state is TradingState.ACTIVE
    finally:
        await eng.close()


async def test_adopt_is_allowed_once_the_fill_while_down_is_marked_closed(tmp_path):
    # The operator's way out when the book is not wanted (or refused): mark it closed, then adopt.
    prof, held, avg, stop_price, stop, before = await _stop_filled_while_down(tmp_path)
    eng = await _restarted(prof)
    try:
        assert await eng.resolve_difference(_index(eng, "closed_while_down"), "mark_closed") is None
        assert await eng.resolve_difference(_index(eng, "quantity_mismatch"), "adopt") is None
        assert await eng.resolve_difference(_index(eng, "balance_mismatch"), "adopt") is None
        assert "ETH/USD" not in eng.portfolio.positions and eng.state is TradingState.ACTIVE
    finally:
        await eng.close()
