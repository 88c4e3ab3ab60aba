"""The in-process alert bus: severity-tagged alerts for the console feed (and, later, channels).

The feed is a bounded ring, so a burst cannot grow memory or stall the screen. A critical alert is
also held outside the ring until the operator acknowledges it: however many alerts come after it,
the screen keeps showing it (a burst of 200 info alerts must not push a protective stop's refusal
out of sight). Every alert is journaled by the engine; subscribers (outbound channels) get each
alert after it is recorded.
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
        # Critical alerts not yet acknowledged, by seq (insertion order = oldest first). Not bounded:
        # criticals are rare, and one dropped unseen is the failure this exists to prevent.
        self._unacknowledged: dict[int, Alert] = {}
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
        if severity == "critical":
            self._unacknowledged[alert.seq] = alert
        for fn in self._subscribers:
            fn(alert)
        return alert

    def restore(self, kind: str, message: str, ts: datetime, data: dict) -> Alert:
        """Hold again a critical alert a previous session raised and nobody acknowledged.

        It gets this session's next number and is shown pinned like a new one, but subscribers
        (outbound channels) are not told again: they were told when it was raised."""
        self._seq += 1
        alert = Alert("critical", kind, message, ts, self._seq, data=dict(data))
        self._alerts.append(alert)
        self._unacknowledged[alert.seq] = alert
        return alert

    def recent(self, n: int = 50) -> list[Alert]:
        """Newest first, from the ring."""
        out = []
        for a in reversed(self._alerts):
            out.append(a)
            if len(out) >= n:
                break
        return out

    def unacknowledged(self) -> list[Alert]:
        """Critical alerts the operator has not acknowledged, newest first, wherever the ring is."""
        return list(reversed(self._unacknowledged.values()))

    def get(self, seq: int) -> Alert | None:
        """Alert `seq` if it is still held (in the ring, or critical and unacknowledged)."""
        held = self._unacknowledged.get(seq)
        if held is not None:
            return held
        return next((a for a in self._alerts if a.seq == seq), None)

    def acknowledge(self, seq: int) -> Alert | None:
        """Mark alert `seq` seen (a critical one stops being held); None if no such alert is held."""
        alert = self.get(seq)
        if alert is not None:
            alert.acknowledged = True
            self._unacknowledged.pop(seq, None)
        return alert
