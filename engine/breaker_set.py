"""The circuit breakers a profile configures, each measuring one number against its limit."""
from __future__ import annotations

from decimal import Decimal

from .money import ZERO
from .portfolio import Portfolio
from .profile import Profile
from .risk.breakers import Breaker

HUNDRED = Decimal(100)


def build_breakers(profile: Profile, p: Portfolio) -> list[Breaker]:
    r = profile.risk

    def daily_loss() -> tuple[Decimal, Decimal]:
        loss = -p.pnl_today if p.pnl_today < 0 else ZERO
        return loss, p.day_start_equity * r.daily_loss_pct / HUNDRED

    def weekly_loss() -> tuple[Decimal, Decimal]:
        loss = -p.pnl_week if p.pnl_week < 0 else ZERO
        return loss, p.week_start_equity * r.weekly_loss_pct / HUNDRED

    def drawdown_pause() -> tuple[Decimal, Decimal]:
        return p.drawdown_pct, r.drawdown_pause_pct

    def drawdown_stop() -> tuple[Decimal, Decimal]:
        return p.drawdown_pct, r.drawdown_stop_pct

    def losses() -> tuple[Decimal, Decimal]:
        return Decimal(p.consecutive_losses()), Decimal(r.max_consecutive_losses)

    return [
        Breaker("daily_loss", "block", "usd", "day", daily_loss),
        Breaker("weekly_loss", "block", "usd", "week", weekly_loss),
        Breaker("drawdown_pause", "block", "pct", "rearm", drawdown_pause),
        Breaker("drawdown_stop", "halt", "pct", "rearm", drawdown_stop),
        Breaker("consecutive_losses", "block", "count", "rearm", losses),
    ]
