"""DataTables for panes that refresh several times a second.

`KeyedTable` is kept in step with a keyed set of rows without ever calling `clear()`: clearing and
refilling on every snapshot would reset the cursor (the operator's selection) several times a
second; instead rows are added, changed cell by cell, or removed by key. It renders through
`CachedTable` (console/widgets/_cached_table.py), once per cell value.
"""
from __future__ import annotations

import time
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from ._cached_table import CachedTable, Cell, cell, render, tighten

# The panes import the cell helpers from here, with the tables.
__all__ = ["CachedTable", "Cell", "FittedPane", "KeyedTable", "cell", "render", "tighten"]


class KeyedTable(CachedTable):
    """DataTable whose rows are synchronised from `{row_key: cells}` mappings.

    A key that acts on the selected row in place (approve, cancel) must act only on a row the
    operator has seen selected: `ready()` is False for a row that came under the cursor by itself
    (the previous one answered, cancelled, expired; the first row of an empty table) until it has
    been on screen STEADY_SECONDS with no press of such a key (`hold()` restarts the wait, so a
    double tap or a held key never reaches the next row); a row the operator moved to is theirs.
    """

    STEADY_SECONDS = 0.5

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self._column_spec = tuple(columns)
        self._cells: dict[str, tuple[Cell, ...]] = {}
        # The row the operator had chosen left from under the cursor (expired, filled, answered
        # elsewhere), so the cursor now sits on a row nobody chose; cleared when the cursor moves.
        self._moved_off = False
        self._expected_gone: str | None = None  # a row the operator's own key is taking away
        self._syncing = False
        # When the row under the cursor came there by itself (None: the operator chose it), and
        # whether the operator's key has acted and its row is still shown.
        self._arrived: float | None = None
        self._acted = False

    def _ensure_columns(self) -> None:
        # Done lazily (add_column needs a running app) and from sync() too, because the first
        # snapshot may arrive before this table's own mount.
        if not self.columns:
            for key, label in self._column_spec:
                self.add_column(label, key=key)

    def on_mount(self) -> None:
        self._ensure_columns()

    def set_columns(self, columns: Sequence[tuple[str, str]], *, tight: bool = False) -> None:
        """Show another column set (a narrow terminal's); the owner syncs the rows again at once.

        `tight`: one blank between columns, not two. The cells then carry their own leading blank
        (`tighten`), which at 80 columns is what lets five price columns fit without cutting one."""
        self._column_spec = tuple(columns)
        self._cells = {}
        self.clear(columns=True)
        self.cell_padding = 0 if tight else 1
        if tight:
            self._column_spec = tuple((key, label if i == 0 else f" {label}")
                                      for i, (key, label) in enumerate(self._column_spec))
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
        selected = self.selected_key()
        with self._programmatic():
            self._sync(rows, column_keys, selected)
        if selected is not None and selected not in rows:
            # Kept through an empty table: a row arriving later is not the one the operator chose.
            self._moved_off = selected != self._expected_gone
            self._expected_gone = None
        now = self.selected_key()
        if now != selected or self._acted:
            self._arrived = time.monotonic() if now is not None else None
            self._acted = False

    @contextmanager
    def _programmatic(self) -> Iterator[None]:
        """Cursor moves inside are the console's own (keeping the selection), not the operator's."""
        before, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = before

    @contextmanager
    def keeping_selection(self) -> Iterator[None]:
        """Rebuild the rows (new columns) and put the cursor back: the selection's state stays."""
        state = (self.selected_key(), self._moved_off, self._arrived, self._acted)
        with self._programmatic():
            yield
        if self.selected_key() == state[0]:
            self._moved_off, self._arrived, self._acted = state[1:]

    def acting_on(self, key: str) -> None:
        """The operator's key is about to take this row away (approve, close): the row after it is
        then theirs to act on, not one that slid under the cursor, once it has been shown."""
        self._expected_gone = key
        self._acted = True

    def take_moved_off(self) -> bool:
        """True once after the chosen row left from under the cursor; a key meant for it must not
        act on the row now there. Told, the operator has now seen the row: it is theirs."""
        moved, self._moved_off = self._moved_off, False
        if moved:
            self._arrived = None
        return moved

    def ready(self) -> bool:
        """Whether the selected row has been on screen, selected, long enough to be acted on."""
        if self._acted:
            return False  # the key has acted; the next row is not on screen yet
        return self._arrived is None or time.monotonic() - self._arrived >= self.STEADY_SECONDS

    def hold(self) -> None:
        """A press came too soon: the wait starts again, so a held key never reaches the row."""
        if not self._acted:
            self._arrived = time.monotonic()

    def watch_cursor_coordinate(self, old, new) -> None:
        super().watch_cursor_coordinate(old, new)
        if not self._syncing:
            self._moved_off = False  # the operator (or a click) chose a row
            self._arrived = None
            self._acted = False

    def _sync(self, rows: Mapping[str, tuple[Cell, ...]], column_keys: list[str], selected: str | None) -> None:
        with self.app.batch_update():
            gone = [k for k in self._cells if k not in rows]
            for key in gone:
                self.remove_row(key)
                del self._cells[key]
            if gone and selected in rows and self.row_count:
                # The cursor is an index: with a row above it gone it would sit on another row
                # (and `a` approve another order). It stays on the row the operator chose.
                index = self.get_row_index(selected)
                if index != self.cursor_row:
                    self.move_cursor(row=index, animate=False)
            for key, cells in rows.items():
                previous = self._cells.get(key)
                if previous is None:
                    self.add_row(*(render(c) for c in cells), key=key)
                else:
                    for column, new, old in zip(column_keys, cells, previous, strict=True):
                        if new != old:
                            # Re-measuring a column changes the table's virtual size, which lays out
                            # the whole screen: only when the new text no longer fits. Columns
                            # grow but never shrink, so nothing jitters under the operator's eyes.
                            wider = len(new[0]) > self.columns[column].content_width
                            self.update_cell(key, column, render(new), update_width=wider)
                self._cells[key] = cells

    def cells(self, key: str) -> tuple[Cell, ...]:
        """What the row currently shows (for tests and for the detail panes)."""
        return self._cells[key]


class FittedPane:
    """A pane whose table shows fewer columns as its own width shrinks (an 80-column terminal
    gives it 46): whole columns that fit, rather than wide ones cut mid-number at the edge with
    the sideways scrollbar hidden. A mixin of the pane: COLUMN_SETS is (least width, columns)
    widest first, the narrower sets `tight`; `_shown` is the last snapshot, to fill new columns."""

    COLUMN_SETS: tuple[tuple[int, tuple[tuple[str, str], ...]], ...] = ()
    table: KeyedTable
    columns_shown: tuple[tuple[str, str], ...] | None = None
    _shown = None
    _layout: Hashable = None  # layout_for the width the rows were last drawn at; None before the first resize
    width_seen = 0  # the width of the last resize: what the rows are drawn for

    def column_set(self, width: int) -> tuple[tuple[str, str], ...]:
        return next(columns for least, columns in self.COLUMN_SETS if width >= least)

    @property
    def narrow(self) -> bool:
        return self.columns_shown not in (None, self.COLUMN_SETS[0][1])

    def layout_for(self, width: int) -> Hashable:
        """What the rows' cells depend on in the pane's width: its columns (a pane may add more)."""
        return self.column_set(width)

    def on_resize(self, event) -> None:
        width = self.width_seen = event.size.width
        columns = self.column_set(width)
        layout = self.layout_for(width)
        if layout == self._layout:
            return
        # Rows drawn before the first resize were cut for a width of 0 (a snapshot can land before
        # layout): the first resize always draws them again, whether or not the columns change.
        self._layout = layout
        selected = self.table.selected_key()
        with self.table.keeping_selection():
            if columns != (self.columns_shown or self.COLUMN_SETS[0][1]):
                self.columns_shown = columns
                self.table.set_columns(columns, tight=self.narrow)
            if self._shown is not None:
                self.show(self._shown)
                if selected in self.table.row_keys:
                    self.table.move_cursor(row=self.table.get_row_index(selected), animate=False)

    def cells_for(self, cells: Sequence[Cell], columns: Sequence[tuple[str, str]]) -> tuple[Cell, ...]:
        """A full row (laid out as `columns`) cut to the columns shown."""
        if not self.narrow:
            return tuple(cells)
        index = {key: i for i, (key, _) in enumerate(columns)}
        return tighten([cells[index[key]] for key, _ in self.columns_shown or ()])
