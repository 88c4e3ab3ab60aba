"""A DataTable kept in step with a keyed set of rows, without ever calling `clear()`.

Clearing and refilling on every snapshot would reset the cursor (the operator's selection) several
times a second; instead rows are added, changed cell by cell, or removed by key.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.widgets import DataTable

# A cell is (text, style, right-aligned). Comparing these plain tuples is cheaper and more
# reliable than comparing rendered rich Text objects.
Cell = tuple[str, str, bool]
CELL_CACHE = 1500
ROW_CACHE = 150


def cell(text: str, style: str = "", right: bool = False) -> Cell:
    return (text, style, right)


def _render(value: Cell) -> Text:
    text, style, right = value
    return Text(text, style=style, justify="right" if right else "left", no_wrap=True)


class KeyedTable(DataTable):
    """DataTable whose rows are synchronised from `{row_key: cells}` mappings."""

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self._column_spec = tuple(columns)
        self._cells: dict[str, tuple[Cell, ...]] = {}
        # Textual keeps up to 10,000 rendered cells (and 1,000 rows and lines) per table, keyed by
        # an update counter that changes on every refresh: a table redrawn four times a second
        # fills them with dead renders, hundreds of thousands of objects the garbage collector
        # walks in a full collection (150 ms and more, keys waiting). A few screenfuls suffice.
        self._cell_render_cache.maxsize = CELL_CACHE
        self._row_render_cache.maxsize = ROW_CACHE
        self._row_renderable_cache.maxsize = ROW_CACHE
        self._line_cache.maxsize = ROW_CACHE

    def _ensure_columns(self) -> None:
        # Done lazily (add_column needs a running app) and from sync() too, because the first
        # snapshot may arrive before this table's own mount.
        if not self.columns:
            for key, label in self._column_spec:
                self.add_column(label, key=key)

    def on_mount(self) -> None:
        self._ensure_columns()

    @property
    def row_keys(self) -> list[str]:
        """Row keys in display order."""
        return [row.key.value for row in self.ordered_rows if row.key.value is not None]

    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        row = min(self.cursor_row, self.row_count - 1)
        key = self.ordered_rows[row].key.value
        return key

    def sync(self, rows: Mapping[str, tuple[Cell, ...]]) -> None:
        """Make the table show exactly `rows` (insertion order for new rows)."""
        self._ensure_columns()
        column_keys = [key for key, _ in self._column_spec]
        with self.app.batch_update():
            for key in [k for k in self._cells if k not in rows]:
                self.remove_row(key)
                del self._cells[key]
            for key, cells in rows.items():
                previous = self._cells.get(key)
                if previous is None:
                    self.add_row(*(_render(c) for c in cells), key=key)
                else:
                    for column, new, old in zip(column_keys, cells, previous, strict=True):
                        if new != old:
                            # Re-measuring a column changes the table's virtual size, which lays out
                            # the whole screen: only when the new text no longer fits. Columns
                            # grow but never shrink, so nothing jitters under the operator's eyes.
                            wider = len(new[0]) > self.columns[column].content_width
                            self.update_cell(key, column, _render(new), update_width=wider)
                self._cells[key] = cells

    def cells(self, key: str) -> tuple[Cell, ...]:
        """What the row currently shows (for tests and for the detail panes)."""
        return self._cells[key]
