"""Every console key, each with a stable id so a profile's `keys:` section can remap it.

`validate_keymap(profile.keys)` checks a remap before the app starts: an unknown id, an empty or
malformed key, a key two ids would share, or a key the console needs for navigation is a
`ValueError` naming the id, because a typo in `keys:` must never silently leave F12 unbound.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from textual.binding import Binding

BINDINGS: list[Binding] = [
    Binding("a", "approve", "Approve", id="approve"),
    Binding("r", "reject", "Reject", id="reject"),
    # Halt is checked from the App down (priority) so it fires even while a modal is open.
    Binding("f12", "halt", "HALT", id="halt", priority=True),
    # tmux and some terminals swallow F12; a second, separately remappable key means remapping
    # `halt` can never leave the operator without a fallback.
    Binding("ctrl+backslash", "halt", "HALT", id="halt_alt", priority=True, show=False, key_display="^\\"),
    Binding("c", "close_all", "Close all", id="close_all"),
    Binding("R", "rearm", "Re-arm", id="rearm"),
    Binding("question_mark", "help", "Help", id="help", key_display="?"),
    Binding("q", "quit", "Quit", id="quit"),
]

DESCRIPTIONS: dict[str, str] = {
    "approve": "approve the selected order in the approval queue",
    "reject": "reject the selected order (asks a reason; empty = operator)",
    "halt": "HALT: stop all new orders and cancel working entries; stops stay",
    "halt_alt": "HALT (second key, for terminals that eat F12)",
    "close_all": "close all positions at market (asks to confirm)",
    "rearm": "re-arm trading after a halt (asks a reason)",
    "help": "show this list",
    "quit": "quit (asks what to do with open orders and positions)",
}

BINDING_IDS: tuple[str, ...] = tuple(b.id for b in BINDINGS if b.id)

# Keys the screens need for navigation and for answering modals; binding an action to them would
# either never fire (the focused widget takes them first) or fire when the operator meant to move.
RESERVED_KEYS = frozenset(
    {"tab", "shift+tab", "enter", "escape", "up", "down", "left", "right",
     "pageup", "pagedown", "home", "end", "ctrl+c"}
)
_MODIFIERS = frozenset({"ctrl", "alt", "shift", "meta", "super", "hyper"})
_KEY_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class KeyRow:
    id: str
    keys: tuple[str, ...]
    description: str


def _normalise(binding_id: str, spec: object) -> tuple[str, ...]:
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"keys.{binding_id}: needs a key such as 'f11' or 'ctrl+x' (got {spec!r})")
    try:
        # make_bindings is Textual's own parser: it splits "a,b" and names single characters
        # ("?" -> "question_mark") exactly as key events will.
        keys = tuple(b.key for b in Binding.make_bindings([Binding(spec, binding_id)]))
    except Exception as exc:  # Textual raises its own InvalidBinding/BindingError types
        raise ValueError(f"keys.{binding_id}: invalid key {spec!r}: {exc}") from None
    for key in keys:
        *mods, name = key.split("+")
        if not name or not _KEY_NAME.match(name) or any(m not in _MODIFIERS for m in mods):
            raise ValueError(f"keys.{binding_id}: invalid key {key!r} (write e.g. 'f11', 'ctrl+x', 'y')")
        if key in RESERVED_KEYS:
            raise ValueError(f"keys.{binding_id}: {key!r} is reserved for navigation")
    return keys


def validate_keymap(keys: Mapping[str, str] | None) -> dict[str, str]:
    """Check a profile's remap; return it normalised for `App.set_keymap`."""
    keys = dict(keys or {})
    unknown = sorted(k for k in keys if k not in BINDING_IDS)
    if unknown:
        raise ValueError(
            f"keys: unknown binding id {unknown[0]!r}; known ids: {', '.join(BINDING_IDS)}"
        )
    resolved = {binding_id: _normalise(binding_id, spec) for binding_id, spec in keys.items()}
    owner: dict[str, str] = {}
    # Defaults first, so a clash is reported against the id the profile actually remapped.
    rows = sorted(effective_keys(resolved), key=lambda row: row.id in resolved)
    for row in rows:
        for key in row.keys:
            if key in owner and owner[key] != row.id:
                raise ValueError(f"keys.{row.id}: {key!r} is already bound to {owner[key]!r}")
            owner[key] = row.id
    return {binding_id: ",".join(k) for binding_id, k in resolved.items()}


def effective_keys(keymap: Mapping[str, str | tuple[str, ...]] | None = None) -> list[KeyRow]:
    """Each binding id with the keys it answers to after the remap, for help and validation."""
    keymap = keymap or {}
    rows: list[KeyRow] = []
    for binding in BINDINGS:
        assert binding.id is not None
        spec = keymap.get(binding.id)
        if spec is None:
            keys = tuple(b.key for b in Binding.make_bindings([binding]))
        elif isinstance(spec, str):
            keys = tuple(k for k in spec.split(",") if k)
        else:
            keys = tuple(spec)
        rows.append(KeyRow(binding.id, keys, DESCRIPTIONS[binding.id]))
    return rows


_DISPLAY = {"question_mark": "?", "backslash": "\\"}


def display_key(key: str) -> str:
    """How a key is written for a person: 'ctrl+backslash' -> 'ctrl+\\', 'question_mark' -> '?'."""
    *mods, name = key.split("+")
    return "+".join([*mods, _DISPLAY.get(name, name)])
