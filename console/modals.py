"""Dialogs. Each returns its answer through `dismiss`, so the app decides which engine command runs.

One reusable `ConfirmModal` carries every dangerous action (close-all, re-arm, close position,
quit with exposure) and every one-line prompt (reject reason, new stop, log search). All work
from the keyboard alone. App-level priority bindings (halt) still fire while any of these is
open, because Textual checks priority bindings from the App down.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from .bindings import (CLOSE_ALL_BINDINGS, CLOSE_BINDINGS, CONFIRM_BINDINGS, QUIT_BINDINGS, RECONCILE_BINDINGS, KeyRow,
                       display_key)
from .widgets._format import printable
from .widgets.choice import ChoiceField

# An opaque backdrop: a translucent one makes Textual re-render and tint the whole screen beneath
# on every frame the dialog is open, which at 160x48 costs more than the dialog itself (and keys
# wait behind it). What the operator must know to answer is in the dialog's own text.
DIALOG_CSS = """
{cls} {{ align: center middle; background: $background; }}
{cls} > #dialog {{
    width: 72; max-width: 95%; height: auto; max-height: 90%;
    border: thick $primary; background: $surface; padding: 0 1;
}}
{cls}.-danger > #dialog {{ border: thick $error; }}
{cls} #dialog-title {{ text-style: bold; width: 1fr; padding-bottom: 1; }}
{cls} #dialog-body {{ width: 1fr; height: auto; max-height: 16; overflow-y: auto; }}
{cls} #dialog-error {{ color: $error; text-style: bold; height: auto; }}
{cls} #dialog-buttons {{ height: auto; align-horizontal: right; padding-top: 1; }}
{cls} #dialog-buttons > Button {{ margin-left: 2; min-width: 10; }}
{cls} #dialog-buttons.-choices {{ layout: vertical; align-horizontal: left; }}
{cls} #dialog-buttons.-choices > Button {{ width: 1fr; margin: 0 0 1 0; }}
{cls} Input, {cls} ChoiceField {{ margin: 1 0 0 0; }}
{cls} Input {{ border: none; background: $boost; }}
"""

ReasonMode = Literal["none", "optional", "required"]


def _label(text: str) -> Content:
    # Plain content: "[esc]" in a label is a key hint, not console markup to be swallowed.
    return Content(text)


@dataclass(frozen=True)
class Choice:
    """One answer of a multiple-choice confirmation: the button, its key hint, what it returns."""

    value: str
    label: str
    variant: str = "default"


class ConfirmModal(ModalScreen[str | None]):
    """Yes/no, optionally with a typed answer (a reason, a price, a search text), or a list of
    choices. Dismisses with None (cancel), the typed text ("" if none asked), or the chosen value."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="ConfirmModal")
    BINDINGS = CONFIRM_BINDINGS

    def __init__(
        self,
        title: str,
        body: str | Text,
        *,
        reason: ReasonMode = "none",
        placeholder: str = "",
        value: str = "",
        validate: Callable[[str], str | None] | None = None,
        confirm_label: str = "Confirm",
        cancel_label: str = "Cancel",
        danger: bool = False,
        choices: Sequence[Choice] = (),
    ) -> None:
        super().__init__(classes="-danger" if danger else None)
        self.title_text = title
        self.body = body
        self.reason_mode = reason
        self.placeholder = placeholder
        self.value = value
        self.validate = validate
        self.confirm_label = confirm_label
        self.cancel_label = cancel_label
        self.danger = danger
        self.choices = tuple(choices)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.body, id="dialog-body")
            if self.reason_mode != "none":
                yield Input(self.value, placeholder=self.placeholder or "reason", id="reason", compact=True)
            yield Static("", id="dialog-error")
            if self.choices:
                with Vertical(id="dialog-buttons", classes="-choices"):
                    for choice in self.choices:
                        yield Button(_label(choice.label), id=f"choice-{choice.value}", variant=choice.variant,
                                     compact=True)
                    yield Button(_label(f"[esc] {self.cancel_label}"), id="cancel", variant="primary", compact=True)
                return
            with Horizontal(id="dialog-buttons"):
                yield Button(_label(f"{self.cancel_label} [esc]"), id="cancel", compact=True)
                yield Button(
                    _label(f"{self.confirm_label} [enter]"),
                    id="confirm",
                    variant="error" if self.danger else "primary",
                    compact=True,
                )

    def on_screen_resume(self) -> None:
        # Toasts sit above every screen: left there, they hid half the dialog and its buttons.
        self.app.clear_notifications()

    def on_mount(self) -> None:
        # Enter must mean "confirm" wherever focus starts; with choices, the safe default is to stay.
        if self.choices:
            self.query_one("#cancel").focus()
        else:
            self.query_one("#reason" if self.reason_mode != "none" else "#confirm").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button.id or ""
        if button.startswith("choice-"):
            self.action_choose(button.removeprefix("choice-"))
        elif button == "confirm":
            self.action_confirm()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def action_confirm(self) -> None:
        if self.choices:
            if isinstance(self.focused, Button) and self.focused.id and self.focused.id.startswith("choice-"):
                self.action_choose(self.focused.id.removeprefix("choice-"))
            else:
                self.action_cancel()  # enter on "stay" (or nothing chosen) stays
            return
        reason = ""
        if self.reason_mode != "none":
            reason = self.query_one("#reason", Input).value.strip()
            problem = None
            if self.reason_mode == "required" and not reason:
                problem = "An answer is required (it goes in the journal)."
            elif reason and self.validate is not None:
                problem = self.validate(reason)
            if problem:
                self.query_one("#dialog-error", Static).update(problem)
                self.query_one("#reason", Input).focus()
                return
        self.dismiss(reason)

    def action_choose(self, value: str) -> None:
        self.dismiss(value or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuitModal(ConfirmModal):
    """Quitting with exposure: the confirm dialog with two choices and their keys."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="QuitModal")
    BINDINGS = QUIT_BINDINGS

    def __init__(self, working_orders: int, positions: int) -> None:
        super().__init__(
            "Quit with exposure?",
            f"{working_orders} working or pending entry order(s), {positions} open position(s).",
            danger=True,
            choices=(Choice("halt", "[h] Halt and quit (positions keep their stops)", "warning"),
                     Choice("close", "[c] Close all then quit", "error")),
        )
        self.working_orders = working_orders
        self.positions = positions


class CloseAllModal(ConfirmModal):
    """Close-all with a choice of what the strategy does next: after a flatten with auto-send on,
    the strategy re-entered within a minute, which read as "close-all did not work"."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="CloseAllModal")
    BINDINGS = CLOSE_ALL_BINDINGS

    def __init__(self, working_orders: int, positions: int, *, auto_send: bool, pause_key: str = "P",
                 choice_keys: tuple[str, str] = ("p", "t")) -> None:
        who = ("auto-send is on: the strategy's next entry goes out without approval" if auto_send
               else "the strategy's next entry still waits for approval")
        super().__init__(
            "Close all positions",
            f"Flatten {positions} open position(s) at market and cancel their stops; {working_orders} working or"
            f" pending entry order(s) are cancelled.\nAfterwards {who} unless entries are paused"
            f" ({pause_key} resumes them).",
            danger=True,
            choices=(Choice("pause", f"[{choice_keys[0]}] Close all and pause entries (nothing re-enters)", "error"),
                     Choice("trade", f"[{choice_keys[1]}] Close all, the strategy keeps trading", "warning")),
        )


class ReconcileModal(ConfirmModal):
    """One reconciliation difference and the answers the engine offers for it, each on its key."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="ReconcileModal")
    BINDINGS = RECONCILE_BINDINGS

    def __init__(self, title: str, body: str, answers: Sequence[tuple[str, str, str]]) -> None:
        """`answers`: (value, key, label) for each answer offered, in order."""
        super().__init__(title, body, cancel_label="Later", danger=True,
                         choices=[Choice(value, f"[{key}] {label}", "error" if value == "cancel" else "default")
                                  for value, key, label in answers])

    def action_choose(self, value: str) -> None:
        # Every answer has its key, but only those offered for this difference may be taken.
        if any(c.value == value for c in self.choices):
            super().action_choose(value)


class HelpModal(ModalScreen[None]):
    """Every binding with its id (the name to use under `keys:` in a profile) and current keys."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="HelpModal") + """
    HelpModal > #dialog { width: 100; height: 100%; max-height: 100%; }
    HelpModal #dialog-body { height: 1fr; max-height: 100%; }
    """
    BINDINGS = CLOSE_BINDINGS

    def __init__(self, rows: list[KeyRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, padding=(0, 1))
        table.add_column("id", style="cyan", no_wrap=True)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what it does")
        for row in self.rows:
            table.add_row(row.id, ", ".join(display_key(k) for k in row.keys), row.description)
        table.add_row("", "tab / shift+tab", "move between panes; arrows move inside one")
        table.add_row("", "p / t", "close-all dialog: close and pause entries / close and keep trading")
        with Vertical(id="dialog"):
            yield Label("Keys  (remap under keys: in the profile, by id; arrows scroll)", id="dialog-title")
            with VerticalScroll(id="dialog-body"):
                yield Static(table)
            with Horizontal(id="dialog-buttons"):
                yield Button(_label("Close [esc]"), id="close", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#dialog-body").focus()  # so the arrows and page keys scroll the list

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


NOTE_KINDS = ("day", "trade", "alert")


class NoteModal(ModalScreen[tuple[str, str, str] | None]):
    """A journal note: kind, what it refers to (a symbol, an order, an alert #), the text.
    Dismisses with (kind, ref, text) or None."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="NoteModal")
    BINDINGS = CONFIRM_BINDINGS

    def __init__(self, kind: str = "day", ref: str = "") -> None:
        super().__init__()
        self.kind = kind
        self.ref = ref

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Note for the journal", id="dialog-title")
            yield ChoiceField(NOTE_KINDS, self.kind, id="note-kind")
            yield Input(self.ref, placeholder="refers to (symbol, order id, alert #; optional)", id="note-ref",
                        compact=True)
            yield Input(placeholder="note text", id="note-text", compact=True)
            yield Static("", id="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button(_label("Cancel [esc]"), id="cancel", compact=True)
                yield Button(_label("Save [enter]"), id="confirm", variant="primary", compact=True)

    def prepare(self, kind: str, ref: str) -> None:
        """Ready for a new note (the app keeps one dialog and reopens it)."""
        self.query_one("#note-kind", ChoiceField).value = kind
        self.query_one("#note-ref", Input).value = ref
        self.query_one("#note-text", Input).value = ""
        self.query_one("#dialog-error", Static).update("")

    def on_screen_resume(self) -> None:
        self.query_one("#note-text").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_confirm() if event.button.id == "confirm" else self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def action_confirm(self) -> None:
        text = self.query_one("#note-text", Input).value.strip()
        if not text:
            self.query_one("#dialog-error", Static).update("A note needs some text.")
            return
        kind = self.query_one("#note-kind", ChoiceField).value
        self.dismiss((kind, self.query_one("#note-ref", Input).value.strip(), text))

    def action_cancel(self) -> None:
        self.dismiss(None)


_SECRET_PATTERNS = (
    # user:password@ in URLs (apprise and venue URLs carry credentials this way)
    (re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.I), r"\g<pre>***@"),
    # key=value / key: value for anything that looks like a credential
    (
        re.compile(
            r"(?P<k>(api[_-]?)?(key|secret|token|password|passwd|passphrase|signature))"
            r"(?P<sep>[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;]+",
            re.I,
        ),
        r"\g<k>\g<sep>***",
    ),
    # bearer tokens in echoed headers
    (re.compile(r"(?P<b>bearer\s+)[A-Za-z0-9._~+/=-]+", re.I), r"\g<b>***"),
)


def scrub(message: str) -> str:
    """Mask credential-shaped substrings: an exception text may echo a URL or a request."""
    for pattern, repl in _SECRET_PATTERNS:
        message = pattern.sub(repl, message)
    return message


def describe_error(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    text = str(error).strip()
    name = type(error).__name__
    return scrub(f"{name}: {text}" if text else name)


class ErrorModal(ModalScreen[None]):
    """An error the operator must see; no traceback, and credentials masked."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="ErrorModal") + """
    ErrorModal > #dialog { border: thick $error; }
    """
    BINDINGS = CLOSE_BINDINGS

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = printable(scrub(message))

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text(self.title_text, style="bold red"), id="dialog-title")
            yield Static(Text(self.message), id="dialog-body")
            yield Static("The engine log has the details.", id="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button(_label("OK [enter]"), id="ok", variant="error", compact=True)

    def on_mount(self) -> None:
        self.query_one("#ok").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
