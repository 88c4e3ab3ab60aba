"""The command palette (`:` or ctrl+p): every operator command by name, and the per-symbol,
per-position and per-order ones for what is on the screen now.

Each entry calls the same app action its key calls, so a command chosen here takes the same
dialog and the same single engine command; the palette adds reach, not a second path.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.markup import escape

from engine.risk.checks_operator import PauseBook

from .bindings import DESCRIPTIONS, display_key, effective_keys

# (title, action name, binding id) for the commands that need no target.
GLOBAL_COMMANDS = (
    ("Approve selected order", "approve", "approve"),
    ("Reject selected order", "reject", "reject"),
    ("HALT: stop all new orders", "halt", "halt"),
    ("Close all positions", "close_all", "close_all"),
    ("Re-arm trading", "rearm", "rearm"),
    ("New order", "new_order", "new_order"),
    ("Pause or resume all entries", "pause_all", "pause_all"),
    ("Add a note to the journal", "note", "note"),
    ("Acknowledge critical alert", "ack_alert", "ack_alert"),
    ("Alert filter: next severity", "alert_filter", "alert_filter"),
    ("Alerts in full", "alerts", "alerts"),
    ("Trade history", "history", "history"),
    ("Performance summary", "performance", "performance"),
    ("Log: pause or resume", "log_pause", "log_pause"),
    ("Log: minimum level", "log_level", "log_level"),
    ("Log: search", "log_search", "log_search"),
    ("Help: every key", "help", "help"),
    ("Quit", "quit", "quit"),
)


class OperatorCommandsProvider(Provider):
    def _commands(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        app = self.app
        keys = {row.id: row.keys for row in effective_keys(getattr(app, "keymap", {}))}

        def hint(binding_id: str) -> str:
            k = keys.get(binding_id)
            # Help text is markup: a key such as "/" or "[" must not read as a tag.
            return escape(f"{', '.join(display_key(x) for x in k)}  {DESCRIPTIONS[binding_id]}") if k else ""

        for title, action, binding_id in GLOBAL_COMMANDS:
            yield title, getattr(app, f"action_{action}"), hint(binding_id)
        snap = getattr(app, "snapshot", None)
        if snap is None:
            return
        paused = {p.key for p in snap.paused}
        for symbol in app.engine.profile.symbols:
            verb = "Resume" if symbol in paused else "Pause"
            yield f"{verb} entries in {symbol}", partial(app.action_pause_symbol, symbol), hint("pause_symbol")
            yield f"New order in {symbol}", partial(app.action_new_order, symbol), hint("new_order")
        strategy = getattr(getattr(app.engine, "strategy", None), "name", None)
        if strategy:  # no key of its own: a strategy is paused by name, from here
            verb = "Resume" if PauseBook.key(strategy=strategy) in paused else "Pause"
            yield (f"{verb} entries from strategy {strategy}", partial(app.action_pause_strategy, strategy),
                   "entries it signals are refused; exits and stops keep working")
        for p in snap.positions:
            yield f"Close position {p.symbol}", partial(app.action_close_position, p.symbol), hint("close_position")
            yield f"Move stop of {p.symbol}", partial(app.action_tighten_stop, p.symbol), hint("tighten_stop")
            yield f"Note on {p.symbol}", partial(app.action_note, "trade", p.symbol), hint("note")
        for o in snap.open_orders:
            if o.purpose == "entry":
                yield (f"Cancel order {o.client_order_id} ({o.symbol} {o.side} {o.type})",
                       partial(app.action_cancel_order, o.client_order_id), hint("cancel_order"))

    async def discover(self) -> Hits:
        # Opening lists the global commands only; the per-symbol, per-position and per-order ones
        # (hundreds with a full book) appear as soon as something is typed.
        for title, command, help_text in list(self._commands())[:len(GLOBAL_COMMANDS)]:
            yield DiscoveryHit(title, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, command, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, text=title, help=help_text)
