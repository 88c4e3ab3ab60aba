"""Checks driven by the operator's own switches: symbols (or strategies) paused from the console.

A pause stops new entries only. Exits and protective stops keep working, so pausing a symbol never
leaves a position unable to close.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .gate import Outcome, OrderRequest, PreTradeCheck, RiskContext

ALL = "*"  # the pause key meaning "every symbol"


@dataclass(slots=True)
class PauseBook:
    """What the operator has paused, with the reason given for each. Keys are symbols, `ALL`, or
    `strategy:<name>`; the engine's operator actions edit it, the check below reads it."""

    reasons: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def key(symbol: str | None = None, strategy: str | None = None) -> str:
        if strategy:
            return f"strategy:{strategy}"
        return symbol or ALL

    @staticmethod
    def label(key: str) -> str:
        return "all symbols" if key == ALL else key

    def pause(self, key: str, reason: str) -> bool:
        """True if this newly paused it (a second pause only keeps the first reason)."""
        if key in self.reasons:
            return False
        self.reasons[key] = reason
        return True

    def resume(self, key: str) -> bool:
        return self.reasons.pop(key, None) is not None

    def blocking(self, symbol: str, strategy: str) -> str | None:
        """The pause key that stops an entry in `symbol` from `strategy`, if any."""
        reasons = self.reasons
        if not reasons:
            return None
        for key in (symbol, ALL, f"strategy:{strategy}" if strategy else None):
            if key is not None and key in reasons:
                return key
        return None

    def keys(self) -> tuple[str, ...]:
        return tuple(sorted(self.reasons))


class SymbolPausedCheck(PreTradeCheck):
    """Entries in a paused symbol (or from a paused strategy, or while everything is paused) are
    refused. Applies to entries only: exits and stops must always be able to leave."""

    name = "symbol_paused"

    def __init__(self, book: PauseBook | None = None) -> None:
        self.book = book if book is not None else PauseBook()

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        book = self.book
        # Nothing paused is the usual case: answered without a call.
        blocked = book.blocking(req.symbol, req.strategy) if book.reasons else None
        if blocked is None:
            return (True, "{symbol} not paused", ("symbol",), (req.symbol,))
        return (False, "{symbol}: entries paused by the operator ({key}: {reason})",
                ("symbol", "key", "reason"), (req.symbol, blocked, self.book.reasons.get(blocked, "")))
