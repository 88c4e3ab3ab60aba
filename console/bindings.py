"""Every console key, each with a stable id so a profile's `keys:` section can remap it.

Bindings live in scopes. `app` keys work on the main screen (the halt keys everywhere, as
priority bindings); `positions` / `orders` keys act on the focused table's row and shadow app
keys while it has the focus; each modal has its own scope, where only the app's priority keys
reach. `keymap_problems(profile.keys)` checks a remap before anything opens (check-config and run,
console/cli.py), one line per problem naming `keys.<id>`: an unknown id; an empty or malformed
key; a key no terminal sends as that name (checked against Textual's own tables: the named keys
its terminal parser produces, and the name it gives each character); a key a terminal turns into
another (ctrl+h arrives as backspace, ctrl+i as tab, ctrl+m as enter, and Textual's documented
aliases); a key two ids in reach of each other would share, or that Textual's own bindings hold;
a navigation key outside a modal; and, for the priority halt keys, a key typed in a text field.
A typo in `keys:` must never silently leave F12 unbound. `validate_keymap` raises them.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from textual.app import App
from textual.binding import Binding
from textual.keys import KEY_ALIASES, KEY_NAME_REPLACEMENTS, REPLACED_KEYS, _character_to_key, key_to_character
from textual.screen import Screen

BINDINGS: list[Binding] = [
    Binding("a", "approve", "Approve", id="approve"),
    Binding("r", "reject", "Reject", id="reject"),
    # Halt is checked from the App down (priority) so it fires even while a modal is open.
    Binding("f12", "halt('halt')", "HALT", id="halt", priority=True),
    # tmux and some terminals swallow F12; a second, separately remappable key means remapping
    # `halt` can never leave the operator without a fallback.
    Binding("ctrl+backslash", "halt('halt_alt')", "HALT", id="halt_alt", priority=True, show=False, key_display="^\\"),
    Binding("c", "close_all", "Close all", id="close_all"),
    Binding("R", "rearm", "Re-arm", id="rearm"),
    Binding("o", "new_order", "Order", id="new_order", show=False),
    Binding("p", "pause_symbol", "Pause", id="pause_symbol", show=False),
    Binding("P", "pause_all", "Pause all", id="pause_all", show=False),
    Binding("n", "note", "Note", id="note", show=False),
    Binding("k", "ack_alert", "Ack alert", id="ack_alert", show=False),
    Binding("v", "alert_filter", "Alert filter", id="alert_filter", show=False),
    Binding("e", "alerts", "Alerts", id="alerts", show=False),
    Binding("t", "history", "History", id="history", show=False),
    Binding("m", "performance", "Performance", id="performance", show=False),
    Binding("l", "log_pause", "Log pause", id="log_pause", show=False),
    Binding("L", "log_level", "Log level", id="log_level", show=False),
    Binding("slash", "log_search", "Log search", id="log_search", show=False, key_display="/"),
    Binding("colon,ctrl+p", "command_palette", "Commands", id="palette", key_display=":"),
    Binding("question_mark", "help", "Help", id="help", key_display="?"),
    Binding("q", "quit", "Quit", id="quit"),
]

# Per-row keys: active while that table has the focus, acting on its selected row.
POSITION_BINDINGS: list[Binding] = [
    Binding("x", "close_position", "Close position", id="close_position"),
    Binding("s", "tighten_stop", "Move stop", id="tighten_stop"),
]
ORDER_BINDINGS: list[Binding] = [
    Binding("d", "cancel_order", "Cancel order", id="cancel_order"),
]
CONFIRM_BINDINGS: list[Binding] = [
    Binding("escape,n", "cancel", "Cancel", id="confirm_no"),
    Binding("y,enter", "confirm", "Confirm", id="confirm_yes", show=False),
]
QUIT_BINDINGS: list[Binding] = [
    Binding("h", "choose('halt')", "Halt and quit", id="quit_halt"),
    Binding("c", "choose('close')", "Close all then quit", id="quit_close"),
]
CLOSE_ALL_BINDINGS: list[Binding] = [  # the close-all dialog: what the strategy does afterwards
    Binding("p", "choose('pause')", "Close all and pause entries", id="close_all_pause"),
    Binding("t", "choose('trade')", "Close all, keep trading", id="close_all_trade"),
]
RECONCILE_BINDINGS: list[Binding] = [  # the reconciliation dialog: one key per answer it offers
    Binding("a", "choose('adopt')", "Adopt", id="reconcile_adopt"),
    Binding("b", "choose('book')", "Book the fill", id="reconcile_book"),
    Binding("x", "choose('cancel')", "Cancel at venue", id="reconcile_cancel"),
    Binding("m", "choose('mark_closed')", "Mark closed", id="reconcile_mark_closed"),
]
CLOSE_BINDINGS: list[Binding] = [  # help, error and the read-only screens
    Binding("escape,enter,q,question_mark", "close", "Close", id="close_view"),
]
FIELD_BINDINGS: list[Binding] = [  # a one-line choice in the order form and the note dialog
    Binding("right,space", "step(1)", "Next", id="choice_next", show=False),
    Binding("left", "step(-1)", "Previous", id="choice_prev", show=False),
]
FORM_BINDINGS: list[Binding] = [
    Binding("ctrl+s", "send", "Send order", id="form_send"),
    Binding("escape", "cancel", "Cancel", id="form_cancel"),
]

SCOPES: dict[str, list[Binding]] = {
    "app": BINDINGS,
    "positions": POSITION_BINDINGS,
    "orders": ORDER_BINDINGS,
    "confirm": CONFIRM_BINDINGS,
    "quit": QUIT_BINDINGS,
    "close_all": CLOSE_ALL_BINDINGS,
    "reconcile": RECONCILE_BINDINGS,
    "view": CLOSE_BINDINGS,
    "form": FORM_BINDINGS,
    "field": FIELD_BINDINGS,
}
# Which scopes are in reach of one another when a key is pressed: a widget scope sees the app's
# keys (it shadows them), a modal only the app's priority keys; the quit, close-all and reconcile
# dialogs are confirm dialogs.
_TABLE_SCOPES = frozenset({"positions", "orders"})
_MODAL_SCOPES = frozenset({"confirm", "quit", "close_all", "reconcile", "view", "form", "field"})

DESCRIPTIONS: dict[str, str] = {
    "approve": "approve the selected order in the approval queue",
    "reject": "reject the selected order (asks a reason; empty = operator)",
    "halt": "HALT: stop all new orders and cancel working entries; stops stay",
    "halt_alt": "HALT (second key, for terminals that eat F12)",
    "close_all": "close all positions at market (asks to confirm, and whether entries pause)",
    "rearm": "re-arm trading after a halt or a tripped breaker (asks a reason)",
    "new_order": "manual order form, with the live what-if verdict of every check",
    "pause_symbol": "pause / resume entries in the selected row's symbol (exits keep working)",
    "pause_all": "pause / resume entries in every symbol",
    "note": "write a note in the journal (day, trade or alert)",
    "ack_alert": "acknowledge the newest unacknowledged critical alert",
    "alert_filter": "alert feed: all -> warning and up -> critical only",
    "alerts": "every alert in full, newest first (the feed cuts long ones at its edge)",
    "history": "trade history, from the journal",
    "performance": "performance summary against the stage's targets, with every go/no-go criterion",
    "log_pause": "log tail: pause / resume following",
    "log_level": "log tail: minimum level DEBUG -> INFO -> WARNING -> ERROR",
    "log_search": "log tail: show only lines containing a text (empty clears)",
    "palette": "command palette: every operator command by name",
    "help": "show this list",
    "quit": "quit (asks what to do with open orders and positions)",
    "close_position": "positions table: close the selected position at market (asks to confirm)",
    "tighten_stop": "positions table: move the selected position's stop (asks the new price)",
    "cancel_order": "orders table: cancel the selected working entry order",
    "confirm_no": "dialogs: cancel",
    "confirm_yes": "dialogs: confirm",
    "quit_halt": "quit dialog: halt and quit (positions keep their stops)",
    "quit_close": "quit dialog: close all, then quit",
    "close_all_pause": "close-all dialog: close all and pause entries in every symbol (P resumes)",
    "close_all_trade": "close-all dialog: close all; the strategy keeps trading",
    "reconcile_adopt": "reconciliation dialog: adopt the venue's version as ours",
    "reconcile_book": "reconciliation dialog: book what the venue filled while the engine was down",
    "reconcile_cancel": "reconciliation dialog: cancel the order at the venue",
    "reconcile_mark_closed": "reconciliation dialog: mark it closed in the journal",
    "close_view": "help, error, history and performance: close",
    "form_send": "order form: send the order",
    "form_cancel": "order form: close without sending",
    "choice_next": "order form and note: next value of a choice (side, type, kind)",
    "choice_prev": "order form and note: previous value of a choice",
}

SCOPE_OF: dict[str, str] = {b.id: scope for scope, bs in SCOPES.items() for b in bs if b.id}
BINDING_IDS: tuple[str, ...] = tuple(SCOPE_OF)

# Keys the screens need for navigation and for answering modals; binding an action to them would
# either never fire (the focused widget takes them first) or fire when the operator meant to move.
RESERVED_KEYS = frozenset(
    {"tab", "shift+tab", "enter", "escape", "up", "down", "left", "right",
     "pageup", "pagedown", "home", "end", "ctrl+c"}
)
_MODIFIERS = frozenset({"ctrl", "alt", "shift", "meta", "super", "hyper"})
_KEY_NAME = re.compile(r"^[A-Za-z0-9_]+$")
# The halt keys are priority bindings: they fire before any widget, text fields included.
_HALT_IDS = frozenset({"halt", "halt_alt"})


def _textual_name(character: str) -> str:
    """The key name Textual gives a character ('?' -> 'question_mark', '/' -> 'slash')."""
    name = character if character.isalnum() else _character_to_key(character)
    return KEY_NAME_REPLACEMENTS.get(name, name)


def _terminal_tables() -> tuple[frozenset[str], dict[str, str]]:
    """From Textual's own terminal parser table: every named key a terminal's bytes are read as,
    and each ctrl+<character> whose byte is read as another key (ctrl+h -> backspace)."""
    from textual._ansi_sequences import ANSI_SEQUENCES_KEYS

    named = frozenset(k.value for v in ANSI_SEQUENCES_KEYS.values() if isinstance(v, tuple) for k in v
                      if not k.value.startswith("<"))
    turned: dict[str, str] = {}
    for byte in range(0x20):
        read = ANSI_SEQUENCES_KEYS.get(chr(byte))
        written = f"ctrl+{_textual_name(chr(byte ^ 0x40).lower())}"
        if isinstance(read, tuple) and read and read[0].value != written:
            turned[written] = f"reaches the console as {read[0].value!r} (a terminal sends both as one code)"
    # Keys Textual documents as one and the same (ctrl+j and newline, the Enter of some terminals).
    for key, aliases in KEY_ALIASES.items():
        for alias in aliases:
            for one, other in ((alias, key), (key, alias)) if "+" in key else ((alias, key),):
                turned.setdefault(one, f"is the same code as {other!r} to a terminal (Textual reads them as one key)")
    return named, turned


TERMINAL_KEYS, TURNED_KEYS = _terminal_tables()


def _textual_bindings(bindings) -> dict[str, str]:
    return {b.key: b.action for b in Binding.make_bindings(bindings)}


# Textual's own keys on every app and screen (ctrl+q quits); a remap onto one would race it.
TEXTUAL_KEYS = {k: a for k, a in _textual_bindings([*App.BINDINGS, *Screen.BINDINGS]).items()
                if k not in RESERVED_KEYS}


@functools.cache
def text_field_keys() -> dict[str, str]:
    """What a text field (Textual's Input: reject reasons, notes, the order form) does with a key.
    Looked up only for a remapped halt key: the dialogs' widgets are not imported at start."""
    from textual.widgets import Input

    return _textual_bindings(Input.BINDINGS)


def _character_key(name: str) -> str | None:
    """The character an unmodified key name types ('question_mark' -> '?'), or None."""
    character = key_to_character(REPLACED_KEYS.get(name, name))
    if character is None or len(character) != 1 or not character.isprintable():
        return None
    return character if _textual_name(character) == name else None


def _reachable(key: str) -> bool:
    """A key Textual can read from a terminal under this very name."""
    if key in TERMINAL_KEYS:
        return True
    *mods, name = key.split("+")
    if not mods:
        return _character_key(name) is not None
    # Escape then a letter or digit: Textual reads alt+x (alt+shift+x for X).
    return mods in (["alt"], ["alt", "shift"]) and len(name) == 1 and name.isalnum() and name == name.lower()


def _key_problem(binding_id: str, key: str, modal: bool) -> str | None:
    *mods, name = key.split("+")
    if not name or not _KEY_NAME.match(name) or any(m not in _MODIFIERS for m in mods):
        return f"invalid key {key!r} (write e.g. 'f11', 'ctrl+x', 'y')"
    # Inside a dialog enter and escape are the natural answers, and a choice field steps with
    # the arrows; elsewhere these keys navigate.
    allowed = ("enter", "escape", "left", "right") if modal else ()
    if key in RESERVED_KEYS and key not in allowed:
        return f"{key!r} is reserved for navigation"
    if key in TURNED_KEYS:
        return f"{key!r} {TURNED_KEYS[key]}"
    if not _reachable(key):
        return f"{key!r} is not a key a terminal sends (Textual knows no such key; e.g. 'f11', 'ctrl+x', 'y')"
    if key in TEXTUAL_KEYS:
        return f"{key!r} is Textual's own key ({TEXTUAL_KEYS[key]})"
    if binding_id in _HALT_IDS:
        if not mods and (_character_key(name) is not None or name == "space"):
            return f"{key!r} types a character: halt fires first, even while typing in a text field"
        if key in text_field_keys():
            return f"{key!r} edits text fields ({text_field_keys()[key]}): halt would fire while typing"
    return None


@dataclass(frozen=True)
class KeyRow:
    id: str
    keys: tuple[str, ...]
    description: str
    scope: str = "app"


def _normalise(binding_id: str, spec: object) -> tuple[tuple[str, ...], list[str]]:
    """The keys a spec names, and what is wrong with them (one line each)."""
    if not isinstance(spec, str) or not spec.strip():
        return (), [f"keys.{binding_id}: needs a key such as 'f11' or 'ctrl+x' (got {spec!r})"]
    try:
        # make_bindings is Textual's own parser: it splits "a,b" and names single characters
        # ("?" -> "question_mark") exactly as key events will.
        keys = tuple(b.key for b in Binding.make_bindings([Binding(spec, binding_id)]))
    except Exception as exc:  # Textual raises its own InvalidBinding/BindingError types
        return (), [f"keys.{binding_id}: invalid key {spec!r}: {exc}"]
    modal = SCOPE_OF[binding_id] in _MODAL_SCOPES
    problems = [f"keys.{binding_id}: {p}" for key in keys if (p := _key_problem(binding_id, key, modal))]
    return keys, problems


def _in_reach(a: KeyRow, b: KeyRow, priority: frozenset[str]) -> bool:
    if a.scope == b.scope:
        return True
    scopes = {a.scope, b.scope}
    if "app" in scopes and scopes & _TABLE_SCOPES:
        return True  # a table key shadows the app key while the table has the focus
    if scopes == _TABLE_SCOPES:
        return False  # only one table has the focus at a time
    if scopes in ({"confirm", "quit"}, {"confirm", "close_all"}, {"confirm", "reconcile"}, {"field", "form"},
                  {"field", "confirm"}):
        return True  # the quit, close-all and reconcile dialogs are confirm dialogs; a choice field sits in a dialog
    # Any other pair meets only through the app's priority keys, which reach every screen.
    return (a.scope == "app" and a.id in priority) or (b.scope == "app" and b.id in priority)


def keymap_problems(keys: Mapping[str, str] | None) -> list[str]:
    """What is wrong with a profile's remap, one line per problem (`keys.<id>: ...`); [] if none."""
    keys = dict(keys or {})
    unknown = sorted(k for k in keys if k not in BINDING_IDS)
    problems = [f"keys.{u}: no such binding id; known ids: {', '.join(BINDING_IDS)}" for u in unknown]
    resolved: dict[str, tuple[str, ...]] = {}
    for binding_id, spec in keys.items():
        if binding_id in BINDING_IDS:
            resolved[binding_id], found = _normalise(binding_id, spec)
            problems += found
    if problems:
        return problems
    priority = frozenset(b.id for b in BINDINGS if b.priority and b.id)
    owner: dict[str, list[KeyRow]] = {}
    # Defaults first, so a clash is reported against the id the profile actually remapped. Two
    # ids in reach sharing a key include halt and halt_alt: they stay two distinct keys.
    rows = sorted(effective_keys(resolved), key=lambda row: row.id in resolved)
    for row in rows:
        for key in row.keys:
            clash = next((o for o in owner.get(key, []) if o.id != row.id and _in_reach(row, o, priority)), None)
            if clash is not None:
                problems.append(f"keys.{row.id}: {key!r} is already bound to {clash.id!r}")
            owner.setdefault(key, []).append(row)
    return problems


def validate_keymap(keys: Mapping[str, str] | None) -> dict[str, str]:
    """Check a profile's remap; return it normalised for `App.set_keymap`. Its problems are a
    ValueError, one line each."""
    problems = keymap_problems(keys)
    if problems:
        raise ValueError("\n".join(problems))
    resolved = {binding_id: _normalise(binding_id, spec)[0] for binding_id, spec in dict(keys or {}).items()}
    return {binding_id: ",".join(k) for binding_id, k in resolved.items()}


def effective_keys(keymap: Mapping[str, str | tuple[str, ...]] | None = None) -> list[KeyRow]:
    """Each binding id with the keys it answers to after the remap, for help and validation."""
    keymap = keymap or {}
    rows: list[KeyRow] = []
    for scope, bindings in SCOPES.items():
        for binding in bindings:
            assert binding.id is not None
            spec = keymap.get(binding.id)
            if spec is None:
                keys = tuple(b.key for b in Binding.make_bindings([binding]))
            elif isinstance(spec, str):
                keys = tuple(k for k in spec.split(",") if k)
            else:
                keys = tuple(spec)
            rows.append(KeyRow(binding.id, keys, DESCRIPTIONS[binding.id], scope))
    return rows


_DISPLAY = {"question_mark": "?", "backslash": "\\", "slash": "/", "colon": ":"}


def display_key(key: str) -> str:
    """How a key is written for a person: 'ctrl+backslash' -> 'ctrl+\\', 'question_mark' -> '?'."""
    *mods, name = key.split("+")
    return "+".join([*mods, _DISPLAY.get(name, name)])
