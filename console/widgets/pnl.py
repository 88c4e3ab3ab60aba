"""P&L figures and an equity sparkline."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from engine.snapshot import EngineSnapshot

from ._format import money, money_text


class PnlPane(Vertical):
    DEFAULT_CSS = """
    PnlPane { height: auto; }
    PnlPane > #pnl-figures { height: 3; }
    PnlPane > Sparkline { height: 1; margin-top: 0; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "P&L"
        self._figures: tuple | None = None
        self._curve: tuple[float, ...] | None = None
        self.numbers = Static("", id="pnl-figures")
        self.spark = Sparkline([], id="equity-spark")

    def compose(self) -> ComposeResult:
        yield self.numbers
        yield self.spark

    def show(self, snap: EngineSnapshot) -> None:
        figures = (
            snap.realized_pnl,
            snap.unrealized_pnl,
            snap.pnl_today,
            snap.pnl_week,
            snap.fees,
            snap.equity,
        )
        if figures != self._figures:
            self._figures = figures
            # Two label/value pairs per line keep the pane to three rows on an 80x24 terminal.
            grid = Table.grid(padding=(0, 1), expand=True)
            grid.add_column(style="dim")
            grid.add_column(justify="right")
            grid.add_column(style="dim")
            grid.add_column(justify="right")
            grid.add_row("real", money_text(snap.realized_pnl), "today", money_text(snap.pnl_today))
            grid.add_row("unrl", money_text(snap.unrealized_pnl), "week", money_text(snap.pnl_week))
            grid.add_row("fees", Text(money(snap.fees)), "equity", Text(money(snap.equity), style="bold"))
            self.numbers.update(grid)
        if snap.equity_curve != self._curve:
            self._curve = snap.equity_curve
            self.spark.data = list(snap.equity_curve)

    @property
    def figures(self) -> dict[str, str]:
        """The formatted figures as shown (labels are the pane's own)."""
        if self._figures is None:
            return {}
        names = ("realized", "unrealized", "today", "week", "fees", "equity")
        return {name: money(value) for name, value in zip(names, self._figures, strict=True)}
