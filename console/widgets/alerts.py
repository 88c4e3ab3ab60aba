"""Alert feed: unacknowledged critical alerts pinned on top, then the rest newest first, coloured
by severity and filtered by a minimum severity; draws only as many lines as fit.

Critical alerts stay until acknowledged (the engine keeps them in the snapshot past the bounded
feed); the acknowledge key answers the newest one.
"""
from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from engine.snapshot import AlertView, EngineSnapshot

from ._format import SEVERITY_STYLE, printable, short_time

# Minimum severity shown, in the order the filter key cycles through them.
FILTERS = ("info", "warning", "critical")
_RANK = {"info": 0, "warning": 1, "critical": 2}


class AlertPane(Widget):
    DEFAULT_CSS = """
    /* One row per item: a long line is cut with an ellipsis rather than pushing others away. */
    AlertPane { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Alerts"
        self._alerts: tuple[AlertView, ...] = ()
        self.min_severity = "info"

    def show(self, snap: EngineSnapshot) -> None:
        # The engine bounds the tuple, so comparing it whole each tick is cheap.
        if snap.alerts != self._alerts:
            self._alerts = snap.alerts
            self._retitle()
            self.refresh()

    def cycle_filter(self) -> str:
        self.min_severity = FILTERS[(FILTERS.index(self.min_severity) + 1) % len(FILTERS)]
        self._retitle()
        self.refresh()
        return self.min_severity

    def needs_ack(self) -> list[AlertView]:
        """Unacknowledged critical alerts, newest first."""
        return [a for a in self._alerts if a.severity == "critical" and not a.acknowledged]

    def _retitle(self) -> None:
        waiting = len(self.needs_ack())
        parts = ["Alerts"]
        if waiting:
            parts.append(f"({waiting} to acknowledge)")
        if self.min_severity != "info":
            parts.append(f"[{self.min_severity}+]")
        self.border_title = " ".join(parts)

    def visible(self) -> list[AlertView]:
        pinned = self.needs_ack()
        pinned_ids = {a.seq for a in pinned}
        floor = _RANK[self.min_severity]
        rest = [a for a in self._alerts if a.seq not in pinned_ids and _RANK.get(a.severity, 2) >= floor]
        return pinned + rest

    def lines(self, limit: int | None = None) -> list[Text]:
        alerts = self.visible()
        if limit is not None:
            alerts = alerts[:limit]
        out = []
        for a in alerts:
            style = SEVERITY_STYLE.get(a.severity, "bold red")
            pinned = a.severity == "critical" and not a.acknowledged
            line = Text.assemble(
                ("!" if pinned else " ", "bold red" if pinned else ""),
                (short_time(a.ts), "dim"),
                " ",
                (f"{a.severity[:4].upper():<4}", style),
                " ",
                (a.kind, "bold"),
                " ",
                (printable(a.message), "dim" if a.acknowledged else ""),
            )
            out.append(line)
        return out

    def render(self) -> Text:
        lines = self.lines(max(1, self.content_size.height))
        if not lines:
            return Text("no alerts" if not self._alerts else f"no alerts at {self.min_severity} or above",
                        style="dim")
        return Text("\n").join(lines)
