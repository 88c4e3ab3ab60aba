"""Full screens over the main one: trade history (read from the journal), the performance
summary and the alerts in full (from the snapshot). All are modal, so only the app's priority keys
(halt) reach through: nothing typed while reading history can approve or close anything by accident.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static, TabbedContent, TabPane

from engine.snapshot import AlertView, EngineSnapshot, HistoryView

from .bindings import CLOSE_BINDINGS
from .widgets import KeyBar
from .widgets._format import (DASH, SEVERITY_STYLE, money, money_text, price, printable, qty, short_time,
                              signed_style)
from .widgets._table import CachedTable, cell
from .widgets.readiness import criteria_table

if TYPE_CHECKING:
    from engine.engine import Engine

SCREEN_CSS = """
{cls} {{ background: $background; }}
{cls} > Vertical {{ border: thick $primary; padding: 0 1; }}
{cls} #screen-title {{ text-style: bold; width: 1fr; }}
{cls} #screen-status {{ color: $text-muted; height: 1; }}
"""

class ReadingScreen(ModalScreen[None]):
    """A full screen to read: Escape (or enter, q, ?) closes it; only priority keys reach through."""

    BINDINGS = CLOSE_BINDINGS

    def action_close(self) -> None:
        self.dismiss(None)




HISTORY_ROWS = 300  # newest fills and notes shown; the journal keeps them all
ROWS_PER_TURN = 50
FILL_COLUMNS = ("time", "symbol", "side", "qty", "price", "fee", "realized", "for", "after", "order")
NOTE_COLUMNS = ("time", "kind", "ref", "note")


class HistoryScreen(ReadingScreen):
    """Fills and notes from the journal, newest first; read in a worker, so the keys never wait."""

    DEFAULT_CSS = SCREEN_CSS.format(cls="HistoryScreen") + """
    HistoryScreen DataTable { height: 1fr; }
    """

    def __init__(self, engine: "Engine") -> None:
        super().__init__()
        self.engine = engine
        self.history: HistoryView | None = None
        # Rows arrive a chunk per loop turn; a CachedTable renders the rows on screen once, not
        # again for every chunk added below them.
        self.fills = CachedTable(id="history-fills", zebra_stripes=True, cursor_type="row")
        self.notes = CachedTable(id="history-notes", zebra_stripes=True, cursor_type="row")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Trade history (journal)", id="screen-title")
            yield Static("reading the journal…", id="screen-status")
            with TabbedContent():
                with TabPane("Fills", id="tab-fills"):
                    yield self.fills
                with TabPane("Notes", id="tab-notes"):
                    yield self.notes
        yield KeyBar()

    def on_mount(self) -> None:
        self.fills.add_columns(*FILL_COLUMNS)
        self.notes.add_columns(*NOTE_COLUMNS)

    def on_screen_resume(self) -> None:
        # Kept by the app between openings; the journal is read afresh each time.
        self.history = None
        self.query_one("#screen-status", Static).update("reading the journal…")
        self.run_worker(self._load, name="trade history", group="history", exclusive=True, exit_on_error=False)

    async def _load(self) -> None:
        history = await self.engine.trade_history(HISTORY_ROWS)
        self.fills.clear()
        self.notes.clear()
        for start in range(0, len(history.fills), ROWS_PER_TURN):
            # A few rows per turn of the loop: a long history must not hold a key press back.
            with self.app.batch_update():
                for f in history.fills[start:start + ROWS_PER_TURN]:
                    self._add_fill(f)
            await asyncio.sleep(0)
        with self.app.batch_update():
            for n in history.notes:
                row = (cell(short_time(n.ts)), cell(n.kind), cell(n.ref or DASH), cell(printable(n.text)))
                self.notes.add_cells(row, key=str(n.seq))
        self.history = history
        shown = len(history.fills)
        more = f" (newest {shown} of {history.total_fills})" if history.total_fills > shown else ""
        self.query_one("#screen-status", Static).update(
            f"{history.total_fills} fill(s){more}, {len(history.notes)} note(s)")

    def _add_fill(self, f) -> None:
        self.fills.add_cells((
            cell(short_time(f.ts)), cell(f.symbol), cell(f.side, "green" if f.side == "buy" else "magenta"),
            cell(qty(f.quantity), right=True), cell(price(f.price), right=True), cell(f"{f.fee:,.2f}", right=True),
            cell(f"{f.realized:,.2f}", signed_style(f.realized), right=True), cell(f.purpose),
            cell("flat" if f.position_after == 0 else qty(f.position_after), right=True),
            cell(f.client_order_id, "dim")), key=str(f.seq))



def performance_table(snap: EngineSnapshot) -> Table:
    perf, cap = snap.performance, snap.capital
    t = Table(box=None, expand=True, padding=(0, 2), show_header=False)
    t.add_column(style="dim", no_wrap=True)
    t.add_column(no_wrap=True)
    t.add_column(style="dim")
    stage = snap.pnl_since_stage_start
    t.add_row("stage", Text(snap.stage, style="bold"),
              f"since {snap.stage_started:%Y-%m-%d %H:%M}Z" if snap.stage_started else "")
    t.add_row("P&L since stage start", money_text(stage) if stage is not None else Text(DASH), "")
    t.add_row("P&L today / week", Text.assemble(money_text(snap.pnl_today), " / ", money_text(snap.pnl_week)), "")
    if perf is not None:
        t.add_row("closed trades", f"{perf.trades}  ({perf.wins} won, {perf.losses} lost)", "")
        t.add_row("win rate", DASH if perf.win_rate_pct is None else f"{perf.win_rate_pct:.1f}%", "")
        t.add_row("profit factor", DASH if perf.profit_factor is None else f"{perf.profit_factor:.2f}",
                  f"gross {money(perf.gross_profit)} / {money(perf.gross_loss)}")
        t.add_row("net of fees", money_text(perf.net), f"largest win {money(perf.largest_win)}, "
                  f"largest loss {money(perf.largest_loss)}")
        t.add_row("drawdown", f"{perf.drawdown_pct:.2f}% now", f"worst seen {perf.max_drawdown_pct:.2f}%")
    if cap is not None:
        t.add_row("capital deployed", f"{money(cap.deployed)} of {money(cap.cap)}", f"{cap.utilisation_pct:.1f}%")
        t.add_row("cash", money(cap.cash), f"reserve floor {money(cap.reserve_min)} ({cap.reserve_pct}%)")
    return t


def targets_table(snap: EngineSnapshot) -> Table | Text:
    perf = snap.performance
    if perf is None or not perf.targets:
        return Text(f"no readiness targets for stage {snap.stage}", style="dim")
    t = Table(box=None, expand=True, padding=(0, 1))
    t.add_column("")
    t.add_column("target", no_wrap=True)
    t.add_column("now against the target")
    for check in perf.targets:
        mark = Text("✓", style="green") if check.passed else Text("✗", style="bold red")
        t.add_row(mark, check.name, check.detail)
    return t


class PerformanceScreen(ReadingScreen):
    """Win rate, profit factor, drawdown and capital against the stage's targets; live."""

    DEFAULT_CSS = SCREEN_CSS.format(cls="PerformanceScreen")

    def __init__(self) -> None:
        super().__init__()
        self.summary = Static("waiting for the engine…", id="perf-summary")
        self.targets = Static("", id="perf-targets")
        self.criteria = Static("", id="perf-criteria")
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Performance against the stage's targets", id="screen-title")
            with VerticalScroll():
                yield self.summary
                yield Label("\nreadiness targets", classes="dim")
                yield self.targets
                yield Label("\ngo / no-go, every criterion (as `tradeconsole readiness`)", classes="dim")
                yield self.criteria
        yield KeyBar()

    def show(self, snap: EngineSnapshot) -> None:
        # The verdict is the main screen's readiness line's latest answer; its count of answers
        # tells a new one from the one already drawn.
        line = getattr(self.app, "readiness_line", None)
        checks = None if line is None else line.checks
        key = (snap.performance, snap.capital, snap.pnl_since_stage_start, snap.pnl_today, snap.pnl_week, checks)
        if key == self._shown:
            return
        self._shown = key
        self.summary.update(performance_table(snap))
        self.targets.update(targets_table(snap))
        self.criteria.update(criteria_table(line.verdict if line else None, line.checked_at if line else None))



def alert_text(alerts: tuple[AlertView, ...] | list[AlertView]) -> Text:
    """Every alert whole, newest first, wrapped to the screen: the feed pane cuts each at its edge."""
    out = Text()
    for a in sorted(alerts, key=lambda a: a.seq, reverse=True):
        pinned = a.severity == "critical" and not a.acknowledged
        out.append("! " if pinned else "  ", "bold red" if pinned else "")
        out.append(f"{a.ts:%Y-%m-%d %H:%M:%S}  ", "dim")
        out.append(f"{a.severity.upper():<10}", SEVERITY_STYLE.get(a.severity, "bold red"))
        out.append(f"{a.kind}", "bold")
        out.append("  (to acknowledge)\n" if pinned else "\n", "bold red" if pinned else "")
        out.append(f"    {printable(a.message)}\n\n")
    if not alerts:
        out.append("No alerts yet.", "dim")
    return out


class AlertsScreen(ReadingScreen):
    """The alert feed in full: a long reason (a halt's, a venue's refusal) is cut in the pane."""

    DEFAULT_CSS = SCREEN_CSS.format(cls="AlertsScreen")

    def __init__(self) -> None:
        super().__init__()
        self.body = Static("waiting for the engine…", id="alerts-full")
        self._shown: tuple[AlertView, ...] | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Alerts in full, newest first: the latest 50 and every unacknowledged critical "
                        "(the journal keeps them all)", id="screen-title")
            with VerticalScroll():
                yield self.body
        yield KeyBar()

    def show(self, snap: EngineSnapshot) -> None:
        if snap.alerts == self._shown:
            return
        self._shown = snap.alerts
        self.body.update(alert_text(snap.alerts))

