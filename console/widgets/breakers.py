"""Circuit-breaker lights: one line per breaker, worst first so a small terminal still shows it."""
from __future__ import annotations

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

    def lines(self) -> list[Text]:
        ordered = sorted(self._breakers, key=lambda b: _RANK.get(b.state, -1))
        out = []
        for b in ordered:
            # Unknown states sort first and show red: better a false alarm than a hidden one.
            colour = LIGHT.get(b.state, "bold red")
            line = Text.assemble(("● ", colour), (b.text, "bold" if b.state != "armed" else ""))
            out.append(line)
        return out

    def render(self) -> Text:
        lines = self.lines()
        if not lines:
            return Text("no breakers reported", style="dim")
        return Text("\n").join(lines)
