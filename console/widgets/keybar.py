"""The key bar at the bottom: the keys that act right now (the focused table's row keys included),
as they are mapped after the profile's `keys:` remap.

One line of text redrawn when the bindings change, instead of Textual's Footer, which rebuilds a
widget per key on every focus or screen change; under a busy market that rebuild was the largest
single delay a key press could wait behind.
"""
from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        if self.is_attached and screen is self.screen:
            self.refresh()

    def hints(self) -> list[tuple[str, str]]:
        """(key as shown, what it does) for every shown binding in reach, one per action."""
        seen: set[str] = set()
        out = []
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if not binding.show or not enabled or binding.action in seen:
                continue
            seen.add(binding.action)
            out.append((self.app.get_key_display(binding), binding.description))
        return out

    def render(self) -> Text:
        hints = self.hints()
        text = self._line(hints, "  ")
        if text.cell_len > self.size.width:
            # At 80 columns the last key (quit) was cut to "q Qu…": one space between keys first.
            text = self._line(hints, " ")
        return text

    @staticmethod
    def _line(hints: list[tuple[str, str]], gap: str) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (key, description) in enumerate(hints):
            text.append((gap if i else " ") + key, style="bold")
            text.append(f" {description}", style="dim")
        return text
