"""At 80x24 every table cell and side-pane line is shown whole: the panes drop columns and words
rather than cut a number at the pane's edge (the sideways scrollbar is hidden on short screens)."""
from __future__ import annotations

import pytest

from console.app import TradeConsoleApp
from test_console_frozen import frozen_engine


async def painted(pilot) -> None:
    while pilot.app.snapshots_painted < 1:
        await pilot.pause(0.02)
    await pilot.pause()


def shown_width(table) -> int:
    return sum(column.get_render_width(table) for column in table.ordered_columns)


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_tables_fit_whole_columns(tmp_path, size):
    app = TradeConsoleApp(frozen_engine(tmp_path, "paper"), start_engine=False)
    async with app.run_test(size=size) as pilot:
        await painted(pilot)
        for pane in (app.positions, app.orders):
            table = pane.table
            assert table.row_count, pane.id
            # Every column the table has is inside the room it is given: nothing is off-screen.
            assert shown_width(table) <= table.scrollable_content_region.width, (pane.id, table.columns)
            for key in table.row_keys:
                for (text, _, _), column in zip(table.cells(key), table.ordered_columns):
                    assert len(text) <= column.content_width, (pane.id, text)
        assert [c.key.value for c in app.positions.table.ordered_columns][:2] == (
            ["symbol", "upnl"] if size == (80, 24) else ["symbol", "side"])
        statuses = {app.orders.table.cells(k)[-1][0].strip() for k in app.orders.table.row_keys}
        assert "submitte" not in statuses


async def test_side_panes_shorten_their_lines_rather_than_cut_them(tmp_path):
    app = TradeConsoleApp(frozen_engine(tmp_path, "breakers"), start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await painted(pilot)
        width = app.breakers.content_size.width
        for line in app.breakers.lines(width):
            assert line.cell_len <= width and "…" not in line.plain, line.plain
        width = app.capital.content_size.width
        assert all(line.cell_len <= width for line in app.capital.lines(width))
        # Wide enough, the engine's own line is shown as it wrote it.
        assert [line.plain[2:] for line in app.breakers.lines(200)] == [
            b.text for b in sorted(app.breakers._breakers, key=lambda b: {"tripped": 0, "critical": 1,
                                                                        "warning": 2}.get(b.state, 3))]


async def test_toasts_do_not_pile_up_or_cover_the_header(tmp_path):
    from textual.widgets._toast import Toast

    app = TradeConsoleApp(frozen_engine(tmp_path, "halted"), start_engine=False)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await painted(pilot)
        assert app.approvals.selected() is None
        await pilot.press(*"a" * 20)
        await pilot.pause()
        waiting = [n for n in app._notifications if n.message.startswith("No order is waiting")]
        assert len(waiting) == 1
        for i in range(12):
            app.notify(f"distinct {i} " + "x" * 600)
        await pilot.pause(0.3)
        assert max(len(n.message) for n in app._notifications) <= 160
        shown = [t.region for t in app.screen.query(Toast) if t.region.height]
        assert shown and min(r.y for r in shown) >= 2  # the header's two rows stay in sight


async def test_information_toasts_are_not_stacked_and_a_dialog_clears_the_rack(tmp_path):
    from console.modals import ConfirmModal

    app = TradeConsoleApp(frozen_engine(tmp_path, "halted"), start_engine=False)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await painted(pilot)
        for _ in range(4):
            app.notify("Nothing to close: no open position, working entry or approval.")
            await pilot.pause()
        assert len(app._notifications) == 1
        app.notify("Re-arm refused: a breaker still holds", severity="error")
        await pilot.pause()
        assert len(app._notifications) == 2
        await pilot.press("slash")  # a dialog the toasts covered half of, buttons included
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal) and len(app._notifications) == 0


async def test_order_statuses_follow_the_panes_width_from_the_first_paint(tmp_path):
    """The short status words are for a narrow pane only. A snapshot can be drawn before the first
    layout (a width of 0): the first resize draws the rows again, and so does every resize across
    the short-word width, even when the columns stay the same."""
    app = TradeConsoleApp(frozen_engine(tmp_path, "paper"), start_engine=False)

    def statuses() -> set[str]:
        table = app.orders.table
        at = [c.key.value for c in table.ordered_columns].index("status")
        return {table.cells(k)[at][0].strip() for k in table.row_keys}

    async with app.run_test(size=(160, 48)) as pilot:
        await painted(pilot)
        assert statuses() == {"submitted"}
        for size, words in [((80, 24), {"sent"}), ((100, 30), {"submitted"}), ((80, 24), {"sent"}),
                            ((160, 48), {"submitted"})]:
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await pilot.pause()
            assert statuses() == words, size


async def test_a_short_breaker_pane_says_what_it_cannot_show(tmp_path):
    """At 80x24 the pane has room for a few of the breakers: worst first, and on its last row a
    count of the rest with the worst state among them."""
    app = TradeConsoleApp(frozen_engine(tmp_path, "breakers"), start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await painted(pilot)
        pane = app.breakers
        rows, total = pane.content_size.height, len(pane._breakers)
        assert 1 < rows < total
        shown = [line.plain for line in pane.render().split()]
        assert len(shown) == rows
        ordered = sorted(pane._breakers, key=lambda b: {"tripped": 0, "critical": 1, "warning": 2}.get(b.state, 3))
        assert all(b.name.replace("_", " ") in line for b, line in zip(ordered, shown[:-1]))
        hidden = ordered[rows - 1:]
        worst = [f"{sum(1 for b in hidden if b.state == s)} {s}" for s in ("tripped", "critical", "warning")
                 if any(b.state == s for b in hidden)]
        assert shown[-1] == f"+{total - rows + 1} more: " + (", ".join(worst) or "all armed")
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        await pilot.pause()
        assert not any("more:" in line.plain for line in pane.render().split())


def test_spark_text_draws_the_whole_window_in_the_width_given():
    from console.widgets.pnl import spark_text

    assert spark_text((), 10) == "" and spark_text((1.0, 2.0), 0) == ""
    assert spark_text((5.0, 5.0, 5.0), 10) == "▄▄▄"  # flat: one level, never a fake trend
    assert spark_text((1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0), 8) == "▁▂▃▄▅▆▇█"
    # Sixteen samples in eight cells: each cell the higher of its two, the last cell the newest.
    assert spark_text(tuple(float(i) for i in range(16)), 8) == "▁▂▃▄▅▆▇█"
    assert len(spark_text(tuple(float(i % 7) for i in range(1000)), 23)) == 23


async def test_the_equity_curve_rides_in_the_pnl_title_when_its_row_is_given_away(tmp_path):
    app = TradeConsoleApp(frozen_engine(tmp_path, "paper"), start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await painted(pilot)
        pane = app.pnl
        assert not pane.spark.parent.display
        title = str(pane.border_title)
        assert title.startswith("P&L eq ") and len(title) - 7 <= pane.size.width - 12
        assert set(title[7:]) <= set("▁▂▃▄▅▆▇█") and len(set(title[7:])) > 1
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        await pilot.pause()
        assert pane.spark.parent.display and str(pane.border_title) == "P&L"


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_key_bar_shows_every_main_key_whole(tmp_path, size):
    """Down to 80 columns the bar names every key in reach, quit included (it was cut to 'q Qu…')."""
    from console.widgets.keybar import KeyBar

    app = TradeConsoleApp(frozen_engine(tmp_path, "paper"), start_engine=False)
    async with app.run_test(size=size) as pilot:
        await painted(pilot)
        bar = app.query_one(KeyBar)
        line = bar.render()
        assert line.cell_len <= bar.size.width and "…" not in line.plain
        for key, description in bar.hints():
            assert f"{key} {description}" in line.plain
        assert line.plain.rstrip().endswith("q Quit")
        assert ("  r Reject" in line.plain) == (size == (160, 48))  # the roomy gap where it fits
