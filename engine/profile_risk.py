"""The risk sections of a profile: the gate's limits, market hours, the stages' caps and what
each breaker does when it trips. Part of the profile schema (engine/profile.py), which imports
them; the same rules hold: unknown keys are errors, percentages are percent, money is Decimal.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from .profile_base import MAX_USD, Strict, bad as _bad, raise_problems

Pct = Decimal


class RiskLimits(Strict):
    max_open_positions: int = Field(5, ge=1, description="positions open at once, entries sent and not yet filled included")
    max_trades_per_day: int = Field(20, ge=1, description="new entries per venue day")
    max_trades_per_hour: int = Field(5, ge=1, description="new entries in any rolling hour")
    min_seconds_between_trades: float = Field(60, ge=0, description="quiet time between two entries")
    min_edge: float = Field(0.08, ge=0, le=1, description="weakest signal edge the gate lets through")
    min_confidence: float = Field(0.7, ge=0, le=1, description="weakest signal confidence the gate lets through")
    max_consecutive_losses: int = Field(5, ge=1, description="losing trades in a row before entries stop")
    drawdown_pause_pct: Pct = Field(Decimal(15), gt=0, le=100, description="drawdown from the equity peak that pauses entries")
    drawdown_stop_pct: Pct = Field(Decimal(25), gt=0, le=100, description="drawdown from the equity peak that halts")
    daily_loss_pct: Pct = Field(Decimal(2), gt=0, le=100, description="loss today (of the day's opening equity) that stops entries until the next day")
    weekly_loss_pct: Pct = Field(Decimal(10), gt=0, le=100, description="loss this week that stops entries until the next week")
    risk_per_trade_pct: Pct = Field(Decimal(1), gt=0, le=100, description="equity lost if a trade hits its stop")
    max_position_pct: Pct = Field(Decimal(10), gt=0, le=100, description="largest position as % of equity")
    cash_reserve_pct: Pct = Field(Decimal(25), ge=0, lt=100, description="cash kept free after a buy and its cost (fee, slippage), % of equity (working buys count as spent)")
    stop_loss_default_pct: Pct = Field(Decimal(8), gt=0, lt=100, description="stop distance the strategy uses")
    stop_loss_min_pct: Pct = Field(Decimal(5), gt=0, lt=100, description="tightest stop the gate accepts")
    stop_loss_max_pct: Pct = Field(Decimal(15), gt=0, lt=100, description="widest stop the gate accepts")
    max_single_trade_loss_usd: Decimal = Field(Decimal(200), gt=0, le=MAX_USD, description="most one trade may lose at its stop, fees included (a position with its adds and working entries is one trade)")
    max_total_capital_usd: Decimal = Field(Decimal(100000), gt=0, le=MAX_USD, description="most capital deployed in positions and working entries at once")
    daily_loss_usd: Decimal | None = Field(None, gt=0, le=MAX_USD, description="daily loss cap in USD; the tighter of this and daily_loss_pct applies")
    weekly_loss_usd: Decimal | None = Field(None, gt=0, le=MAX_USD, description="weekly loss cap in USD; the tighter of this and weekly_loss_pct applies")
    max_new_positions_per_day: int = Field(10, ge=1, description="positions opened per venue day")
    max_new_positions_per_week: int = Field(40, ge=1, description="positions opened per ISO week")
    max_symbol_exposure_pct: Pct = Field(Decimal(10), gt=0, le=100, description="exposure in one symbol, % of equity")
    correlated_groups: dict[str, list[str]] = Field(default_factory=dict, description="group name -> symbols that move together")
    max_group_exposure_pct: Pct = Field(Decimal(20), gt=0, le=100, description="exposure in one correlated group, % of equity")
    allowed_readiness: list[Literal["ready", "forming", "not_ready"]] = Field(
        default_factory=lambda: ["ready"], min_length=1, description="strategy readiness states allowed to open positions")
    max_spread_bps: Decimal = Field(Decimal(50), gt=0, description="widest spread, bps of mid, to enter")
    max_volume_fraction: Decimal = Field(Decimal("0.1"), gt=0, le=1, description="order size as a fraction of the last minute's volume")
    max_book_fraction: Decimal = Field(Decimal(1), gt=0, le=10, description="order size as a multiple of the top-of-book size")
    max_data_age_seconds: float = Field(10, gt=0, description="oldest quote an entry may be priced on")
    max_limit_distance_pct: Pct = Field(Decimal(2), gt=0, le=50, description="limit price distance from mid")
    max_price_jump_pct: Pct = Field(Decimal(5), gt=0, le=100,
                                    description="move from the last good price treated as a spike: refused by the "
                                                "gate, and positions are not marked at it until it holds for 3 quotes")
    portfolio_day_stop_pct: Pct = Field(Decimal(5), gt=0, le=100, description="portfolio down this much today: no new trades today")
    portfolio_week_alert_pct: Pct = Field(Decimal(10), gt=0, le=100, description="portfolio down this much this week: critical alert for review")
    portfolio_total_pause_pct: Pct = Field(Decimal(20), gt=0, le=100, description="portfolio down this much from starting capital: pause until re-armed")

    @model_validator(mode="after")
    def _consistent(self) -> "RiskLimits":
        problems = []
        if self.stop_loss_min_pct > self.stop_loss_max_pct:
            problems.append(_bad("stop_loss_min_pct", f"must be <= stop_loss_max_pct ({self.stop_loss_max_pct}) (got {self.stop_loss_min_pct})"))
        elif not self.stop_loss_min_pct <= self.stop_loss_default_pct <= self.stop_loss_max_pct:
            problems.append(_bad(
                "stop_loss_default_pct",
                f"must be within {self.stop_loss_min_pct}..{self.stop_loss_max_pct} (got {self.stop_loss_default_pct})",
            ))
        if self.drawdown_pause_pct >= self.drawdown_stop_pct:
            problems.append(_bad("drawdown_pause_pct", f"must be below drawdown_stop_pct ({self.drawdown_stop_pct}) (got {self.drawdown_pause_pct})"))
        for group, members in self.correlated_groups.items():
            if len(set(members)) < 2:
                problems.append(_bad(f"correlated_groups.{group}", "a group needs at least two symbols"))
            elif len(set(members)) != len(members):
                twice = next(m for i, m in enumerate(members) if m in members[:i])
                problems.append(_bad(f"correlated_groups.{group}", f"lists {twice} twice"))
        if self.daily_loss_pct > self.weekly_loss_pct:
            problems.append(_bad("daily_loss_pct", f"must be <= weekly_loss_pct ({self.weekly_loss_pct}) (got {self.daily_loss_pct})"))
        if self.daily_loss_usd and self.weekly_loss_usd and self.daily_loss_usd > self.weekly_loss_usd:
            problems.append(_bad("daily_loss_usd", f"must be <= weekly_loss_usd ({self.weekly_loss_usd}) (got {self.daily_loss_usd})"))
        if self.max_new_positions_per_day > self.max_new_positions_per_week:
            problems.append(_bad("max_new_positions_per_day", f"must be <= max_new_positions_per_week ({self.max_new_positions_per_week}) (got {self.max_new_positions_per_day})"))
        if self.max_trades_per_hour > self.max_trades_per_day:
            problems.append(_bad("max_trades_per_hour", f"must be <= max_trades_per_day ({self.max_trades_per_day}) (got {self.max_trades_per_hour})"))
        raise_problems("RiskLimits", problems)
        return self


class MarketHoursConfig(Strict):
    calendar: str = Field("24/7", description="24/7 (crypto) or an exchange calendar code, e.g. XNYS")
    entry_cutoff_minutes: int = Field(15, ge=0, le=240, description="no entries this close to the session close")
    allow_extended_hours: bool = Field(False, description="allow pre-market (from 04:00) and after-hours (to 20:00; "
                                                          "on an early-close day as much earlier as the close)")
    venue_clock_seconds: float = Field(
        60, ge=0, le=3600, description="a venue with a market clock (Alpaca): read it this often and judge "
                                       "regular hours by it, the calendar when it is unavailable; 0 = calendar only")

    @model_validator(mode="after")
    def _known(self) -> "MarketHoursConfig":
        if self.calendar != "24/7" and not re.fullmatch(r"[A-Z0-9]{3,5}", self.calendar):
            raise _bad("calendar", f"must be 24/7 or an exchange code such as XNYS (got {self.calendar!r})")
        return self


# Each exchange calendar's time zone, as exchange_calendars gives it (tests/test_profile_timezone.py
# checks every code it builds): the profile is validated at load, and importing the package there
# would cost the console's start most of a second. Codes the package cannot build are left out;
# preflight refuses them as unknown.
_ZONES = {
    "Africa/Johannesburg": "XJSE", "America/Argentina/Buenos_Aires": "XBUE",
    "America/Chicago": "CBOT CFE CME CMES COMEX NYMEX XCBF", "America/Lima": "XLIM",
    "America/Mexico_City": "XMEX",
    "America/New_York": "ARCX BATS ICE ICEUS IEPA NYFE NYSE OOTC XASE XBOG XNAS XNYS",
    "America/Santiago": "XSGO", "America/Sao_Paulo": "BMF BVMF", "America/Toronto": "TSX XTSE XTSX",
    "Asia/Almaty": "AIXK", "Asia/Bangkok": "XBKK", "Asia/Hong_Kong": "HKEX XHKG", "Asia/Jakarta": "JKT XIDX",
    "Asia/Karachi": "XKAR", "Asia/Kolkata": "BSE XBOM", "Asia/Kuala_Lumpur": "XKLS", "Asia/Manila": "XPHS",
    "Asia/Riyadh": "XSAU", "Asia/Seoul": "XKRX", "Asia/Shanghai": "SSE XSHG", "Asia/Singapore": "XSES",
    "Asia/Taipei": "XTAI", "Asia/Tokyo": "JPX XTKS", "Atlantic/Bermuda": "XBDA", "Atlantic/Reykjavik": "XICE",
    "Australia/Sydney": "ASX XASX", "Europe/Amsterdam": "XAMS", "Europe/Berlin": "FWB XEEE XETR XEUR XFRA XSTU",
    "Europe/Bratislava": "XBRA", "Europe/Brussels": "XBRU XDUS XHAM", "Europe/Budapest": "XBUD",
    "Europe/Copenhagen": "XCSE", "Europe/Dublin": "XDUB", "Europe/Helsinki": "XHEL", "Europe/Istanbul": "XIST",
    "Europe/Lisbon": "XLIS", "Europe/Ljubljana": "XLJU", "Europe/London": "LSE XLON",
    "Europe/Luxembourg": "LUXSE XLUX", "Europe/Madrid": "XMAD", "Europe/Moscow": "XMOS", "Europe/Oslo": "OSE XOSL",
    "Europe/Paris": "XPAR", "Europe/Prague": "XPRA", "Europe/Riga": "XRIS", "Europe/Rome": "XMIL",
    "Europe/Stockholm": "XSTO", "Europe/Tallinn": "XTAL", "Europe/Vienna": "XWBO", "Europe/Vilnius": "XLIT",
    "Europe/Warsaw": "XWAR", "Europe/Zagreb": "XZAG", "Europe/Zurich": "SIX XSWX", "Pacific/Auckland": "XNZE",
}
CALENDAR_ZONES = {code: zone for zone, codes in _ZONES.items() for code in codes.split()}


def calendar_zone(calendar: str) -> str | None:
    """The time zone an exchange calendar's days are in; None for 24/7 or a code not in the table."""
    return CALENDAR_ZONES.get(calendar)


class StageLimits(Strict):
    max_capital_usd: Decimal | None = Field(None, gt=0, le=MAX_USD, description="capital the stage may deploy")
    max_position_usd: Decimal | None = Field(None, gt=0, le=MAX_USD, description="largest position in the stage")
    min_edge: float | None = Field(None, ge=0, le=1, description="stricter min edge for the stage")
    min_confidence: float | None = Field(None, ge=0, le=1, description="stricter min confidence for the stage")


STAGE_ORDER = ("paper", "testnet", "micro", "small", "medium", "standard")


def _default_stages() -> dict[str, "StageLimits"]:
    # The go-live checklists' table: capital cap / max position per stage.
    return {
        "paper": StageLimits(),
        "testnet": StageLimits(),
        "micro": StageLimits(max_capital_usd=Decimal(500), max_position_usd=Decimal(10), min_edge=0.1, min_confidence=0.75),
        "small": StageLimits(max_capital_usd=Decimal(1000), max_position_usd=Decimal(50)),
        "medium": StageLimits(max_capital_usd=Decimal(2500), max_position_usd=Decimal(100)),
        "standard": StageLimits(max_capital_usd=Decimal(5000), max_position_usd=Decimal(200)),
    }


BreakerAction = Literal["block", "halt"]


class BreakerSettings(Strict):
    daily_loss: BreakerAction = Field("block", description="block: no entries until the next venue day")
    weekly_loss: BreakerAction = "block"
    drawdown_pause: BreakerAction = "block"
    drawdown_stop: BreakerAction = "halt"
    consecutive_losses: BreakerAction = "block"
    api_failures: BreakerAction = "halt"
    stale_data: BreakerAction = "block"
    api_failure_limit: int = Field(5, ge=1, description="venue failures in the window that trip the breaker")
    api_failure_window_seconds: float = Field(300, gt=0)
    stale_data_seconds: float = Field(30, gt=0, description="no quote for this long trips the stale-data breaker")
