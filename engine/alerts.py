"""The in-process alert bus: severity-tagged alerts for the console feed (and, later, channels).

Bounded, so a burst cannot grow memory or stall the screen. Every alert is journaled by the
engine; subscribers (outbound channels) get each alert after it is recorded.
"""
from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Callable

from .models import Alert

SEVERITIES = ("info", "warning", "critical")


class AlertBus:
    def __init__(self, maxlen: int = 200) -> None:
        self._alerts: deque[Alert] = deque(maxlen=maxlen)
        self._seq = 0
        self._subscribers: list[Callable[[Alert], None]] = []

    def subscribe(self, fn: Callable[[Alert], None]) -> None:
        self._subscribers.append(fn)

    def publish(self, severity: str, kind: str, message: str, ts: datetime, **data: object) -> Alert:
        if severity not in SEVERITIES:
            raise ValueError(f"alert severity must be one of {SEVERITIES} (got {severity!r})")
        self._seq += 1
        alert = Alert(severity, kind, message, ts, self._seq, data=dict(data))
        self._alerts.append(alert)
        for fn in self._subscribers:
            fn(alert)
        return alert

    def recent(self, n: int = 50) -> list[Alert]:
        """Newest first."""
        out = []
        for a in reversed(self._alerts):
            out.append(a)
            if len(out) >= n:
                break
        return out
