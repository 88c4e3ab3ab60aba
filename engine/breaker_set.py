"""The circuit breakers a profile configures, each measuring one number against its limit.

Actions come from `profile.breakers` (block = no new entries, exits allowed; halt = the latch).
The portfolio-level exits of the checklists ride here too: down 5 % in a day stops new trading
for the day, down 10 % in a week raises a critical alert for review, down 20 % in total pauses.
"""
from __future__ import annotations

import logging
from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from .clock import Clock
from .money import ZERO
from .portfolio import Portfolio
from .profile import Profile
from .risk.breakers import Breaker

if TYPE_CHECKING:
    from .journal import Journal

log = logging.getLogger("tradeconsole.engine")

HUNDRED = Decimal(100)
API_FAILURE_KIND = "api_failure"


class ApiFailureCounter:
    """Venue failures (timeouts, 5xx, rate limits) within a sliding window.

    Each failure is journaled (`api_failure` row) and the window rebuilt from those rows at start:
    kept only in memory, a restart every few failures kept the breaker from ever tripping."""

    def __init__(self, window_seconds: float, clock: Clock, journal: Journal | None = None) -> None:
        self.window = window_seconds
        self.clock = clock
        self.journal = journal
        self._times: deque[datetime] = deque()

    def record(self, *what: Any, **detail: Any) -> None:
        now = self.clock.now()
        self._times.append(now)
        if self.journal is None:
            return
        data: dict[str, Any] = {k: str(v) for k, v in detail.items()}
        if what:
            data["what"] = [str(x) for x in what]
        try:
            self.journal.append(API_FAILURE_KIND, now, None, data)  # committed with the next batch
        except Exception as exc:  # noqa: BLE001 - a venue call failing at close must not fail twice
            log.warning("API failure not journaled (%s): counted in memory only", exc)

    async def restore(self) -> None:
        """The window as the journal left it: the failures stamped within it of now. Those this
        start counted already are among the rows (the read commits them first)."""
        if self.journal is None:
            return
        now = self.clock.now()
        rows = await self.journal.rows_since([API_FAILURE_KIND], now - timedelta(seconds=self.window))
        self._times = deque(sorted(t for t in (datetime.fromisoformat(r.ts) for r in rows) if t <= now))

    def count(self) -> int:
        now = self.clock.now()
        while self._times and (now - self._times[0]).total_seconds() > self.window:
            self._times.popleft()
        return len(self._times)


def build_breakers(profile: Profile, p: Portfolio, clock: Clock, api: ApiFailureCounter,
                   last_quote_at: Callable[[], datetime | None], halted: Callable[[], bool]) -> list[Breaker]:
    r = profile.risk
    a = profile.breakers

    def loss(pnl: Decimal) -> Decimal:
        return -pnl if pnl < 0 else ZERO

    def tighter(base: Decimal, pct: Decimal, usd: Decimal | None) -> Decimal:
        limit = base * pct / HUNDRED
        return limit if usd is None or usd > limit else usd

    def stale() -> tuple[Decimal, Decimal]:
        last = last_quote_at()
        age = ZERO if last is None else Decimal((clock.now() - last).total_seconds())
        return age, Decimal(str(a.stale_data_seconds))

    def total_loss() -> tuple[Decimal, Decimal]:
        down = loss(p.equity - p.starting_cash) / p.starting_cash * HUNDRED
        return down, r.portfolio_total_pause_pct

    return [
        Breaker("daily_loss", a.daily_loss, "usd", "day",
                lambda: (loss(p.pnl_today), tighter(p.day_start_equity, r.daily_loss_pct, r.daily_loss_usd))),
        Breaker("weekly_loss", a.weekly_loss, "usd", "week",
                lambda: (loss(p.pnl_week), tighter(p.week_start_equity, r.weekly_loss_pct, r.weekly_loss_usd))),
        Breaker("drawdown_pause", a.drawdown_pause, "pct", "rearm", lambda: (p.pause_drawdown_pct, r.drawdown_pause_pct)),
        Breaker("drawdown_stop", a.drawdown_stop, "pct", "rearm", lambda: (p.drawdown_pct, r.drawdown_stop_pct)),
        Breaker("consecutive_losses", a.consecutive_losses, "count", "rearm",
                lambda: (Decimal(p.consecutive_losses()), Decimal(r.max_consecutive_losses))),
        Breaker("api_failures", a.api_failures, "count", "rearm",
                lambda: (Decimal(api.count()), Decimal(a.api_failure_limit))),
        Breaker("stale_data", a.stale_data, "seconds", "auto", stale),
        Breaker("portfolio_day", "block", "pct", "day",
                lambda: (loss(p.pnl_today) / p.day_start_equity * HUNDRED if p.day_start_equity > 0 else ZERO,
                         r.portfolio_day_stop_pct)),
        Breaker("portfolio_week", "alert", "pct", "week",
                lambda: (loss(p.pnl_week) / p.week_start_equity * HUNDRED if p.week_start_equity > 0 else ZERO,
                         r.portfolio_week_alert_pct)),
        Breaker("portfolio_total", "block", "pct", "rearm", total_loss),
        Breaker("manual", "halt", "latch", "rearm",
                lambda: (Decimal(1) if halted() else ZERO, Decimal(1))),
    ]
