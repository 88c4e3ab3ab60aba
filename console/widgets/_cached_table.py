"""`CachedTable`: a DataTable that renders each cell once per value rather than once per table
update, for panes that refresh several times a second. The cell type and its helpers live here
too; console/widgets/_table.py builds the keyed, cursor-keeping table on it.
"""
from __future__ import annotations

from collections.abc import Sequence

from rich.cells import get_character_cell_size
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Region
from textual.renderables.styled import Styled
from textual.strip import Strip
from textual.widgets import DataTable

# A cell is (text, style, right-aligned). Comparing these plain tuples is cheaper and more
# reliable than comparing rendered rich Text objects.
Cell = tuple[str, str, bool]
CELL_CACHE = 1500
ROW_CACHE = 300
_BY_VALUE = object()  # marks CachedTable's entries in the table's cell cache
# (pre style, post style, text style, justify, padding) -> (padding style, text style), or False
# when the probe did not come out as one padded segment. Shared by every table: few combinations.
_PROBES: LRUCache[tuple, tuple[Style, Style] | bool] = LRUCache(1024)


def _single_width(text: str) -> bool:
    return text.isascii() or all(get_character_cell_size(c) == 1 for c in text)


def cell(text: str, style: str = "", right: bool = False) -> Cell:
    return (text, style, right)


def tighten(cells: Sequence[Cell]) -> tuple[Cell, ...]:
    """Cells for a `tight` table: the blank before each but the first is part of the cell."""
    return tuple((text if i == 0 else f" {text}", style, right) for i, (text, style, right) in enumerate(cells))


def render(value: Cell) -> Text:
    text, style, right = value
    return Text(text, style=style, justify="right" if right else "left", no_wrap=True)


class CachedTable(DataTable):
    """A DataTable that renders each cell once per value, not once per table update.

    Textual keys its rendered cells by a table-wide update counter that every add_row, update_cell
    and remove_row moves on, so one price ticking in one row had every visible cell of every row
    rendered through Rich again: 40-60 ms per paint of the positions and orders tables at 5,000
    ticks/s (and the same for each chunk of rows the history screen adds), a paint long enough for
    a key press to wait behind it. Here a cell's render is reused while the same value object sits
    in that place: values are never changed in place (a change stores a new object), so identity
    is equality, and the entry holds the value, so its id cannot be reused by another object.
    The entries live in the table's own cell cache, so every reason Textual has to drop its
    renders (a style or theme change, a resize, the cursor shown or hidden) drops them too.

    Whole lines are reused the same way (keyed by every input of DataTable's own line cache, the
    row's values in place of the update counter, and the column widths), and the widget's and
    the rows' styles are read once per paint rather than for every line: each read walks the
    ancestors' backgrounds, a tenth of a millisecond, three times per line.
    """

    _paint_style: Style | None = None  # the widget's style, while a paint is under way
    _paint_columns: list | None = None
    _paint_widths: tuple[int, ...] | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Textual keeps up to 10,000 rendered cells (and 1,000 rows and lines) per table by
        # default: dead renders by the hundred thousand, which a full garbage collection walks
        # (150 ms and more, keys waiting). A few screenfuls suffice.
        self._cell_render_cache.maxsize = CELL_CACHE
        self._row_render_cache.maxsize = ROW_CACHE
        self._row_renderable_cache.maxsize = ROW_CACHE
        self._line_cache.maxsize = ROW_CACHE

    @property
    def rich_style(self) -> Style:
        style = self._paint_style
        return DataTable.rich_style.fget(self) if style is None else style  # type: ignore[attr-defined]

    def render_lines(self, crop: Region) -> list[Strip]:
        self._paint_style = DataTable.rich_style.fget(self)  # type: ignore[attr-defined]
        self._paint_columns = columns = self.ordered_columns
        self._paint_widths = tuple(column.get_render_width(self) for column in columns)
        try:
            return super().render_lines(crop)
        finally:
            self._paint_style = self._paint_columns = self._paint_widths = None

    def _get_row_style(self, row_index: int, base_style: Style) -> Style:
        # DataTable's own reads the component's styles afresh for each line; Textual's cached read
        # (dropped on every refresh and style change) gives the same style.
        if row_index == -1:
            return self.get_component_rich_style("datatable--header")
        if row_index < self.fixed_rows:
            return self.get_component_rich_style("datatable--fixed")
        if self.zebra_stripes:
            return self.get_component_rich_style("datatable--odd-row" if row_index % 2 else "datatable--even-row")
        return base_style

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        try:
            row_key, _ = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        columns = self._paint_columns or self.ordered_columns
        if row_key is self._header_row_key:
            values = tuple(column.label for column in columns)
            row_index = -1
        else:
            data = self._data.get(row_key)
            if data is None:
                return super()._render_line(y, x1, x2, base_style)
            values = tuple(data.get(column.key) for column in columns)
            row_index = self._row_locations.get(row_key)
        widths = self._paint_widths or tuple(column.get_render_width(self) for column in columns)
        key = (_BY_VALUE, y, x1, x2, self.size.width, row_key, row_index, widths, self.cursor_coordinate,
               self.hover_coordinate, base_style, self.cursor_type, self.show_cursor, self._show_hover_cursor,
               self._pseudo_class_state, self.zebra_stripes, self.fixed_rows, self.fixed_columns)
        cache = self._line_cache
        hit = cache.get(key)
        if hit is not None and len(hit[0]) == len(values) and all(a is b for a, b in zip(hit[0], values)):
            return hit[1]
        strip = super()._render_line(y, x1, x2, base_style)
        cache[key] = (values, strip)
        return strip

    def add_cells(self, cells: Sequence[Cell], key: str) -> None:
        """A row of plain cells (text, style, right-aligned): drawn without Rich's layout engine,
        and never read as markup."""
        self.add_row(*(render(c) for c in cells), key=key)

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        if column_index < 0:  # row labels: not used by these tables
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        column_key = self._column_locations.get_key(column_index)
        if row_index < 0:
            value: object = self.columns[column_key].label
            height = self.header_height
        else:
            row_key = self._row_locations.get_key(row_index)
            value = self._data[row_key].get(column_key)
            height = self.rows[row_key].height
        # The inputs of DataTable's own key, less its update counter. The indices stay: the
        # segments carry them as meta (mouse clicks), and the row style (zebra) follows the index.
        key = (_BY_VALUE, row_index, column_index, height, base_style, width, cursor, hover,
               self._show_hover_cursor, self._pseudo_class_state)
        cache = self._cell_render_cache
        hit = cache.get(key)
        if hit is not None and hit[0] is value:
            return hit[1]
        lines = None
        if row_index >= 0 and height == 1 and isinstance(value, Text):
            lines = self._plain_cell(value, row_index, column_index, base_style, width, cursor, hover)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cache[key] = (value, lines)
        return lines

    def _plain_cell(self, value: Text, row_index: int, column_index: int, base_style: Style, width: int,
                    cursor: bool, hover: bool) -> list[list[Segment]] | None:
        """A one-line cell of plain, single-width text in one style, without Rich's layout engine.

        What Rich does to such a cell comes down to: the text cut or padded to the inner width
        (trailing blanks dropped first when right-justified), one style on it and one on the
        padding either side. The two styles are taken from Rich itself, by rendering a one-letter
        probe in the same style once per combination, so they are Rich's to the bit; only the
        justification is done here (tests/test_console_table.py compares both ways cell by cell).
        Anything else (spans, tabs, wide characters, wrapping) returns None: Rich renders it.
        """
        plain = value.plain
        pad = self.cell_padding
        inner = width - 2 * pad
        if (value.spans or not value.no_wrap or value.justify not in ("left", "right") or value.overflow
                or inner < 1 or not plain.isprintable() or not _single_width(plain)):
            return None
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, row_index < self.fixed_rows or column_index < self.fixed_columns, hover, cursor,
            self.show_cursor, self._show_hover_cursor, self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css")
        probe_key = (base_style + component_style, post_style, value.style, value.justify, pad)
        styles = _PROBES.get(probe_key)
        if styles is None:
            styles = _PROBES[probe_key] = self._probe(*probe_key)
        if styles is False:
            return None
        pad_style, text_style = styles
        text = plain.rstrip() if value.justify == "right" else plain
        if not text:
            return None  # Rich gives an empty text no span, so its blanks go unstyled: left to Rich
        body = text[:inner].rjust(inner) if value.justify == "right" else text[:inner].ljust(inner)
        # DataTable adds the cell's place as meta (for mouse clicks) before the other styles; meta
        # is merged by key and nothing else here carries any, so adding it last is the same.
        meta = Style.from_meta({"row": row_index, "column": column_index})
        padding = Segment(" " * pad, pad_style + meta)
        return [[padding, Segment(body, text_style + meta), padding] if pad else [Segment(body, text_style + meta)]]

    def _probe(self, pre: Style, post: Style, style: str | Style, justify: str, pad: int) -> tuple[Style, Style] | bool:
        options = self.app.console_options.update_dimensions(1 + 2 * pad, 1).update(no_wrap=True)
        probe = Text("x", style=style, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        lines = self.app.console.render_lines(Styled(Padding(probe, (0, pad)), pre_style=pre, post_style=post), options)
        line = lines[0] if len(lines) == 1 else []
        if pad:
            if [s.text for s in line] != [" " * pad, "x", " " * pad] or line[0].style != line[2].style:
                return False
            return line[0].style, line[1].style
        if [s.text for s in line] != ["x"]:
            return False
        return line[0].style, line[0].style
