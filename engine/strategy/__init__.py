"""Strategies turn quotes into signals (side, edge, confidence, stop, reason)."""
from .base import Strategy
from .ema_trend import EmaTrendStrategy

__all__ = ["Strategy", "EmaTrendStrategy"]
