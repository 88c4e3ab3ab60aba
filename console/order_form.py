"""The manual order form: symbol, side, quantity or risk in $, type, limit price, stop, note.

While the operator types, the engine's what-if (`Engine.preview`) shows the order the fields make
and every gate check with its numbers, refreshed as fields change and once a second as prices
move. Sending (ctrl+s or the button, never a stray enter) calls `Engine.submit_manual`, which
gates it again and queues it for approval when the profile asks for approval; in live mode a
confirmation comes first.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

from engine.operator import ManualOrderSpec, ManualPreview

from .bindings import FORM_BINDINGS
from .modals import DIALOG_CSS, ConfirmModal, _label
from .widgets._format import money, price, qty
from .widgets.choice import ChoiceField

if TYPE_CHECKING:
    from engine.engine import Engine

PREVIEW_DEBOUNCE = 0.15  # seconds after the last keystroke before asking the engine
PREVIEW_EVERY = 1.0  # the verdict follows the market this often while the form is open
_FIELDS = ("qty", "risk", "limit", "stop")


def render_preview(p: ManualPreview) -> Text:
    """The verdict first (what the operator needs), then the order, the sizing and every check."""
    text = Text()
    if p.problem is not None:
        text.append("✗ NOT AN ORDER  ", style="bold red")
        text.append(p.problem)
        return text
    refusal = p.refusal
    if refusal is None:
        text.append("✓ THE GATE WOULD PASS IT", style="bold green")
    else:
        text.append("✗ ", style="bold red")
        text.append(refusal, style="bold red")
    s = p.spec
    text.append(f"\n{s.side.upper()} {qty(p.quantity)} {s.symbol} {s.type} @ {price(p.price)}", style="bold")
    text.append(f"  stop {price(p.stop_price)}  notional {money(p.notional)}")
    if p.loss_at_stop is not None:
        text.append(f"  loss at stop {money(p.loss_at_stop)}")
    text.append("\nsizing  ", style="dim")
    text.append(p.sizing)
    # Failures first: on a small terminal the lines that fit are the ones that say why not.
    checks = sorted(p.decision.checks, key=lambda c: c.passed) if p.decision is not None else ()
    width = max((len(c.name) for c in checks), default=0)
    for c in checks:
        mark, style = ("✓", "green") if c.passed else ("✗", "bold red")
        text.append("\n ")
        text.append(mark, style=style)
        text.append(f" {c.name:<{width}}", style="" if c.passed else style)
        text.append(f"  {c.detail}", style="dim" if c.passed else "")
    return text


class OrderEntryScreen(ModalScreen[None]):
    DEFAULT_CSS = DIALOG_CSS.format(cls="OrderEntryScreen") + """
    OrderEntryScreen > #dialog { width: 100; height: 100%; max-height: 100%; }
    OrderEntryScreen.-live > #dialog { border: thick ansi_red; }
    OrderEntryScreen .fields { height: 2; }
    OrderEntryScreen .field { width: 1fr; height: 2; padding-right: 1; }
    OrderEntryScreen .field > Label { color: $text-muted; height: 1; }
    OrderEntryScreen .field Input, OrderEntryScreen .field ChoiceField { margin: 0; }
    OrderEntryScreen #dialog-error { display: none; }
    OrderEntryScreen #dialog-error.-shown { display: block; }
    OrderEntryScreen #verdict-scroll { height: 1fr; border-top: solid $primary-darken-2; }
    """
    BINDINGS = FORM_BINDINGS

    def __init__(self, engine: "Engine", symbol: str | None = None) -> None:
        super().__init__(classes="-live" if engine.profile.mode == "live" else None)
        self.engine = engine
        self.symbols = list(engine.profile.symbols)
        self.symbol = symbol if symbol in self.symbols else self.symbols[0]
        self._ticker: Timer | None = None
        self.preview: ManualPreview | None = None
        self.previews = 0
        self.verdict = Static("", id="verdict")
        self._debounce: Timer | None = None
        self._sending = False

    def compose(self) -> ComposeResult:
        def field(label: str, widget) -> Vertical:
            return Vertical(Label(label), widget, classes="field")

        mode = self.engine.profile.mode.upper()
        with Vertical(id="dialog"):
            yield Label(f"New order  ({mode}: what-if below is the gate's live verdict)", id="dialog-title")
            yield Horizontal(
                field("symbol", Input(self.symbol, id="symbol", compact=True,
                                      suggester=SuggestFromList(self.symbols, case_sensitive=False))),
                field("side (←/→)", ChoiceField(("buy", "sell"), id="side")),
                field("type (←/→)", ChoiceField(("market", "limit"), id="type")),
                classes="fields")
            yield Horizontal(
                field("quantity", Input(placeholder="or risk $", id="qty", compact=True)),
                field("risk $", Input(placeholder="profile %", id="risk", compact=True)),
                field("limit price", Input(placeholder="market", id="limit", compact=True)),
                field("stop", Input(placeholder="default %", id="stop", compact=True)),
                classes="fields")
            yield Horizontal(field("note (journaled with the order)", Input(id="note", compact=True)), classes="fields")
            with VerticalScroll(id="verdict-scroll"):
                yield self.verdict
            yield Static("", id="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button(_label("Cancel [esc]"), id="cancel", compact=True)
                yield Button(_label("Send [ctrl+s]"), id="send", variant="error" if mode == "LIVE" else "primary",
                             compact=True)

    def on_mount(self) -> None:
        self._ticker = self.set_interval(PREVIEW_EVERY, self.refresh_preview, name="what-if")

    # The app builds the form once and keeps it (building two dozen widgets is the slowest thing a
    # key can ask for); each opening prepares it, each closing stops its clock.
    def prepare(self, symbol: str | None) -> None:
        if symbol in self.symbols:
            self.query_one("#symbol", Input).value = symbol
        error = self.query_one("#dialog-error", Static)
        error.update("")
        error.remove_class("-shown")

    def on_screen_resume(self) -> None:
        self.query_one("#qty").focus()
        self.refresh_preview()
        self._ticker.resume()

    def on_screen_suspend(self) -> None:
        self._ticker.pause()

    def _clear_ticket(self) -> None:
        # Sent: the amounts go, so a second ctrl+s cannot send the same order twice.
        for name in (*_FIELDS, "note"):
            self.query_one(f"#{name}", Input).value = ""

    # -- reading the fields ---------------------------------------------------------------------
    def _value(self, widget_id: str) -> str:
        return str(self.query_one(f"#{widget_id}").value).strip()

    def spec(self) -> ManualOrderSpec | str:
        """The fields as a spec, or what is wrong with the typing (the engine judges the rest)."""
        numbers: dict[str, Decimal | None] = {}
        for name in _FIELDS:
            text = self._value(name).replace(",", "").lstrip("$")
            try:
                numbers[name] = Decimal(text) if text else None
            except InvalidOperation:
                return f"{name}: {text!r} is not a number"
        return ManualOrderSpec(self._value("symbol").upper(), self._value("side"), numbers["qty"], numbers["risk"],
                               self._value("type"), numbers["limit"], numbers["stop"], self._value("note"))

    # -- the live verdict -----------------------------------------------------------------------
    def on_input_changed(self, event: Input.Changed) -> None:
        self._schedule()

    def on_choice_field_changed(self, event: ChoiceField.Changed) -> None:
        self._schedule()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # enter refreshes the verdict; sending takes ctrl+s or the button
        self.refresh_preview()

    def _schedule(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(PREVIEW_DEBOUNCE, self.refresh_preview)

    def refresh_preview(self) -> None:
        spec = self.spec()
        if isinstance(spec, str):
            self.preview = None
            self.verdict.update(Text(f"✗ {spec}", style="bold red"))
            return
        try:
            self.preview = self.engine.preview(spec)
        except Exception as exc:  # the form must stay usable; the error is the operator's to see
            self.preview = None
            self.verdict.update(Text(f"what-if failed: {exc}", style="bold red"))
            return
        self.previews += 1
        self.verdict.update(render_preview(self.preview))

    # -- sending --------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_send() if event.button.id == "send" else self.action_cancel()

    def action_send(self) -> None:
        spec = self.spec()
        if isinstance(spec, str):
            self._error(spec)
            return
        if self._sending:
            return
        if self.engine.profile.mode == "live":
            self.app.push_screen(
                ConfirmModal("Send a LIVE order", render_preview(self.engine.preview(spec)),
                             confirm_label="Send live order", danger=True),
                lambda answer: answer is not None and self._send(spec))
        else:
            self._send(spec)

    def _send(self, spec: ManualOrderSpec) -> None:
        self._sending = True

        async def submit() -> None:
            try:
                refusal = await self.engine.submit_manual(spec)
            finally:
                self._sending = False
            if refusal:
                self._error(f"Not sent: {refusal}")
                self.refresh_preview()
                return
            queued = self.engine.profile.approval.required
            self.app.report(None, f"{spec.side} {spec.symbol}: " + ("waiting for approval" if queued else "sent"))
            self._clear_ticket()
            self.dismiss(None)

        self.app.command(submit(), "manual order")

    def _error(self, message: str) -> None:
        error = self.query_one("#dialog-error", Static)
        error.update(Text(message))
        error.add_class("-shown")

    def action_cancel(self) -> None:
        self.dismiss(None)
