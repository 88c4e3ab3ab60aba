"""Open positions, one row per symbol, updated in place so the cursor survives refreshes."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from engine.snapshot import EngineSnapshot, PositionView

from ._format import pct, price, qty, signed_style
from ._table import Cell, KeyedTable, cell

COLUMNS = (
    ("symbol", "symbol"),
    ("side", "side"),
    ("qty", "qty"),
    ("avg", "avg"),
    ("last", "last"),
    ("upnl", "uPnL"),
    ("stop", "stop"),
    ("dist", "dist %"),
)


def position_cells(p: PositionView) -> tuple[Cell, ...]:
    return (
        cell(p.symbol, "bold"),
        cell(p.side, "green" if p.side == "long" else "magenta"),
        cell(qty(p.quantity), right=True),
        cell(price(p.avg_price), right=True),
        cell(price(p.last_price), right=True),
        cell(f"{p.unrealized_pnl:,.2f}", signed_style(p.unrealized_pnl), right=True),
        # A position without a stop is the thing the operator must notice first.
        cell(price(p.stop_price), "" if p.stop_price is not None else "bold red", right=True),
        cell(pct(p.stop_distance_pct), right=True),
    )


class PositionsPane(Vertical):
    DEFAULT_CSS = """
    PositionsPane > KeyedTable { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Positions"
        self.table = KeyedTable(COLUMNS, id="positions-table")

    def compose(self) -> ComposeResult:
        yield self.table

    def show(self, snap: EngineSnapshot) -> None:
        self.table.sync({p.symbol: position_cells(p) for p in snap.positions})
        self.border_title = f"Positions ({len(snap.positions)})"
