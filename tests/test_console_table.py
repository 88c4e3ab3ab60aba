"""The console's tables render a cell once per value, and plain cells without Rich's layout
engine (console/widgets/_table.py): what they draw must be exactly what DataTable draws."""
from __future__ import annotations

import itertools

from rich.segment import Segment
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from console.widgets._table import CachedTable, KeyedTable, cell

TEXTS = ("", " ", "BTC/USD", "  padded  ", "-1,234.56", "x" * 40, "— dash", "● long", "é", "tab\there", "wide 株",
         "trailing   ")
STYLES = ("", "bold", "green", "bold red", "dim", "bold white on red", "magenta italic")


class Host(App[None]):
    def __init__(self, table: DataTable) -> None:
        super().__init__()
        self.table = table

    def compose(self) -> ComposeResult:
        yield self.table


def upstream(table: DataTable, row: int, column: int, base, width: int, cursor: bool, hover: bool):
    # DataTable's own rendering, past CachedTable's cache and fast path.
    table._update_count += 1  # a fresh key: never one of its cached renders
    return DataTable._render_cell(table, row, column, base, width, cursor, hover)


def simplified(lines: list[list[Segment]]) -> list[list[tuple]]:
    return [[(s.text, s.style, s.style.meta if s.style else None) for s in Segment.simplify(line)]
            for line in lines]


async def test_plain_cells_match_datatable_exactly():
    table = CachedTable(zebra_stripes=True, cursor_type="row")
    async with Host(table).run_test(size=(200, 60)) as pilot:
        columns = [table.add_column(f"c{n}", width=w) for n, w in enumerate((1, 3, 8, 12, 30))]
        rows = list(itertools.product(TEXTS, STYLES, ("left", "right")))
        for text, style, justify in rows:
            value = Text(text, style=style, justify=justify, no_wrap=True)  # type: ignore[arg-type]
            table.add_row(*(value for _ in columns))
        table.add_row(*("plain str" for _ in columns))  # not a Text: Rich renders it
        await pilot.pause()
        fast = 0
        base_styles = [table.rich_style, table._get_row_style(1, table.rich_style)]
        for row, column in itertools.product(range(table.row_count), range(len(columns))):
            width = table.ordered_columns[column].get_render_width(table)
            for base, cursor, hover in itertools.product(base_styles, (False, True), (False, True)):
                value = table.get_cell_at((row, column))
                ours = table._plain_cell(value, row, column, base, width, cursor, hover) \
                    if isinstance(value, Text) else None
                theirs = upstream(table, row, column, base, width, cursor, hover)
                if ours is None:
                    continue
                fast += 1
                assert simplified(ours) == simplified(theirs), (value, width, cursor, hover)
        assert fast > len(rows) * len(columns)  # the fast path did most of them


async def test_a_changed_value_is_drawn_and_an_unchanged_one_is_reused():
    table = KeyedTable((("sym", "symbol"), ("px", "last")))
    async with Host(table).run_test(size=(60, 10)) as pilot:
        table.sync({"a": (cell("BTC/USD", "bold"), cell("100.00", right=True)),
                    "b": (cell("ETH/USD", "bold"), cell("10.00", right=True))})
        await pilot.pause()
        rendered = {(r, c): table._render_cell(r, c, table.rich_style, 12) for r in (0, 1) for c in (0, 1)}
        table.sync({"a": (cell("BTC/USD", "bold"), cell("101.50", right=True)),
                    "b": (cell("ETH/USD", "bold"), cell("10.00", right=True))})
        await pilot.pause()
        again = {(r, c): table._render_cell(r, c, table.rich_style, 12) for r in (0, 1) for c in (0, 1)}
        assert again[(0, 1)] is not rendered[(0, 1)]
        assert "".join(s.text for s in again[(0, 1)][0]).strip() == "101.50"
        assert all(again[k] is rendered[k] for k in ((0, 0), (1, 0), (1, 1)))
        # and the screen shows the new price
        line = "".join(s.text for s in table.render_line(1))
        assert "101.50" in line and "100.00" not in line


class Pair(App[None]):
    """A CachedTable and a plain DataTable, side by side at the same size, fed the same rows."""

    CSS = "Horizontal { height: 1fr; } DataTable { width: 1fr; height: 1fr; }"

    def compose(self) -> ComposeResult:
        from textual.containers import Horizontal

        self.ours = CachedTable(zebra_stripes=True, cursor_type="row")
        self.theirs = DataTable(zebra_stripes=True, cursor_type="row")
        with Horizontal():
            yield self.ours
            yield self.theirs

    def both(self, method: str, *args, **kwargs) -> None:
        for table in (self.ours, self.theirs):
            getattr(table, method)(*args, **kwargs)


def lines(table: DataTable) -> list[list[tuple]]:
    return [simplified([list(table.render_line(y))])[0] for y in range(table.size.height)]


async def test_whole_lines_match_datatable_through_updates_and_cursor_moves():
    app = Pair()
    async with app.run_test(size=(160, 30)) as pilot:
        for key, label in (("sym", "symbol"), ("px", "last"), ("note", "note")):
            app.both("add_column", label, key=key)
        for n in range(12):
            row = (Text(f"S{n:02d}/USD", style="bold", justify="left", no_wrap=True),
                   Text(f"{n * 1.5:,.2f}", justify="right", no_wrap=True), f"plain [b]{n}[/b]")
            app.both("add_row", *row, key=f"r{n}")
        app.set_focus(None)  # focus changes a table's colours: compare the two in the same state
        await pilot.pause()
        assert lines(app.ours) == lines(app.theirs)
        for step in range(4):
            value = Text(f"{100 + step:,.2f}", style="green" if step % 2 else "red", justify="right", no_wrap=True)
            app.both("update_cell", f"r{step}", "px", value, update_width=step == 3)
            app.both("move_cursor", row=step * 2)
            await pilot.pause()
            assert lines(app.ours) == lines(app.theirs), step
            again = lines(app.ours)  # from the caches now: still the same
            assert again == lines(app.theirs)
        app.both("remove_row", "r0")
        await pilot.pause()
        assert lines(app.ours) == lines(app.theirs)
        app.ours.focus()  # each in turn with the focus (the cursor row and header change colour)
        await pilot.pause()
        ours = lines(app.ours)
        app.theirs.focus()
        await pilot.pause()
        assert ours == lines(app.theirs)


async def test_the_cursor_stays_on_the_chosen_row_when_rows_above_it_leave():
    table = KeyedTable([("sym", "symbol")])
    row = {k: (cell(k),) for k in ("ETH", "SOL", "LTC", "BTC")}
    async with Host(table).run_test(size=(60, 20)) as pilot:
        table.sync(row)
        await pilot.pause()
        table.move_cursor(row=1)  # the operator picks SOL
        assert table.selected_key() == "SOL"
        # ETH leaves (expired, or rejected from the CLI): by index the cursor would now be on LTC.
        table.sync({k: v for k, v in row.items() if k != "ETH"})
        await pilot.pause()
        assert table.selected_key() == "SOL" and table.cursor_row == 0
        # A new row arriving and an unrelated one leaving below do not move it either.
        table.sync({"SOL": row["SOL"], "LTC": row["LTC"], "DOGE": (cell("DOGE"),)})
        await pilot.pause()
        assert table.selected_key() == "SOL"
        assert not table.take_moved_off()  # the chosen row is still there
        # The chosen row itself leaving: the cursor stays where it was, on the row now there, and
        # says so once, so a key meant for SOL does not act on LTC.
        table.sync({"LTC": row["LTC"], "DOGE": (cell("DOGE"),)})
        await pilot.pause()
        assert table.selected_key() == "LTC"
        assert table.take_moved_off() and not table.take_moved_off()
        # Taken away by the operator's own key: the next row is theirs, nothing to say.
        table.acting_on("LTC")
        table.sync({"DOGE": (cell("DOGE"),)})
        await pilot.pause()
        assert table.selected_key() == "DOGE" and not table.take_moved_off()
        # Moving the cursor is choosing a row: a flag left from before is dropped.
        table.sync({"DOGE": (cell("DOGE"),), "XRP": (cell("XRP"),), "ADA": (cell("ADA"),)})
        await pilot.pause()
        table.move_cursor(row=1)
        table.sync({"DOGE": (cell("DOGE"),), "ADA": (cell("ADA"),)})
        await pilot.pause()
        table.move_cursor(row=0)
        assert not table.take_moved_off()
