"""Circuit breakers: armed -> warning (60 % of limit) -> critical (80 %) -> tripped.

A breaker raises an alert once per upward crossing, not per tick. Once tripped it holds until its
reset: the venue's day boundary for the daily breaker, an operator re-arm for the others. Its
action decides what a trip does: `block` stops new entries (exits still allowed), `halt` latches
the whole engine.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from ..money import ZERO, fmt_usd

WARN_AT = Decimal("0.6")
CRIT_AT = Decimal("0.8")


class BreakerState(str, enum.Enum):
    ARMED = "armed"
    WARNING = "warning"
    CRITICAL = "critical"
    TRIPPED = "tripped"


_ORDER = [BreakerState.ARMED, BreakerState.WARNING, BreakerState.CRITICAL, BreakerState.TRIPPED]


@dataclass(slots=True)
class Transition:
    breaker: "Breaker"
    old: BreakerState
    new: BreakerState


class Breaker:
    def __init__(
        self,
        name: str,
        action: str,
        unit: str,
        reset: str,
        measure: Callable[[], tuple[Decimal, Decimal]],
    ) -> None:
        if action not in ("block", "halt", "alert"):
            raise ValueError(f"breaker {name}: action must be block, halt or alert")
        self.name = name
        self.action = action
        self.unit = unit  # "usd" | "pct" | "count" | "seconds" | "latch"
        self.reset_on = reset  # "day" | "week" | "rearm" | "auto" (clears itself when the value falls back)
        self.measure = measure
        self.state = BreakerState.ARMED
        self.value = ZERO
        self.limit = ZERO

    @property
    def ratio(self) -> Decimal:
        return ZERO if self.limit <= 0 else self.value / self.limit

    def evaluate(self) -> Transition | None:
        self.value, self.limit = self.measure()
        if self.state is BreakerState.TRIPPED and not (self.reset_on == "auto" and self.ratio < 1):
            return None  # holds until reset
        r = self.ratio
        if r >= 1:
            new = BreakerState.TRIPPED
        elif r >= CRIT_AT:
            new = BreakerState.CRITICAL
        elif r >= WARN_AT:
            new = BreakerState.WARNING
        else:
            new = BreakerState.ARMED
        if new is self.state:
            return None
        old, self.state = self.state, new
        return Transition(self, old, new)

    def reset(self) -> None:
        self.state = BreakerState.ARMED

    def restore(self, state: BreakerState) -> None:
        self.state = state

    def text(self) -> str:
        pct = int(self.ratio * 100) if self.limit > 0 else 0
        if self.unit == "usd":
            shown = f"-{fmt_usd(self.value).lstrip('-')} / -{fmt_usd(self.limit).lstrip('-')}"
        elif self.unit == "pct":
            shown = f"{self.value:.2f}% / {self.limit:.2f}%"
        elif self.unit == "seconds":
            shown = f"{self.value:.0f}s / {self.limit:.0f}s"
        elif self.unit == "latch":
            return f"{'manual halt':<18} {'ON' if self.value else 'off'}"
        else:
            shown = f"{int(self.value)} / {int(self.limit)}"
        return f"{self.name.replace('_', ' '):<18} {shown}  {pct} %"


def is_rise(t: Transition) -> bool:
    return _ORDER.index(t.new) > _ORDER.index(t.old)
