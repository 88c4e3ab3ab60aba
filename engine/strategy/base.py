"""The strategy interface."""
from __future__ import annotations

from abc import ABC, abstractmethod

from ..models import Quote, Signal
from .regime import Regime


class Strategy(ABC):
    name: str = "strategy"

    @abstractmethod
    def on_quote(self, quote: Quote, position_qty: object) -> Signal | None:
        """Update on one quote; return a signal when the strategy wants to act.

        `position_qty` is the engine's signed position in the symbol (Decimal, 0 when flat), so a
        strategy can emit exit signals (side opposite to the position) as well as entries.
        """

    def readiness(self, symbol: str) -> str:
        """ready | forming | not_ready: whether the strategy has seen enough data to trust."""
        return "ready"

    def regime(self, symbol: str) -> Regime | None:
        """The market regime the strategy reads in `symbol` now (volatility, trend), or None when
        it does not measure one. An entry signal's reason carries it too (regime.tag)."""
        return None
