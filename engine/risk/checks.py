"""The pre-trade check set, in the order the gate runs them, built from a profile.

Each check is a small unit in one of the checks_* modules; this module names them together."""
from __future__ import annotations

from decimal import Decimal

from ..profile import Profile
from .checks_account import (
    BuyingPowerCheck, CashReserveCheck, GroupConcentrationCheck, LossLimitCheck, MaxOpenPositionsCheck,
    NewPositionsCheck, PositionSizeCheck, SingleTradeLossCheck, StageCapCheck, SymbolConcentrationCheck,
    TotalCapitalCheck,
)
from .checks_market import (
    DataFreshnessCheck, LimitPriceCheck, PriceValidityCheck, SpikeCheck, SpreadCheck, VolumeCheck,
)
from .checks_operator import SymbolPausedCheck
from .checks_signal import MinConfidenceCheck, MinEdgeCheck, ReadinessCheck, StopLossCheck
from .checks_state import ReducesPositionCheck, TradingStateCheck, VenueHealthCheck
from .gate import PreTradeCheck
from .hours import ExchangeSessions, TradingHoursCheck
from .throttles import MinIntervalThrottle, TradesPerDayThrottle, TradesPerHourThrottle

__all__ = [
    "BuyingPowerCheck", "CashReserveCheck", "DataFreshnessCheck", "GroupConcentrationCheck",
    "LimitPriceCheck", "LossLimitCheck", "MaxOpenPositionsCheck", "MinConfidenceCheck", "MinEdgeCheck",
    "MinIntervalThrottle", "NewPositionsCheck", "PositionSizeCheck", "PriceValidityCheck", "ReadinessCheck",
    "ReducesPositionCheck", "SingleTradeLossCheck", "SpikeCheck", "SpreadCheck", "StageCapCheck",
    "StopLossCheck", "SymbolConcentrationCheck", "SymbolPausedCheck", "TotalCapitalCheck", "TradesPerDayThrottle",
    "TradesPerHourThrottle", "TradingHoursCheck", "TradingStateCheck", "VenueHealthCheck", "VolumeCheck",
    "default_checks", "taker_fee_rate",
]


def taker_fee_rate(profile: Profile) -> Decimal:
    """The fee share the checks reckon an order pays (a taker's, the dearer side)."""
    return profile.paper.taker_fee_bps / Decimal(10000)


def buy_cost_rate(profile: Profile) -> Decimal:
    """What the cash checks reckon a buy costs beyond its notional: a taker's fee and the price
    worsening a market order meets. Without the slippage a buy that exactly fit the cash took it
    below zero (a real venue refuses it; the reserve was broken)."""
    return (profile.paper.taker_fee_bps + profile.paper.slippage_bps) / Decimal(10000)


def default_checks(profile: Profile) -> list[PreTradeCheck]:
    r = profile.risk
    stage = profile.stage_limits()
    fee_rate = taker_fee_rate(profile)
    buy_cost = buy_cost_rate(profile)
    min_edge = max(r.min_edge, stage.min_edge or 0.0)
    min_conf = max(r.min_confidence, stage.min_confidence or 0.0)
    return [
        TradingStateCheck(),
        SymbolPausedCheck(),  # the operator's pause: entries only, right after the latch
        ReducesPositionCheck(),
        VenueHealthCheck(),
        # An equities profile resolves its calendar now: a bad code is a start-up error, not a
        # refusal of the first order hours later.
        TradingHoursCheck(profile.market_hours, None if profile.market_hours.calendar == "24/7"
                          else ExchangeSessions(profile.market_hours.calendar)),
        PriceValidityCheck(),
        DataFreshnessCheck(r.max_data_age_seconds),
        SpikeCheck(r.max_price_jump_pct),
        SpreadCheck(r.max_spread_bps),
        VolumeCheck(r.max_volume_fraction, r.max_book_fraction),
        LimitPriceCheck(r.max_limit_distance_pct),
        StopLossCheck(r.stop_loss_min_pct, r.stop_loss_max_pct),
        MinEdgeCheck(min_edge),
        MinConfidenceCheck(min_conf),
        ReadinessCheck(r.allowed_readiness),
        MaxOpenPositionsCheck(r.max_open_positions),
        NewPositionsCheck("day", r.max_new_positions_per_day),
        NewPositionsCheck("week", r.max_new_positions_per_week),
        PositionSizeCheck(r.max_position_pct, profile.sizing.max_order_usd, profile.sizing.min_order_usd),
        SymbolConcentrationCheck(r.max_symbol_exposure_pct),
        GroupConcentrationCheck(r.correlated_groups, r.max_group_exposure_pct),
        SingleTradeLossCheck(r.max_single_trade_loss_usd, r.risk_per_trade_pct, fee_rate),
        BuyingPowerCheck(buy_cost),
        CashReserveCheck(r.cash_reserve_pct, buy_cost),
        TotalCapitalCheck(r.max_total_capital_usd),
        StageCapCheck(profile.stage, stage.max_capital_usd, stage.max_position_usd),
        LossLimitCheck("day", r.daily_loss_pct, r.daily_loss_usd),
        LossLimitCheck("week", r.weekly_loss_pct, r.weekly_loss_usd),
        TradesPerDayThrottle(r.max_trades_per_day),
        TradesPerHourThrottle(r.max_trades_per_hour),
        MinIntervalThrottle(r.min_seconds_between_trades),
    ]
