"""Working orders at the venue (entries, protective stops, exits), keyed by client order id.

The cancel key acts on the selected row; the engine decides what may be cancelled (a protective
stop never alone), and its refusal is what the operator reads.
"""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from engine.snapshot import EngineSnapshot, OrderView

from ..bindings import ORDER_BINDINGS
from ._format import price, qty
from ._table import Cell, FittedPane, KeyedTable, cell

COLUMNS = (
    ("symbol", "symbol"),
    ("purpose", "for"),
    ("side", "side"),
    ("type", "type"),
    ("qty", "qty"),
    ("filled", "filled"),
    ("price", "price"),
    ("status", "status"),
    ("id", "id"),
)

# Under 80 columns of pane type and filled give way (a stop's type is its purpose), and under
# SHORT_AT the status is the word's short form: "submitted" did not fit whole at 80 columns.
NARROW_COLUMNS = (("symbol", "symbol"), ("purpose", "for"), ("side", "side"), ("qty", "qty"), ("price", "price"),
                  ("status", "state"))  # a label no wider than its short words
SHORT_STATUS = {"submitted": "sent", "partially_filled": "part", "pending_approval": "wait"}

_PURPOSE_STYLE = {"entry": "bold", "stop": "dim", "exit": "bold magenta"}


def order_cells(o: OrderView) -> tuple[Cell, ...]:
    return (
        cell(o.symbol, "bold"),
        cell(o.purpose, _PURPOSE_STYLE.get(o.purpose, "")),
        cell(o.side, "green" if o.side == "buy" else "magenta"),
        cell(o.type),
        cell(qty(o.quantity), right=True),
        cell(qty(o.filled_qty), right=True),
        cell(price(o.price), right=True),
        cell(o.status.replace("_", " ")),
        cell(o.client_order_id, "dim"),
    )


def _order_key(o: OrderView) -> tuple:
    # New rows arrive entries first (what the operator may cancel); rows already shown keep their
    # place, so the cursor never jumps under the operator.
    return (o.purpose != "entry", o.symbol, o.client_order_id)


class OrdersTable(KeyedTable):
    BINDINGS = ORDER_BINDINGS

    def action_cancel_order(self) -> None:
        # No id: the selection, checked as the operator saw it (the palette names its order).
        self.app.action_cancel_order()  # type: ignore[attr-defined]


def short_status_cells(o: OrderView) -> tuple[Cell, ...]:
    cells = list(order_cells(o))
    cells[COLUMNS.index(("status", "status"))] = cell(SHORT_STATUS.get(o.status, o.status.replace("_", " ")))
    return tuple(cells)


class OrdersPane(FittedPane, Vertical):
    DEFAULT_CSS = """
    OrdersPane > KeyedTable { height: 1fr; }
    """
    COLUMN_SETS = ((80, COLUMNS), (0, NARROW_COLUMNS))
    SHORT_AT = 56

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Orders"
        self.table = OrdersTable(COLUMNS, id="orders-table")
        self._by_id: dict[str, OrderView] = {}

    def compose(self) -> ComposeResult:
        yield self.table

    def layout_for(self, width: int) -> tuple:
        return self.column_set(width), width < self.SHORT_AT

    def show(self, snap: EngineSnapshot) -> None:
        self._shown = snap
        ordered = sorted(snap.open_orders, key=_order_key)
        self._by_id = {o.client_order_id: o for o in ordered}
        cells = short_status_cells if self.width_seen < self.SHORT_AT else order_cells  # redrawn on resize: layout_for
        self.table.sync({o.client_order_id: self.cells_for(cells(o), COLUMNS) for o in ordered})
        entries = sum(1 for o in ordered if o.purpose == "entry")
        self.border_title = f"Orders ({entries} entry, {len(ordered) - entries} stop/exit)" if ordered else "Orders"

    def selected(self) -> OrderView | None:
        key = self.table.selected_key()
        return self._by_id.get(key) if key is not None else None
