"""P&L figures, with an equity curve and a drawdown curve.

The figures follow every snapshot; the two curves are redrawn at most once a second (CURVE_EVERY),
because a sparkline re-lays out its whole width and the equity samples change far more slowly
than the screen refreshes.
"""
from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from engine.snapshot import EngineSnapshot

from ._format import DASH, money, money_text

CURVE_EVERY = 1.0  # seconds of wall time between curve redraws
BARS = "▁▂▃▄▅▆▇█"


def spark_text(values: tuple[float, ...], width: int) -> str:
    """The curve in at most `width` block characters, for the pane's title when a short terminal
    has no row for the sparkline: the whole window in buckets, each its highest sample, as the
    Sparkline widget draws it."""
    if width <= 0 or not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = tuple(max(values[int(i * step):max(int((i + 1) * step), int(i * step) + 1)]) for i in range(width))
    low, high = min(values), max(values)
    if high == low:
        return BARS[3] * len(values)
    top = len(BARS) - 1
    return "".join(BARS[round((v - low) / (high - low) * top)] for v in values)


class PnlPane(Vertical):
    DEFAULT_CSS = """
    PnlPane { height: auto; }
    PnlPane > #pnl-figures { height: 4; }
    PnlPane > Horizontal { height: 1; }
    PnlPane .curve-label { width: 5; color: $text-muted; }
    PnlPane Sparkline { height: 1; width: 1fr; }
    PnlPane #drawdown-spark > .sparkline--max-color { color: $error; }
    PnlPane #drawdown-spark > .sparkline--min-color { color: $success; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "P&L"
        self._figures: tuple | None = None
        self._curve: tuple[float, ...] | None = None
        self._drawdown: tuple[float, ...] | None = None
        self._curve_at = float("-inf")
        self.curve_redraws = 0
        self.numbers = Static("", id="pnl-figures")
        self.spark = Sparkline([], id="equity-spark")
        self.dd_spark = Sparkline([], id="drawdown-spark")

    def compose(self) -> ComposeResult:
        yield self.numbers
        with Horizontal():
            yield Static("eq", classes="curve-label")
            yield self.spark
        with Horizontal():
            yield Static("dd", classes="curve-label")
            yield self.dd_spark

    def show(self, snap: EngineSnapshot) -> None:
        figures = (
            snap.realized_pnl,
            snap.unrealized_pnl,
            snap.pnl_today,
            snap.pnl_week,
            snap.fees,
            snap.equity,
            snap.pnl_since_stage_start,
            snap.stage,
            None if snap.performance is None else snap.performance.drawdown_pct,
        )
        if figures != self._figures:
            self._figures = figures
            self.numbers.update(self._grid(snap), layout=False)  # a fixed four rows
        self._show_curves(snap)

    def _grid(self, snap: EngineSnapshot) -> Table:
        # Two label/value pairs per line keep the pane to four rows on an 80x24 terminal.
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(style="dim")
        grid.add_column(justify="right")
        grid.add_column(style="dim")
        grid.add_column(justify="right")
        stage = snap.pnl_since_stage_start
        dd = None if snap.performance is None else snap.performance.drawdown_pct
        grid.add_row("real", money_text(snap.realized_pnl), "today", money_text(snap.pnl_today))
        grid.add_row("unrl", money_text(snap.unrealized_pnl), "week", money_text(snap.pnl_week))
        grid.add_row("fees", Text(money(snap.fees)), "stage", money_text(stage) if stage is not None else Text(DASH))
        grid.add_row("dd", Text(DASH if dd is None else f"{dd:.2f}%", style="red" if dd else ""),
                     "equity", Text(money(snap.equity), style="bold"))
        return grid

    def _show_curves(self, snap: EngineSnapshot) -> None:
        now = time.monotonic()
        if now - self._curve_at < CURVE_EVERY:
            return
        if snap.equity_curve == self._curve and snap.drawdown_curve == self._drawdown:
            return
        self._curve_at = now
        self._curve = snap.equity_curve
        self._drawdown = snap.drawdown_curve
        self.spark.data = list(snap.equity_curve)
        self.dd_spark.data = list(snap.drawdown_curve)
        self.curve_redraws += 1
        self._title_curve()

    def on_resize(self) -> None:
        self._title_curve()

    def _title_curve(self) -> None:
        # Under 32 rows the curves give their rows away (theme.tcss): the equity curve then rides
        # in the title, so even 80x24 shows which way the account is going.
        hidden = not self.spark.parent.display if self.spark.parent is not None else False
        curve = spark_text(self._curve or (), self.size.width - 12) if hidden else ""
        self.border_title = f"P&L eq {curve}" if curve else "P&L"

    @property
    def figures(self) -> dict[str, str]:
        """The formatted figures as shown (labels are the pane's own)."""
        if self._figures is None:
            return {}
        names = ("realized", "unrealized", "today", "week", "fees", "equity", "since_stage")
        out = {}
        for name, value in zip(names, self._figures, strict=False):
            out[name] = DASH if value is None else money(value)
        return out
