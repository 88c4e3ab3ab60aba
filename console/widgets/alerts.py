"""Alert feed, newest first, coloured by severity; draws only as many alerts as fit."""
from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from engine.snapshot import AlertView, EngineSnapshot

from ._format import SEVERITY_STYLE, printable, short_time


class AlertPane(Widget):
    DEFAULT_CSS = """
    /* One row per item: a long line is cut with an ellipsis rather than pushing others away. */
    AlertPane { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Alerts"
        self._alerts: tuple[AlertView, ...] = ()

    def show(self, snap: EngineSnapshot) -> None:
        # The engine bounds the tuple, so comparing it whole each tick is cheap.
        if snap.alerts != self._alerts:
            self._alerts = snap.alerts
            self.refresh()

    def lines(self, limit: int | None = None) -> list[Text]:
        alerts = self._alerts if limit is None else self._alerts[:limit]
        out = []
        for a in alerts:
            style = SEVERITY_STYLE.get(a.severity, "bold red")
            line = Text.assemble(
                (short_time(a.ts), "dim"),
                " ",
                (f"{a.severity[:4].upper():<4}", style),
                " ",
                (a.kind, "bold"),
                " ",
                printable(a.message),
            )
            out.append(line)
        return out

    def render(self) -> Text:
        if not self._alerts:
            return Text("no alerts", style="dim")
        return Text("\n").join(self.lines(max(1, self.content_size.height)))
