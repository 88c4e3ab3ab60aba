"""Circuit-breaker lights: one line per breaker, worst first so a small terminal still shows it."""
from __future__ import annotations

import re

from rich.text import Text
from textual.widget import Widget

from engine.snapshot import BreakerView, EngineSnapshot

LIGHT = {
    "armed": "green",
    "warning": "yellow",
    "critical": "dark_orange",
    "tripped": "bold red",
}
# Display order only (worst on top); the states and their meaning come from the engine.
_RANK = {"tripped": 0, "critical": 1, "warning": 2, "armed": 3}


_SHARE = re.compile(r" \d+ %$")  # the engine's trailing share of the limit, "62 %"


def fitted(b: BreakerView, width: int | None) -> str:
    """The engine's line for `b` if it fits in `width` (with the light), else a shorter form:
    its padding closed up, then value / limit alone, then the name and the share of the limit."""
    room = None if width is None else width - 2
    if room is None or len(b.text) <= room:
        return b.text
    compact = " ".join(b.text.split())
    if len(compact) <= room:
        return compact
    figures = _SHARE.sub("", compact)
    if figures != compact and len(figures) <= room:
        return figures
    name = b.name.replace("_", " ")
    if b.limit > 0:  # the share of the limit used, as the engine's own line states it
        return f"{name} {int(b.value / b.limit * 100)} %"
    return compact


class BreakerPane(Widget):
    DEFAULT_CSS = """
    /* One row per item: a long line is cut with an ellipsis rather than pushing others away. */
    BreakerPane { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Breakers"
        self._breakers: tuple[BreakerView, ...] = ()

    def show(self, snap: EngineSnapshot) -> None:
        if snap.breakers != self._breakers:
            self._breakers = snap.breakers
            tripped = sum(1 for b in snap.breakers if b.state == "tripped")
            self.border_title = f"Breakers ({tripped} tripped)" if tripped else "Breakers"
            self.refresh()

    def lines(self, width: int | None = None) -> list[Text]:
        ordered = sorted(self._breakers, key=lambda b: _RANK.get(b.state, -1))
        out = []
        for b in ordered:
            # Unknown states sort first and show red: better a false alarm than a hidden one.
            colour = LIGHT.get(b.state, "bold red")
            line = Text.assemble(("● ", colour), (fitted(b, width), "bold" if b.state != "armed" else ""))
            out.append(line)
        return out

    def render(self) -> Text:
        lines = self.lines(self.content_size.width or None)
        if not lines:
            return Text("no breakers reported", style="dim")
        rows = self.content_size.height
        if 0 < rows < len(lines):
            # A short pane (3 rows at 80x24, eleven breakers) shows the worst first; its last row
            # names the rest by count and state, so no warning is out of sight unannounced.
            lines = lines[:rows - 1] + [self.hidden_line(rows - 1)]
        return Text("\n").join(lines)

    def hidden_line(self, shown: int) -> Text:
        hidden = sorted(self._breakers, key=lambda b: _RANK.get(b.state, -1))[shown:]
        states = [b.state for b in hidden]
        worst = [f"{states.count(s)} {s}" for s in ("tripped", "critical", "warning") if s in states]
        return Text(f"+{len(hidden)} more: " + (", ".join(worst) if worst else "all armed"),
                    style="bold yellow" if worst else "dim")
