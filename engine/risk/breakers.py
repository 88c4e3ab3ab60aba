"""Circuit breakers: armed -> warning (60 % of limit) -> critical (80 %) -> tripped.

A breaker raises an alert once per upward crossing, not per tick. A level is left downwards only
once the ratio is HYSTERESIS below the threshold that raised it, for the level the ratio is then
in: a loss hovering at 60 % or 80 % (a mark wobbling by a cent) otherwise crossed back up on
every other evaluation, and each crossing at 80 % was a critical alert pinned until acknowledged. Once tripped it holds until its
reset: the venue's day boundary for the daily breaker, an operator re-arm for the others, or for
an `auto` breaker (stale data) the ratio falling HYSTERESIS below the limit. Its action decides
what a trip does: `block` stops new entries (exits still allowed), `halt` latches the whole engine.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from ..money import ZERO, fmt_usd

WARN_AT = Decimal("0.6")
CRIT_AT = Decimal("0.8")
# Five points of the limit: wider than a mark's wobble, narrow enough that a loss truly falling
# back is seen (a daily loss limit of $200 must come back $10 below a line to leave it).
HYSTERESIS = Decimal("0.05")


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
        new = _level(r)
        if new is self.state:
            return None
        if _ORDER.index(new) < _ORDER.index(self.state) and r >= _THRESHOLD[self.state] - HYSTERESIS:
            return None  # within the margin below the threshold that raised it: held
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


_THRESHOLD = {BreakerState.WARNING: WARN_AT, BreakerState.CRITICAL: CRIT_AT, BreakerState.TRIPPED: Decimal(1)}


def _level(r: Decimal) -> BreakerState:
    if r >= 1:
        return BreakerState.TRIPPED
    if r >= CRIT_AT:
        return BreakerState.CRITICAL
    if r >= WARN_AT:
        return BreakerState.WARNING
    return BreakerState.ARMED


def is_rise(t: Transition) -> bool:
    return _ORDER.index(t.new) > _ORDER.index(t.old)
