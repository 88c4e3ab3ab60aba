"""Capital gauge: capital deployed against the binding cap (total or stage), cash against the
reserve floor. Both numbers and both limits come from the engine's snapshot."""
from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from engine.snapshot import CapitalView, EngineSnapshot

from ._format import level_style, meter, money


class CapitalPane(Widget):
    DEFAULT_CSS = """
    CapitalPane { height: 2; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Capital"
        self.capital: CapitalView | None = None

    def show(self, snap: EngineSnapshot) -> None:
        if snap.capital != self.capital:
            self.capital = snap.capital
            c = snap.capital
            if c is not None:
                # Short: at 80x24 the pane is 33 wide, and "max capital $100,000" was cut mid-number.
                which = "stage cap" if c.stage_cap is not None and c.cap == c.stage_cap else "cap"
                self.border_title = f"Capital ({which} {money(c.cap)})"
            self.refresh()

    def lines(self, width: int | None = None) -> list[Text]:
        c = self.capital
        if c is None:
            return [Text("capital not reported", style="dim")]
        ratio = float(c.utilisation_pct) / 100
        deployed = Text.assemble(
            ("used ", "dim"), (meter(ratio, 8), level_style(ratio)),
            f" {c.utilisation_pct:4.1f}% ", (money(c.deployed), "bold"))
        short = c.cash < c.reserve_min
        cash = Text.assemble(
            ("cash ", "dim"), (money(c.cash), "bold red" if short else "bold"),
            ("  reserve ≥ ", "dim"), money(c.reserve_min),
            ("  BELOW RESERVE" if short else "", "bold red"))
        if width is not None and cash.cell_len > width:
            # A narrow column (80x24) cut the reserve mid-number: the same figures, fewer words.
            cash = Text.assemble(
                ("cash ", "dim"), (money(c.cash), "bold red" if short else "bold"),
                ("  min ", "dim"), money(c.reserve_min), (" BELOW" if short else "", "bold red"))
        return [deployed, cash]

    def render(self) -> Text:
        return Text("\n").join(self.lines(self.content_size.width or None))
