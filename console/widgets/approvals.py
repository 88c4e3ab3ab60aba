"""Orders waiting for the operator: a table keyed by client order id, and the why of the selected one.

The operator decides from this pane, so the detail shows everything the gate weighed: the signal's
reason, the sizing rationale and every check with its numbers.
"""
from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from engine.snapshot import ApprovalView, EngineSnapshot

from ._format import money, price, qty, time_left
from ._table import Cell, KeyedTable, cell

COLUMNS = (
    ("symbol", "symbol"),
    ("side", "side"),
    ("qty", "qty"),
    ("price", "price"),
    ("left", "left"),  # time left; a short label keeps the table inside 46 columns at 80x24
)


def approval_cells(a: ApprovalView) -> tuple[Cell, ...]:
    return (
        cell(a.symbol, "bold"),
        cell(a.side, "green" if a.side == "buy" else "magenta"),
        cell(qty(a.quantity), right=True),
        cell(price(a.price), right=True),
        cell(time_left(a.seconds_left), "bold yellow" if a.seconds_left < 60 else "", right=True),
    )


def approval_detail(a: ApprovalView) -> Text:
    text = Text()
    text.append(f"{a.side.upper()} {qty(a.quantity)} {a.symbol} @ {price(a.price)}", style="bold")
    text.append(f"  stop {price(a.stop_price)}  notional {money(a.notional)}\n")
    text.append("signal  ", style="dim")
    text.append(f"{a.reason}\n")
    text.append("sizing  ", style="dim")
    text.append(f"{a.sizing}\n")
    text.append("checks", style="dim")
    if not a.checks:
        text.append("  none recorded", style="bold red")
    width = max((len(c.name) for c in a.checks), default=0)
    for check in a.checks:
        mark, style = ("✓", "green") if check.passed else ("✗", "bold red")
        text.append("\n  ")
        text.append(mark, style=style)
        text.append(f" {check.name:<{width}}", style=style if not check.passed else "")
        text.append(f"  {check.detail}", style="dim" if check.passed else "")
    # Last: on a small terminal the lines that fit should be the ones the decision rests on.
    text.append("\nid      ", style="dim")
    text.append(a.client_order_id)
    return text


class ApprovalPane(Vertical):
    DEFAULT_CSS = """
    ApprovalPane > KeyedTable { height: auto; max-height: 60%; }
    ApprovalPane > #approval-detail-scroll { height: 1fr; min-height: 2; }
    /* Nothing waiting: the pane shrinks to its title and one line, giving the rows to positions. */
    ApprovalPane.-empty { height: auto; }
    ApprovalPane.-empty > #approval-detail-scroll { height: 1; min-height: 1; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Approvals"
        self.table = KeyedTable(COLUMNS, id="approvals-table")
        self.detail = Static("", id="approval-detail")
        self._by_id: dict[str, ApprovalView] = {}
        self._shown_detail: ApprovalView | None | bool = False  # False: never painted

    def compose(self) -> ComposeResult:
        yield self.table
        with VerticalScroll(id="approval-detail-scroll"):
            yield self.detail

    def show(self, snap: EngineSnapshot) -> None:
        self._by_id = {a.client_order_id: a for a in snap.approvals}
        self.table.sync({cid: approval_cells(a) for cid, a in self._by_id.items()})
        count = len(snap.approvals)
        self.border_title = f"Approvals ({count} waiting)" if count else "Approvals"
        self.set_class(not count, "-empty")
        self._paint_detail()

    def selected(self) -> ApprovalView | None:
        """The approval under the cursor, as of the last snapshot."""
        key = self.table.selected_key()
        return self._by_id.get(key) if key is not None else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._paint_detail()

    def _paint_detail(self) -> None:
        current = self.selected()
        # seconds_left changes every tick but is not shown here; repainting for it would only
        # churn layout under the operator's eyes.
        shown = None if current is None else replace(current, seconds_left=0.0)
        if shown == self._shown_detail:
            return
        self._shown_detail = shown
        if current is None:
            self.detail.update(Text("no orders waiting for approval", style="dim"))
        else:
            self.detail.update(approval_detail(current))

    @property
    def detail_text(self) -> str:
        return str(self.detail.content)
