"""The latest go / no-go verdict of the profile's stage: one line under the P&L, a click (or the
performance key) away from the performance screen, which shows every criterion.

The verdict is engine/analytics/readiness.py's; the console decides nothing. Measuring it reads
the whole journal and bootstraps it, seconds on a long record, so it runs in a child process
(console/readiness_probe.py) that a worker awaits: never on the loop, never under its GIL. It runs
START_DELAY after the line is mounted (the first screen and the engine's warm-up go first), then
every RECHECK_SECONDS, and soon after the snapshot's count of closed trades changes (not sooner
than MIN_GAP after the previous check). Per refresh tick the line costs one integer comparison.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import events
from textual.timer import Timer
from textual.widgets import Static

from engine.snapshot import EngineSnapshot

from ..readiness_probe import Probe
from ._format import printable

if TYPE_CHECKING:
    from engine.engine import Engine

log = logging.getLogger("tradeconsole.console")

START_DELAY = 2.0
RECHECK_SECONDS = 300.0
MIN_GAP = 30.0
TIMER_FLOOR = 0.01  # Textual's timers divide by their delay: never schedule one at 0
VERDICT_STYLE = {"GO": "bold black on green", "NO-GO": "bold white on red"}


def journal_of(engine: Any) -> str | None:
    """The file the engine journals to; None for an engine without one (a test's frozen engine)."""
    path = getattr(getattr(engine, "journal", None), "path", None)
    return None if path is None else str(path)


class ReadinessLine(Static):
    """`go/no-go paper  NO-GO  2/10 m▸`; click it to open the performance screen."""

    # Under the P&L in the side column, it reads as that pane's last line: the same left rule and inset.
    DEFAULT_CSS = """
    ReadinessLine { height: 1; width: 1fr; text-wrap: nowrap; text-overflow: ellipsis;
                    border-left: vkey $primary-darken-3; padding-left: 1; }
    ReadinessLine:hover { background: $boost; }
    """

    # The app sets this from the effective keymap, so the hint never names a remapped key.
    key: str = "m"

    def __init__(self, engine: "Engine", **kwargs) -> None:
        super().__init__("", **kwargs)
        self.engine = engine
        self.journal = journal_of(engine)
        self.verdict: dict[str, Any] | None = None  # summary() of readiness.py, or {stage, error}
        self.checked_at: datetime | None = None  # wall clock of the last answer
        self.checks = 0
        self._trades: int | None = None
        self._probe = Probe()
        self._busy = False
        self._again = False
        self._started = float("-inf")
        self._soon_timer: Timer | None = None

    @property
    def stage(self) -> str:
        """The stage the verdict judges: the one `promote` judges (readiness.judged_stage), so a
        paper profile's line says paper whatever its `stage:` rehearses."""
        v = self.verdict
        if v is not None and v.get("stage"):
            return str(v["stage"])
        profile = self.engine.profile
        if getattr(profile, "mode", None) == "paper":
            return "paper"
        return str(getattr(profile, "stage", ""))

    def on_mount(self) -> None:
        if self.journal is None:
            self._paint(Text("no journal", style="dim"))
            return
        self._paint(Text("checking…", style="dim"))
        self.set_timer(max(START_DELAY, TIMER_FLOOR), self.check)
        self.set_interval(RECHECK_SECONDS, self.check)

    def on_unmount(self) -> None:
        self._probe.stop()

    def show(self, snap: EngineSnapshot) -> None:
        trades = None if snap.performance is None else snap.performance.trades
        if trades == self._trades:
            return
        first = self._trades is None
        self._trades = trades
        if not first and self.journal is not None:
            self._check_soon()

    async def on_click(self, event: events.Click) -> None:
        event.stop()
        await self.app.run_action("performance")

    # -- checking --------------------------------------------------------------------------------
    def _check_soon(self) -> None:
        """A trade closed: the record changed. Check again, but not within MIN_GAP of the last."""
        if self._soon_timer is not None:
            return
        wait = max(TIMER_FLOOR, self._started + MIN_GAP - time.monotonic())
        self._soon_timer = self.set_timer(wait, self._soon_due)

    def _soon_due(self) -> None:
        self._soon_timer = None
        self.check()

    def check(self) -> None:
        """Start a check unless one is running (then one more follows it)."""
        if self.journal is None:
            return
        if self._busy:
            self._again = True
            return
        self._busy = True
        self._started = time.monotonic()
        self.run_worker(self._measure, name="readiness", group="readiness", exit_on_error=False)

    async def _measure(self) -> None:
        try:
            answer = await self._probe.ask(self.engine.profile, self.journal)
        except Exception as exc:  # the child could not even be started
            log.exception("readiness check failed")
            answer = {"stage": self.stage, "error": f"readiness check failed: {exc}"}
        finally:
            self._busy = False
        self.verdict = answer
        self.checked_at = datetime.now(timezone.utc)
        self.checks += 1
        self._paint(self.line())
        if self._again:
            self._again = False
            self._check_soon()

    # -- drawing ---------------------------------------------------------------------------------
    def line(self) -> Text:
        v = self.verdict
        if v is None:
            return Text("checking…", style="dim")
        if v.get("error"):
            return Text(printable(v["error"]), style="dim")
        # Narrow on purpose: the side column is 32 cells on an 80-column terminal.
        return Text.assemble((f" {v['verdict']} ", VERDICT_STYLE.get(v["verdict"], "bold")),
                             f" {v['passed']}/{v['total']} ", (f"{self.key}▸", "dim"))

    def _paint(self, body: Text) -> None:
        label = Text.assemble(("go/no-go ", "dim"), (self.stage, "bold"), " ")
        self.update(label + body, layout=False)

    @property
    def text(self) -> str:
        return str(self.content)


def criteria_table(verdict: dict[str, Any] | None, checked_at: datetime | None) -> Table | Text:
    """Every criterion of the stage as the readiness command prints it, for the performance screen."""
    if verdict is None:
        return Text("the go / no-go check has not answered yet", style="dim")
    if verdict.get("error"):
        return Text(printable(verdict["error"]), style="dim")
    when = f", checked {checked_at:%H:%M:%S}Z" if checked_at else ""
    t = Table(box=None, expand=True, padding=(0, 1),
              title=Text.assemble((f" {verdict['verdict']} ", VERDICT_STYLE.get(verdict["verdict"], "bold")),
                                  f"  {verdict['passed']}/{verdict['total']} criteria pass (stage "
                                  f"{verdict['stage']}{when})"),
              title_justify="left")
    t.add_column("")
    t.add_column("criterion", no_wrap=True)
    t.add_column("measured", justify="right", no_wrap=True)
    t.add_column("threshold", no_wrap=True)
    t.add_column("detail", style="dim")
    for c in verdict["criteria"]:
        mark = Text("✓", style="green") if c["passed"] else Text("✗", style="bold red")
        t.add_row(mark, c["label"], _measured(c["measured"]), c["threshold"], printable(c["detail"] or ""))
    return t


def _measured(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:,.2f}"
    return str(x)
