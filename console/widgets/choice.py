"""A one-line choice among a few values: left/right (or space) cycles, the value shows in place.

Used in the order form and the note dialog instead of Textual's Select, whose drop-down overlay
is a dozen widgets to build every time a dialog opens; a dialog that opens in one frame keeps
the keys pressed right after it from waiting.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.widget import Widget

from ..bindings import FIELD_BINDINGS


class ChoiceField(Widget, can_focus=True):
    DEFAULT_CSS = """
    ChoiceField { height: 1; width: 1fr; background: $boost; }
    ChoiceField:focus { background: $accent 30%; text-style: bold; }
    """
    BINDINGS = FIELD_BINDINGS

    @dataclass
    class Changed(Message):
        choice: "ChoiceField"
        value: str

        @property
        def control(self) -> "ChoiceField":
            return self.choice

    def __init__(self, values: Sequence[str], value: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not values:
            raise ValueError("a ChoiceField needs at least one value")
        self.values = tuple(values)
        self._index = self.values.index(value) if value in self.values else 0

    @property
    def value(self) -> str:
        return self.values[self._index]

    @value.setter
    def value(self, value: str) -> None:
        self._index = self.values.index(value)
        self.refresh()
        self.post_message(self.Changed(self, self.value))

    def action_step(self, delta: int) -> None:
        self.value = self.values[(self._index + delta) % len(self.values)]

    def render(self) -> Text:
        return Text.assemble(("◂ ", "dim"), self.value, (" ▸", "dim"))
