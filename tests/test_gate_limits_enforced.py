"""Every limit in the profile's `risk` section is enforced by something: a limit a trader can set
but nothing reads is worse than none (the liquidity limits were in the schema and the README,
and no check of the gate read them).

Each pre-trade limit is tightened on its own, through the profile, until a calm order must be
refused; the gate built from that profile must refuse it by the named check, while the same
order passes under the defaults. Limits enforced elsewhere (breakers, the strategy) are listed
with where; a new field in none of these lists fails the test until someone says where it acts.
"""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from datetime import datetime, timezone

from engine.models import OrderPurpose, Quote, Side
from engine.profile import Profile, RiskLimits
from engine.risk.checks import default_checks
from engine.risk.gate import OrderRequest, RiskContext, RiskGate, TradingState

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def quote(size: str = "1000") -> Quote:
    return Quote("BTC/USD", NOW, D("99.99"), D("100.01"), D(size), D(size), D("100"))


def ctx(**kw) -> RiskContext:
    """A calm account and market: $10,000 in cash, nothing held, a fresh tight quote."""
    base = dict(now=NOW, trading_state=TradingState.ACTIVE, equity=D("10000"), cash=D("10000"),
                day_start_equity=D("10000"), pnl_today=D("0"), open_positions=0, position_qty=D("0"),
                gross_exposure=D("0"), trades_today=0, trades_last_hour=0, seconds_since_last_trade=None,
                week_start_equity=D("10000"), pnl_week=D("0"), quote=quote(), quote_age_seconds=1.0,
                last_good_price=D("100"), recent_volume=None, exposure_by_symbol={})
    base.update(kw)
    return RiskContext(**base)


# field -> (tightened value, context changes that make the calm order meet it, refusing check)
PRE_TRADE = {
    "max_open_positions": (1, {"open_positions": 1}, "max_open_positions"),
    "max_trades_per_day": (3, {"trades_today": 3}, "trades_per_day"),
    "max_trades_per_hour": (2, {"trades_last_hour": 2}, "trades_per_hour"),
    "min_seconds_between_trades": (600, {"seconds_since_last_trade": 599.0}, "min_seconds_between_trades"),
    "min_edge": (0.6, {}, "min_edge"),
    "min_confidence": (0.95, {}, "min_confidence"),
    "daily_loss_pct": (1, {"pnl_today": D("-100")}, "daily_loss"),
    "daily_loss_usd": (50, {"pnl_today": D("-50")}, "daily_loss"),
    "weekly_loss_pct": (1, {"pnl_week": D("-100")}, "weekly_loss"),
    "weekly_loss_usd": (50, {"pnl_week": D("-50")}, "weekly_loss"),
    "risk_per_trade_pct": (D("0.05"), {}, "single_trade_loss"),
    "max_single_trade_loss_usd": (5, {}, "single_trade_loss"),
    "max_position_pct": (D("0.5"), {}, "position_size"),
    "cash_reserve_pct": (D("99.5"), {}, "cash_reserve"),
    "stop_loss_min_pct": (10, {}, "stop_loss"),
    "stop_loss_max_pct": (D("7.5"), {}, "stop_loss"),
    "max_total_capital_usd": (150, {"gross_exposure": D("60")}, "total_capital"),
    "max_new_positions_per_day": (2, {"new_positions_today": 2}, "new_positions_per_day"),
    "max_new_positions_per_week": (2, {"new_positions_week": 2}, "new_positions_per_week"),
    "max_symbol_exposure_pct": (D("1.5"), {"symbol_exposure": D("60")}, "symbol_concentration"),
    "max_group_exposure_pct": (D("1.5"), {"exposure_by_symbol": {"ETH/USD": D("60")}}, "group_concentration"),
    "allowed_readiness": (["ready"], {}, "readiness"),
    "max_spread_bps": (1, {}, "spread"),
    "max_volume_fraction": (D("0.001"), {"recent_volume": D("500")}, "liquidity"),
    "max_book_fraction": (D("0.5"), {"quote": quote(size="1.5")}, "liquidity"),
    "max_data_age_seconds": (1, {"quote_age_seconds": 1.5}, "data_fresh"),
    "max_limit_distance_pct": (D("0.005"), {"mid": D("99.99")}, "limit_price"),
    "max_price_jump_pct": (1, {"last_good_price": D("98.5")}, "price_spike"),
}
# Read by the circuit breakers (engine/breaker_set.py; their own tests), some by the checks too.
BREAKERS = {"max_consecutive_losses", "drawdown_pause_pct", "drawdown_stop_pct", "portfolio_day_stop_pct",
            "portfolio_week_alert_pct", "portfolio_total_pause_pct", "daily_loss_pct", "weekly_loss_pct",
            "daily_loss_usd", "weekly_loss_usd"}
# Used by the strategy to place its stop; the gate judges that stop against min/max.
STRATEGY = {"stop_loss_default_pct"}
# Setting groups rather than a limit (the group's cap is max_group_exposure_pct).
SETTINGS = {"correlated_groups"}

EXTRA = {  # what a field needs beside it to bite
    "max_group_exposure_pct": {"correlated_groups": {"majors": ["BTC/USD", "ETH/USD"]}},
    "stop_loss_max_pct": {"stop_loss_default_pct": 7},
    "stop_loss_min_pct": {"stop_loss_default_pct": 12},
    "max_trades_per_day": {"max_trades_per_hour": 3},  # an hourly cap above the daily one is refused
    "max_new_positions_per_week": {"max_new_positions_per_day": 2},
    "weekly_loss_pct": {"daily_loss_pct": 1},  # a daily cap above the weekly one is refused
}
# A 1 x 100.01 limit buy at the ask, stop 92 (8 %), edge 0.5, confidence 0.9, strategy still forming.
ORDER = OrderRequest("BTC/USD", Side.BUY, D("1"), D("100.01"), D("92"), OrderPurpose.ENTRY, "strategy",
                     0.5, 0.9, "", "forming")


def gate_for(**risk) -> RiskGate:
    profile = Profile(risk={"allowed_readiness": ["ready", "forming"], **risk})
    return RiskGate(default_checks(profile))


def test_every_risk_field_is_enforced_somewhere():
    fields = set(RiskLimits.model_fields)
    placed = set(PRE_TRADE) | BREAKERS | STRATEGY | SETTINGS
    assert fields - placed == set(), "a risk limit nothing enforces (or this test does not know of)"
    assert placed - fields == set()


def test_the_calm_order_passes_under_the_defaults():
    d = gate_for().evaluate(ORDER, ctx())
    assert d.approved, d.failed


@pytest.mark.parametrize("field", sorted(PRE_TRADE))
def test_each_pre_trade_limit_refuses_when_tightened(field):
    value, changes, check = PRE_TRADE[field]
    calm = ctx(**changes)
    loose = gate_for(**EXTRA.get(field, {})).evaluate(ORDER, calm)
    assert loose.approved, f"{field}: the calm order should pass before tightening ({loose.failed})"
    tight = gate_for(**{**EXTRA.get(field, {}), field: value}).evaluate(ORDER, calm)
    assert not tight.approved and tight.failed == check, (field, tight.failed)
    assert not next(c for c in tight.checks if c.name == check).passed

