"""Open positions, one row per symbol, updated in place so the cursor survives refreshes.

Besides price and stop, each row carries two meters the engine computed: the loss if the stop is
hit against the per-trade limit, and the market value held against the symbol's exposure cap.
The row keys (close, move stop) act on the selected row while the table has the focus.
"""
from __future__ import annotations

from decimal import Decimal

from textual.app import ComposeResult
from textual.containers import Vertical

from engine.snapshot import EngineSnapshot, PositionView

from ..bindings import POSITION_BINDINGS
from ._format import DASH, level_style, meter, pct, price, qty, signed_style
from ._table import Cell, FittedPane, KeyedTable, cell

# What decides an action first (P&L and the risk meter), so an 80-column terminal shows it without
# scrolling; then price and stop, size, exposure and the average price.
COLUMNS = (
    ("symbol", "symbol"),
    ("side", "side"),
    ("upnl", "uPnL"),
    ("risk", "risk at stop"),
    ("last", "last"),
    ("stop", "stop"),
    ("dist", "dist %"),
    ("qty", "qty"),
    ("exposure", "exposure"),
    ("avg", "avg"),
)
# Narrower panes keep the columns that say whether to act, each number whole: at 100 columns of
# terminal (66 of pane) up to the stop's distance, at 80 (46) without side and risk meter.
MEDIUM_COLUMNS = COLUMNS[:7]
NARROW_COLUMNS = (("symbol", "symbol"), ("upnl", "uPnL"), ("last", "last"), ("stop", "stop"), ("dist", "dist %"))


def _ratio(value: Decimal | None, limit: Decimal | None) -> float | None:
    if value is None or limit is None or limit <= 0:
        return None
    return float(value / limit)


def risk_cell(p: PositionView) -> Cell:
    if not p.stop_working:
        return cell("NO STOP", "bold red")
    ratio = _ratio(p.loss_at_stop, p.loss_limit)
    if ratio is None:
        return cell(DASH if p.stop_price is not None else "NO STOP", "" if p.stop_price is not None else "bold red")
    if ratio <= 0:
        return cell(f"locked +{-p.loss_at_stop:,.2f}", "green")  # the stop is past the entry: profit locked
    return cell(f"{meter(ratio, 4)} {ratio * 100:3.0f}%", level_style(ratio))


def exposure_cell(p: PositionView) -> Cell:
    ratio = _ratio(p.exposure, p.exposure_cap)
    if ratio is None:
        return cell(f"{p.exposure:,.0f}", right=True)
    return cell(f"{p.exposure:,.0f} {ratio * 100:3.0f}%", level_style(ratio), right=True)


def position_cells(p: PositionView) -> tuple[Cell, ...]:
    return (
        cell(p.symbol, "bold"),
        cell(p.side, "green" if p.side == "long" else "magenta"),
        cell(f"{p.unrealized_pnl:,.2f}", signed_style(p.unrealized_pnl), right=True),
        risk_cell(p),
        cell(price(p.last_price), right=True),
        # A position without a stop is the thing the operator must notice first.
        cell(price(p.stop_price), "", right=True) if p.stop_working and p.stop_price is not None
        else cell("NO STOP", "bold red", right=True),
        cell(pct(p.stop_distance_pct), right=True),
        cell(qty(p.quantity), right=True),
        exposure_cell(p),
        cell(price(p.avg_price), right=True),
    )


class PositionsTable(KeyedTable):
    BINDINGS = POSITION_BINDINGS

    def action_close_position(self) -> None:
        self.app.action_close_position(self.selected_key())  # type: ignore[attr-defined]

    def action_tighten_stop(self) -> None:
        self.app.action_tighten_stop(self.selected_key())  # type: ignore[attr-defined]


class PositionsPane(FittedPane, Vertical):
    DEFAULT_CSS = """
    PositionsPane > KeyedTable { height: 1fr; }
    """
    COLUMN_SETS = ((100, COLUMNS), (60, MEDIUM_COLUMNS), (0, NARROW_COLUMNS))

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Positions"
        self.table = PositionsTable(COLUMNS, id="positions-table")
        self._by_symbol: dict[str, PositionView] = {}

    def compose(self) -> ComposeResult:
        yield self.table

    def show(self, snap: EngineSnapshot) -> None:
        self._shown = snap
        self._by_symbol = {p.symbol: p for p in snap.positions}
        self.table.sync({p.symbol: self.cells_for(position_cells(p), COLUMNS) for p in snap.positions})
        self.border_title = f"Positions ({len(snap.positions)})"
        # Dust is not a position (no stop, not tradable): named under the table, never lost.
        self.border_subtitle = ("dust: " + ", ".join(f"{d.symbol} {qty(d.quantity)} (~{d.value:,.2f})" for d in snap.dust)
                                if snap.dust else "")

    def selected(self) -> PositionView | None:
        key = self.table.selected_key()
        return self._by_symbol.get(key) if key is not None else None

    def get(self, symbol: str) -> PositionView | None:
        return self._by_symbol.get(symbol)
