"""Dialogs. Each returns its answer through `dismiss`, so the app decides which engine command runs.

All of them work from the keyboard alone. App-level priority bindings (halt) still fire while any
of these is open, because Textual checks priority bindings from the App down.
"""
from __future__ import annotations

import re
from typing import Literal

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from .bindings import KeyRow, display_key
from .widgets._format import printable

DIALOG_CSS = """
{cls} {{ align: center middle; background: $background 60%; }}
{cls} > #dialog {{
    width: 72; max-width: 95%; height: auto; max-height: 90%;
    border: thick $primary; background: $surface; padding: 0 1;
}}
{cls} #dialog-title {{ text-style: bold; width: 1fr; padding-bottom: 1; }}
{cls} #dialog-body {{ width: 1fr; height: auto; max-height: 16; overflow-y: auto; }}
{cls} #dialog-error {{ color: $error; text-style: bold; height: auto; }}
{cls} #dialog-buttons {{ height: auto; align-horizontal: right; padding-top: 1; }}
{cls} #dialog-buttons > Button {{ margin-left: 2; min-width: 10; }}
{cls} #reason {{ margin: 1 0 0 0; border: none; background: $boost; }}
"""

ReasonMode = Literal["none", "optional", "required"]


def _label(text: str) -> Content:
    # Plain content: "[esc]" in a label is a key hint, not console markup to be swallowed.
    return Content(text)


class ConfirmModal(ModalScreen[str | None]):
    """Yes/no with an optional or required reason. Dismisses with None (cancel) or the reason ("" if none)."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="ConfirmModal")
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("n", "cancel", "No", show=False),
        Binding("y", "confirm", "Yes", show=False),
        Binding("enter", "confirm", "Confirm", show=False),
    ]

    def __init__(
        self,
        title: str,
        body: str | Text,
        *,
        reason: ReasonMode = "none",
        placeholder: str = "",
        confirm_label: str = "Confirm",
        cancel_label: str = "Cancel",
        danger: bool = False,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.reason_mode = reason
        self.placeholder = placeholder
        self.confirm_label = confirm_label
        self.cancel_label = cancel_label
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.body, id="dialog-body")
            if self.reason_mode != "none":
                yield Input(placeholder=self.placeholder or "reason", id="reason", compact=True)
            yield Static("", id="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button(_label(f"{self.cancel_label} [esc]"), id="cancel", compact=True)
                yield Button(
                    _label(f"{self.confirm_label} [enter]"),
                    id="confirm",
                    variant="error" if self.danger else "primary",
                    compact=True,
                )

    def on_mount(self) -> None:
        # Enter must mean "confirm" wherever focus starts, so focus the input or the confirm button.
        target = "#reason" if self.reason_mode != "none" else "#confirm"
        self.query_one(target).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def action_confirm(self) -> None:
        reason = ""
        if self.reason_mode != "none":
            reason = self.query_one("#reason", Input).value.strip()
            if self.reason_mode == "required" and not reason:
                self.query_one("#dialog-error", Static).update("A reason is required (it goes in the journal).")
                self.query_one("#reason", Input).focus()
                return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuitModal(ModalScreen[str | None]):
    """Quitting with exposure: dismisses with "halt", "close" or None (stay)."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="QuitModal") + """
    QuitModal #dialog-buttons { layout: vertical; align-horizontal: left; }
    QuitModal #dialog-buttons > Button { width: 1fr; margin: 0 0 1 0; }
    """
    BINDINGS = [
        Binding("h", "choose('halt')", "Halt and quit"),
        Binding("c", "choose('close')", "Close all then quit"),
        Binding("escape,n", "choose('')", "Cancel"),
    ]

    def __init__(self, working_orders: int, positions: int) -> None:
        super().__init__()
        self.working_orders = working_orders
        self.positions = positions

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Quit with exposure?", id="dialog-title")
            yield Static(
                f"{self.working_orders} working or pending entry order(s), {self.positions} open position(s).",
                id="dialog-body",
            )
            with Vertical(id="dialog-buttons"):
                yield Button(
                    _label("[h] Halt and quit (positions keep their stops)"),
                    id="halt",
                    variant="warning",
                    compact=True,
                )
                yield Button(_label("[c] Close all then quit"), id="close", variant="error", compact=True)
                yield Button(_label("[esc] Cancel"), id="cancel", variant="primary", compact=True)

    def on_mount(self) -> None:
        # The safe default under an accidental enter is to stay.
        self.query_one("#cancel").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose("" if event.button.id == "cancel" else str(event.button.id))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)


class HelpModal(ModalScreen[None]):
    """Every binding with its id (the name to use under `keys:` in a profile) and current keys."""

    DEFAULT_CSS = DIALOG_CSS.format(cls="HelpModal")
    BINDINGS = [Binding("escape,enter,question_mark,q", "close", "Close")]

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
        with Vertical(id="dialog"):
            yield Label("Keys  (remap under keys: in the profile, by id)", id="dialog-title")
            yield Static(table, id="dialog-body")
            with Horizontal(id="dialog-buttons"):
                yield Button(_label("Close [esc]"), id="close", variant="primary", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
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
    BINDINGS = [Binding("escape,enter", "close", "Close")]

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
