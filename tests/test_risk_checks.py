"""Pre-trade checks at, just below and just above each boundary; the gate; breaker state machine."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.models import OrderPurpose, Side
from engine.profile import Profile
from engine.risk.breakers import Breaker, BreakerState, is_rise
from engine.models import Quote
from engine.profile import MarketHoursConfig
from engine.risk.checks import (
    BuyingPowerCheck,
    CashReserveCheck,
    DataFreshnessCheck,
    GroupConcentrationCheck,
    LimitPriceCheck,
    LossLimitCheck,
    MaxOpenPositionsCheck,
    MinConfidenceCheck,
    MinEdgeCheck,
    MinIntervalThrottle,
    NewPositionsCheck,
    PositionSizeCheck,
    PriceValidityCheck,
    ReadinessCheck,
    ReducesPositionCheck,
    SingleTradeLossCheck,
    SpikeCheck,
    SpreadCheck,
    StageCapCheck,
    StopLossCheck,
    SymbolConcentrationCheck,
    TotalCapitalCheck,
    TradesPerDayThrottle,
    TradesPerHourThrottle,
    TradingHoursCheck,
    TradingStateCheck,
    VenueHealthCheck,
    VolumeCheck,
    default_checks,
)
from engine.risk.gate import OrderRequest, RiskContext, RiskGate, TradingState

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
ENTRY, EXIT, STOP = OrderPurpose.ENTRY, OrderPurpose.EXIT, OrderPurpose.STOP


def req(**kw) -> OrderRequest:
    base = dict(symbol="BTC/USD", side=Side.BUY, quantity=D("1"), price=D("100"), stop_price=D("92"),
                purpose=ENTRY, source="strategy", edge=0.5, confidence=0.9)
    base.update(kw)
    return OrderRequest(**base)


def quote(bid: str = "99.99", ask: str = "100.01", size: str = "1000", symbol: str = "BTC/USD") -> Quote:
    return Quote(symbol, NOW, D(bid), D(ask), D(size), D(size), (D(bid) + D(ask)) / 2)


def ctx(**kw) -> RiskContext:
    """A calm account and market where a 1 x 100 buy with a stop at 92 passes every default check."""
    base = dict(now=NOW, trading_state=TradingState.ACTIVE, equity=D("10000"), cash=D("10000"),
                day_start_equity=D("10000"), pnl_today=D("0"), open_positions=0, position_qty=D("0"),
                gross_exposure=D("0"), trades_today=0, trades_last_hour=0, seconds_since_last_trade=None,
                week_start_equity=D("10000"), pnl_week=D("0"), quote=quote(), quote_age_seconds=1.0,
                last_good_price=D("100"), recent_volume=None)
    base.update(kw)
    return RiskContext(**base)


def ok(check, r=None, c=None) -> bool:
    res = check.evaluate(r or req(), c or ctx())
    assert res.name == check.name and res.detail  # every verdict says what it compared
    record = res.as_dict()
    assert record["values"] is res.values  # the journal keeps the numbers of every verdict
    assert ("detail" in record) is (not res.passed)  # and the sentence of every failure
    return res.passed


# -- trading state, venue ---------------------------------------------------------------------
@pytest.mark.parametrize("state, purpose, source, expected", [
    (TradingState.ACTIVE, ENTRY, "strategy", True),
    (TradingState.ACTIVE, EXIT, "strategy", True),
    (TradingState.REDUCE_ONLY, ENTRY, "strategy", False),
    (TradingState.REDUCE_ONLY, ENTRY, "operator", False),
    (TradingState.REDUCE_ONLY, EXIT, "strategy", True),
    (TradingState.REDUCE_ONLY, STOP, "system", True),
    (TradingState.HALTED, ENTRY, "operator", False),
    (TradingState.HALTED, ENTRY, "system", False),
    (TradingState.HALTED, EXIT, "strategy", False),
    (TradingState.HALTED, EXIT, "operator", True),
    (TradingState.HALTED, STOP, "system", True),
    (TradingState.HALTED, STOP, "strategy", False),
])
def test_trading_state(state, purpose, source, expected):
    assert ok(TradingStateCheck(), req(purpose=purpose, source=source), ctx(trading_state=state)) is expected


@pytest.mark.parametrize("changes, expected", [
    ({}, True),
    ({"venue_connected": False}, False),
    ({"account_blocked": True}, False),
    ({"venue_environment": "live"}, False),         # a paper profile talking to a live venue
    ({"venue_environment": "live", "mode": "live"}, True),
])
def test_venue_health(changes, expected):
    assert ok(VenueHealthCheck(), c=ctx(**changes)) is expected


# -- reduces position -------------------------------------------------------------------------
@pytest.mark.parametrize("pos, side, qty, expected", [
    ("1", Side.SELL, "1", True),                 # at: closes exactly
    ("1", Side.SELL, "0.999999", True),          # below
    ("1", Side.SELL, "1.000001", False),         # above: would flip
    ("1", Side.BUY, "0.5", False),               # adds
    ("0", Side.SELL, "1", False),                # nothing to reduce
    ("-2", Side.BUY, "2", True),
    ("-2", Side.BUY, "2.000001", False),
    ("-2", Side.SELL, "1", False),
])
def test_reduces_position(pos, side, qty, expected):
    r = req(side=side, quantity=D(qty), purpose=EXIT)
    assert ok(ReducesPositionCheck(), r, ctx(position_qty=D(pos))) is expected


# -- market data ------------------------------------------------------------------------------
@pytest.mark.parametrize("bid, ask, price, expected", [
    ("99.99", "100.01", "100", True),
    ("100", "100", "100", True),        # locked book is not crossed
    ("100.02", "100.01", "100", False), # crossed
    ("0", "100.01", "100", False),
    ("99.99", "100.01", "0", False),
    ("NaN", "100.01", "100", False),
])
def test_price_validity(bid, ask, price, expected):
    assert ok(PriceValidityCheck(), req(price=D(price)), ctx(quote=quote(bid, ask))) is expected
    assert ok(PriceValidityCheck(), c=ctx(quote=None)) is False


@pytest.mark.parametrize("age, expected", [(10.0, True), (9.99, True), (10.01, False), (None, False)])
def test_data_freshness(age, expected):
    assert ok(DataFreshnessCheck(10), c=ctx(quote_age_seconds=age)) is expected


@pytest.mark.parametrize("bid, ask, expected", [
    ("99.75", "100.25", True),    # 0.50 / 100 = 50 bps: at the limit
    ("99.76", "100.24", True),
    ("99.74", "100.26", False),
])
def test_spread(bid, ask, expected):
    assert ok(SpreadCheck(D(50)), c=ctx(quote=quote(bid, ask))) is expected
    assert ok(SpreadCheck(D(50)), c=ctx(quote=None)) is False


@pytest.mark.parametrize("qty, volume, touch, expected", [
    ("10", "100", "1000", True),       # 10 == 10 % of the last minute's 100
    ("10.000001", "100", "1000", False),
    ("5", "100", "5", True),           # 5 == 1 x the touch
    ("5.000001", "100", "5", False),
    ("1000", None, "0", True),         # nothing known: only known liquidity refuses
])
def test_liquidity(qty, volume, touch, expected):
    check = VolumeCheck(D("0.1"), D(1))
    c = ctx(recent_volume=None if volume is None else D(volume), quote=quote(size=touch))
    assert ok(check, req(quantity=D(qty)), c) is expected


@pytest.mark.parametrize("price, expected", [("102", True), ("98", True), ("102.01", False), ("97.99", False)])
def test_limit_price_distance_from_mid(price, expected):
    assert ok(LimitPriceCheck(D(2)), req(price=D(price), stop_price=D("90")), ctx(quote=quote("99.99", "100.01"))) is expected


@pytest.mark.parametrize("bid, ask, expected", [
    ("104.99", "105.01", True),    # mid 105: exactly 5 % above the last good 100
    ("104.98", "105.02", True),
    ("105", "105.02", False),      # mid 105.01
    ("94.99", "95.01", True),      # mid 95: exactly 5 % below
    ("94.98", "95", False),
])
def test_price_spike(bid, ask, expected):
    r = req(price=D(ask), stop_price=D(ask) * D("0.92"))
    assert ok(SpikeCheck(D(5)), r, ctx(last_good_price=D(100), quote=quote(bid, ask))) is expected


def test_price_spike_without_reference_needs_a_quote():
    assert ok(SpikeCheck(D(5)), c=ctx(last_good_price=None)) is True
    assert ok(SpikeCheck(D(5)), c=ctx(last_good_price=None, quote=None)) is False


def test_trading_hours_24_7_always_open():
    check = TradingHoursCheck(MarketHoursConfig())
    for hour in (0, 6, 23):
        assert ok(check, c=ctx(now=NOW.replace(hour=hour))) is True


# -- signal -----------------------------------------------------------------------------------
@pytest.mark.parametrize("edge, expected", [(0.08, True), (0.0799999, False), (0.0800001, True), (0.0, False)])
def test_min_edge(edge, expected):
    assert ok(MinEdgeCheck(0.08), req(edge=edge)) is expected


@pytest.mark.parametrize("conf, expected", [(0.7, True), (0.6999999, False), (0.7000001, True), (1.0, True)])
def test_min_confidence(conf, expected):
    assert ok(MinConfidenceCheck(0.7), req(confidence=conf)) is expected


@pytest.mark.parametrize("state, expected", [("ready", True), ("forming", False), ("not_ready", False)])
def test_readiness(state, expected):
    assert ok(ReadinessCheck(["ready"]), req(readiness=state)) is expected
    assert ok(ReadinessCheck(["ready", "forming"]), req(readiness="forming")) is True


@pytest.mark.parametrize("side, stop, expected", [
    (Side.BUY, "95", True),       # exactly 5 %
    (Side.BUY, "85", True),       # exactly 15 %
    (Side.BUY, "95.01", False),   # 4.99 %
    (Side.BUY, "84.99", False),   # 15.01 %
    (Side.BUY, "92", True),
    (Side.BUY, "108", False),     # wrong side
    (Side.SELL, "105", True),
    (Side.SELL, "115", True),
    (Side.SELL, "104.99", False),
    (Side.SELL, "115.01", False),
    (Side.SELL, "92", False),     # wrong side for a short
    (Side.BUY, None, False),      # no stop at all
    (Side.BUY, "0", False),
    (Side.BUY, "-5", False),
])
def test_stop_loss(side, stop, expected):
    r = req(side=side, stop_price=None if stop is None else D(stop))
    assert ok(StopLossCheck(D(5), D(15)), r) is expected


def test_stop_loss_with_no_price_fails_instead_of_dividing_by_zero():
    assert ok(StopLossCheck(D(5), D(15)), req(price=D(0))) is False


# -- account ----------------------------------------------------------------------------------
@pytest.mark.parametrize("open_, pos, expected", [
    (4, "0", True),    # new position makes 5: at the limit
    (3, "0", True),    # below
    (5, "0", False),   # would make 6
    (5, "0.1", True),  # adding to an existing one opens nothing new
    (6, "0.1", False), # already over
])
def test_max_open_positions(open_, pos, expected):
    assert ok(MaxOpenPositionsCheck(5), c=ctx(open_positions=open_, position_qty=D(pos))) is expected


@pytest.mark.parametrize("period, today, week, pos, cont, expected", [
    ("day", 9, 0, "0", False, True),
    ("day", 10, 0, "0", False, False),
    ("day", 10, 0, "1", False, True),    # adding to a position opens none
    ("day", 10, 0, "0", True, True),     # a continuation was already counted
    ("week", 0, 39, "0", False, True),
    ("week", 0, 40, "0", False, False),
])
def test_new_positions(period, today, week, pos, cont, expected):
    check = NewPositionsCheck(period, 10 if period == "day" else 40)
    c = ctx(new_positions_today=today, new_positions_week=week, position_qty=D(pos))
    assert ok(check, req(continuation=cont), c) is expected


@pytest.mark.parametrize("qty, pos, equity, expected", [
    ("10", "0", "10000", True),          # 1000 == 10 % of 10000
    ("9.99", "0", "10000", True),
    ("10.0001", "0", "10000", False),
    ("5", "5", "10000", True),           # position after counts what is held
    ("5", "5.0001", "10000", False),
    ("50", "0", "100000", True),         # 5000 == max order usd, below 10 % of 100000
    ("50.0001", "0", "100000", False),   # max order usd binds
    ("0.1", "0", "10000", True),         # 10.00 == the min order
    ("0.0999", "0", "10000", False),     # below the min order
])
def test_position_size(qty, pos, equity, expected):
    check = PositionSizeCheck(D(10), D(5000), D(10))
    assert ok(check, req(quantity=D(qty)), ctx(position_qty=D(pos), equity=D(equity))) is expected


@pytest.mark.parametrize("exposure, qty, expected", [("0", "10", True), ("500", "5", True), ("500", "5.0001", False)])
def test_symbol_concentration(exposure, qty, expected):
    c = ctx(symbol_exposure=D(exposure))
    assert ok(SymbolConcentrationCheck(D(10)), req(quantity=D(qty)), c) is expected


@pytest.mark.parametrize("held, qty, expected", [("1000", "10", True), ("1000", "10.0001", False)])
def test_group_concentration(held, qty, expected):
    check = GroupConcentrationCheck({"majors": ["BTC/USD", "ETH/USD"]}, D(20))
    c = ctx(exposure_by_symbol={"ETH/USD": D(held), "SOL/USD": D("5000")})
    assert ok(check, req(quantity=D(qty)), c) is expected
    assert ok(check, req(symbol="SOL/USD", quantity=D("1000")), c) is True  # in no group


@pytest.mark.parametrize("cash, qty, side, expected", [
    ("10000", "75", Side.BUY, True),       # 10000 - 7500 == 2500 == 25 %
    ("10000", "74.99", Side.BUY, True),
    ("10000", "75.01", Side.BUY, False),
    ("2000", "75", Side.SELL, False),      # already below the reserve: a sell spends nothing but
    ("2500", "75", Side.SELL, True),       # the floor is still compared with the cash left
])
def test_cash_reserve(cash, qty, side, expected):
    r = req(quantity=D(qty), side=side, stop_price=D("108") if side is Side.SELL else D("92"))
    assert ok(CashReserveCheck(D(25), D(0)), r, ctx(cash=D(cash))) is expected


@pytest.mark.parametrize("cash, expected", [
    ("10015", True),      # 75 x 100 x 1.002 = 7515 spent: 2500 left, the 25 % floor of 10000
    ("10014.99", False),  # a cent under it, though the notional alone (7500) left 2514.99
])
def test_cash_reserve_counts_what_a_buy_costs_beyond_its_notional(cash, expected):
    assert ok(CashReserveCheck(D(25), D("0.002")), req(quantity=D(75)), ctx(cash=D(cash))) is expected


@pytest.mark.parametrize("cash, expected", [("100.20", True), ("100.19", False)])
def test_buying_power_includes_fees(cash, expected):
    assert ok(BuyingPowerCheck(D("0.002")), c=ctx(cash=D(cash))) is expected  # 100 + 0.2 % fee
    assert ok(BuyingPowerCheck(D("0.002")), req(side=Side.SELL, stop_price=D(108)), ctx(cash=D(0))) is True


@pytest.mark.parametrize("gross, qty, expected", [("99000", "10", True), ("98999.99", "10", True),
                                                  ("99000.01", "10", False), ("0", "1000.0001", False)])
def test_total_capital(gross, qty, expected):
    assert ok(TotalCapitalCheck(D(100000)), req(quantity=D(qty)), ctx(gross_exposure=D(gross))) is expected


@pytest.mark.parametrize("qty, max_usd, expected", [
    ("12.5", "200", True),      # 8 x 12.5 = 100 == 1 % of 10000
    ("12.49", "200", True),
    ("12.51", "200", False),
    ("6.25", "50", True),       # the USD cap binds: 8 x 6.25 = 50
    ("6.26", "50", False),
])
def test_single_trade_loss(qty, max_usd, expected):
    check = SingleTradeLossCheck(D(max_usd), D(1), D(0))
    assert ok(check, req(quantity=D(qty)), ctx()) is expected


def test_single_trade_loss_counts_fees_and_needs_a_stop():
    check = SingleTradeLossCheck(D(50), D(1), D("0.002"))
    # 8 x 6.25 = 50 at the stop, plus fees both ways: over the 50 USD cap
    assert ok(check, req(quantity=D("6.25"))) is False
    assert ok(check, req(stop_price=None)) is False


@pytest.mark.parametrize("held, avg, qty, expected", [
    ("6", "100", "6.5", True),      # 8 x 6 held + 8 x 6.5 added = 100 == 1 % of 10000: the whole trade at the cap
    ("6", "100", "6.51", False),
    ("12.5", "100", "0.01", False),  # the cap spent by what is held: any add breaks it
    ("6", "96", "9.5", True),        # held bought lower, its own average: 4 x 6 + 8 x 9.5 = 100
    ("6", "96", "9.51", False),
])
def test_single_trade_loss_of_an_add_counts_what_is_held(held, avg, qty, expected):
    """An add to a position is one trade with it: the position's stop after the add is at least as
    tight as the add's (never loosened), so the whole position's loss at the add's stop bounds it.
    Judged alone, every add spent a fresh cap and the position's loss at its stop grew without end."""
    check = SingleTradeLossCheck(D(200), D(1), D(0))
    assert ok(check, req(quantity=D(qty)), ctx(position_qty=D(held), position_avg=D(avg))) is expected


@pytest.mark.parametrize("held, own_stop, qty, expected", [
    ("12.5", "96", "12.5", True),   # the held stop is tighter and stays: 4 x 12.5 + 4 x 12.5 = 100
    ("12.5", "96", "12.51", False),
    ("6", "90", "6.5", True),       # the add's stop (92) is tighter and becomes the position's: 8 x 6 + 8 x 6.5
    ("6", "90", "6.51", False),
])
def test_single_trade_loss_of_an_add_is_taken_at_the_stop_the_position_will_keep(held, own_stop, qty, expected):
    check = SingleTradeLossCheck(D(200), D(1), D(0))
    c = ctx(position_qty=D(held), position_avg=D(100), position_stop=D(own_stop))
    assert ok(check, req(quantity=D(qty)), c) is expected


def test_single_trade_loss_of_an_entry_beside_a_working_one_prices_it_at_the_order():
    # Entries sent and not filled count in position_qty with no average yet: priced at the request's
    # price (100, stop 92): 8 x 6 + 8 x 6.5 = 100 at the cap; one more cent of size breaks it.
    check = SingleTradeLossCheck(D(200), D(1), D(0))
    assert ok(check, req(quantity=D("6.5")), ctx(position_qty=D(6))) is True
    assert ok(check, req(quantity=D("6.51")), ctx(position_qty=D(6))) is False


def test_single_trade_loss_of_a_sell_is_not_an_add_to_a_long():
    check = SingleTradeLossCheck(D(200), D(1), D(0))
    sell = req(side=Side.SELL, price=D(100), stop_price=D(108), quantity=D("12.5"))
    assert ok(check, sell, ctx(position_qty=D(12), position_avg=D(100))) is True


def test_stage_cap_capital_and_position():
    micro = StageCapCheck("micro", D(500), D(10))
    assert ok(micro, req(quantity=D("0.1")), ctx(gross_exposure=D("490"))) is True     # 500 / 10: at both caps
    assert ok(micro, req(quantity=D("0.1001")), ctx(gross_exposure=D("480"))) is False  # position 10.01
    assert ok(micro, req(quantity=D("0.1")), ctx(gross_exposure=D("490.01"))) is False  # deployed 500.01
    assert ok(micro, req(quantity=D("0.05")), ctx(position_qty=D("0.05"))) is True     # held + order = 10
    assert ok(micro, req(quantity=D("0.05")), ctx(position_qty=D("0.0501"))) is False
    # stages without caps (paper) never refuse on size
    assert ok(StageCapCheck("paper", None, None), req(quantity=D("1000")), ctx(gross_exposure=D("99999"))) is True


@pytest.mark.parametrize("period, pnl, expected", [
    ("day", "-199.99", True),   # below the 200 limit (2 % of 10000)
    ("day", "-200", False),     # at the limit: no new risk
    ("day", "-200.01", False),
    ("day", "350", True),       # a gain is no loss
    ("week", "-999.99", True),  # weekly: 10 % of 10000
    ("week", "-1000", False),
])
def test_loss_limits(period, pnl, expected):
    check = LossLimitCheck(period, D(2) if period == "day" else D(10), None)
    c = ctx(pnl_today=D(pnl)) if period == "day" else ctx(pnl_week=D(pnl))
    assert ok(check, c=c) is expected


@pytest.mark.parametrize("pnl, expected", [("-149.99", True), ("-150", False)])
def test_daily_loss_usd_cap_applies_when_tighter(pnl, expected):
    assert ok(LossLimitCheck("day", D(2), D(150)), c=ctx(pnl_today=D(pnl))) is expected
    assert ok(LossLimitCheck("day", D(2), D(500)), c=ctx(pnl_today=D("-200"))) is False  # % is tighter


def test_loss_limit_follows_a_new_starting_equity():
    # The limit is worked out once per starting equity: a new day's equity must move it at once.
    check = LossLimitCheck("day", D(2), None)
    for start, pnl, limit, expected in [("10000", "-199", "200", True), ("10000", "-199", "200", True),
                                        ("5000", "-199", "100", False), ("5000.00", "-99", "100.00", True)]:
        r = check.evaluate(req(), ctx(day_start_equity=D(start), pnl_today=D(pnl)))
        assert r.passed is expected and str(r.values["limit"]) == limit


# -- throttles --------------------------------------------------------------------------------
@pytest.mark.parametrize("count, cont, expected", [(19, False, True), (20, False, False), (21, False, False),
                                                   (20, True, True), (0, False, True)])
def test_trades_per_day(count, cont, expected):
    assert ok(TradesPerDayThrottle(20), req(continuation=cont), ctx(trades_today=count)) is expected


@pytest.mark.parametrize("count, cont, expected", [(4, False, True), (5, False, False), (6, False, False),
                                                   (5, True, True)])
def test_trades_per_hour(count, cont, expected):
    assert ok(TradesPerHourThrottle(5), req(continuation=cont), ctx(trades_last_hour=count)) is expected


@pytest.mark.parametrize("since, cont, expected", [(None, False, True), (60.0, False, True), (59.999, False, False),
                                                   (60.001, False, True), (0.0, False, False), (0.0, True, True)])
def test_min_seconds_between_trades(since, cont, expected):
    r = req(continuation=cont)
    assert ok(MinIntervalThrottle(60), r, ctx(seconds_since_last_trade=since)) is expected


# -- the gate ---------------------------------------------------------------------------------
GATE = RiskGate(default_checks(Profile()))
ENTRY_CHECKS = [c.name for c in GATE.checks if ENTRY in c.applies_to]
EXIT_CHECKS = [c.name for c in GATE.checks if EXIT in c.applies_to]


def test_default_checks_cover_every_limit():
    assert set(ENTRY_CHECKS) >= {
        "trading_state", "stop_loss", "min_edge", "min_confidence", "max_open_positions", "position_size",
        "single_trade_loss", "total_capital", "cash_reserve", "daily_loss", "trades_per_day",
        "trades_per_hour", "min_seconds_between_trades"}
    assert "reduces_position" not in ENTRY_CHECKS
    # exits and stops must always be possible when they shrink a position: only these judge them
    assert set(EXIT_CHECKS) == {"trading_state", "reduces_position"}
    assert len({c.name for c in GATE.checks}) == len(GATE.checks)


def test_gate_approves_a_clean_entry_with_every_verdict_recorded():
    d = GATE.evaluate(req(), ctx())
    assert d.approved and d.failed is None and d.failure is None, d.failure
    assert [c.name for c in d.checks] == ENTRY_CHECKS
    assert all(c.passed for c in d.checks)
    assert d.as_dict()["checks"][0]["name"] == ENTRY_CHECKS[0]


def test_gate_keeps_every_result_and_names_the_first_failure():
    # fails three checks: low edge, too many open positions, and the throttle
    d = GATE.evaluate(req(edge=0.01), ctx(open_positions=5, trades_today=20))
    assert not d.approved
    assert [x.name for x in d.checks] == ENTRY_CHECKS  # nothing skipped after the first failure
    failing = [x.name for x in d.checks if not x.passed]
    assert set(failing) == {"min_edge", "max_open_positions", "trades_per_day"}
    assert d.failed == failing[0] == d.failure.name


def test_gate_exits_are_judged_only_by_state_and_reduction():
    # an exit is allowed at a daily loss limit, with no stop, with 0 edge, on a stale quote
    r = req(purpose=EXIT, side=Side.SELL, stop_price=None, edge=0.0, confidence=0.0, source="operator")
    c = ctx(position_qty=D("1"), pnl_today=D("-5000"), trades_today=99, open_positions=9, quote=None,
            quote_age_seconds=None)
    d = GATE.evaluate(r, c)
    assert d.approved and [x.name for x in d.checks] == EXIT_CHECKS
    halted = GATE.evaluate(replace(r, source="strategy"), replace(c, trading_state=TradingState.HALTED))
    assert not halted.approved and halted.failed == "trading_state"


# -- property: the gate never lets a breach through, and always says why not ---------------
R = Profile().risk
S = Profile().sizing


@st.composite
def cases(draw) -> tuple[OrderRequest, RiskContext]:
    """Requests and contexts whose numbers sit near the limits: a clean case (most entries pass)
    or a straddling one (each number may land on either side of its limit)."""
    clean = draw(st.booleans())

    def pick(clean_strategy, straddle_strategy):
        return draw(clean_strategy if clean else straddle_strategy)

    price = draw(st.decimals(min_value=D("1"), max_value=D("1000"), places=2))
    side = draw(st.sampled_from([Side.BUY, Side.SELL]))
    dist = pick(st.integers(550, 1450), st.integers(300, 1700)) / D(10000)
    wrong_side = not clean and draw(st.integers(0, 9)) == 0
    sign = (-1 if side is Side.BUY else 1) * (-1 if wrong_side else 1)
    stop = None if not clean and draw(st.integers(0, 19)) == 0 else (price * (1 + sign * dist)).quantize(D("0.01"))
    notional = pick(st.integers(20, 900), st.integers(5, 1500))
    qty = max((notional / price).quantize(D("0.000001")), D("0.000001"))
    r = OrderRequest("BTC/USD", side, qty, price, stop,
                     draw(st.sampled_from([ENTRY, ENTRY, ENTRY, EXIT, STOP])),
                     draw(st.sampled_from(["strategy", "operator", "system"])),
                     edge=pick(st.floats(0.08, 0.5), st.floats(0.06, 0.1)),
                     confidence=pick(st.floats(0.7, 1.0), st.floats(0.65, 0.75)),
                     readiness="ready" if clean else draw(st.sampled_from(["ready", "forming"])),
                     continuation=draw(st.booleans()))
    half = price * pick(st.integers(0, 40), st.integers(0, 120)) / D(20000)
    equity = draw(st.decimals(min_value=D("2000"), max_value=D("30000"), places=2))
    c = RiskContext(
        now=NOW,
        trading_state=TradingState.ACTIVE if clean else draw(st.sampled_from(list(TradingState))),
        equity=equity,
        cash=pick(st.just(equity), st.decimals(min_value=D("500"), max_value=D("30000"), places=2)),
        day_start_equity=equity,
        pnl_today=pick(st.integers(-20, 300).map(D), st.integers(-800, 300).map(D)),
        open_positions=pick(st.integers(0, 4), st.integers(3, 6)),
        position_qty=draw(st.one_of(st.just(D(0)), st.decimals(min_value=D("-20"), max_value=D("20"), places=6))),
        gross_exposure=pick(st.just(D(0)), st.decimals(min_value=D("98000"), max_value=D("101000"), places=2)),
        trades_today=pick(st.integers(0, 19), st.integers(17, 21)),
        trades_last_hour=pick(st.integers(0, 4), st.integers(3, 6)),
        seconds_since_last_trade=pick(st.one_of(st.none(), st.floats(60, 600)),
                                      st.one_of(st.none(), st.floats(40, 80))),
        week_start_equity=equity,
        pnl_week=D(0),
        quote=Quote("BTC/USD", NOW, price - half, price + half, D(1000), D(1000), price),
        quote_age_seconds=pick(st.floats(0, 9), st.floats(0, 12)),
        last_good_price=price,
        recent_volume=None,
    )
    return r, c


random_requests = st.builds(
    OrderRequest,
    symbol=st.just("BTC/USD"),
    side=st.sampled_from([Side.BUY, Side.SELL]),
    quantity=st.decimals(min_value=D("0.000001"), max_value=D("100"), places=6),
    price=st.decimals(min_value=D("0.01"), max_value=D("1000"), places=2),
    stop_price=st.one_of(st.none(), st.decimals(min_value=D("0"), max_value=D("1200"), places=2)),
    purpose=st.sampled_from(list(OrderPurpose)),
    source=st.sampled_from(["strategy", "operator", "system"]),
    edge=st.floats(0, 1),
    confidence=st.floats(0, 1),
    continuation=st.booleans(),
)
random_contexts = st.builds(
    ctx,
    trading_state=st.sampled_from(list(TradingState)),
    equity=st.decimals(min_value=D("0.01"), max_value=D("200000"), places=2),
    cash=st.decimals(min_value=D("-1000"), max_value=D("200000"), places=2),
    pnl_today=st.decimals(min_value=D("-5000"), max_value=D("5000"), places=2),
    open_positions=st.integers(0, 8),
    position_qty=st.decimals(min_value=D("-50"), max_value=D("50"), places=6),
    trades_today=st.integers(0, 30),
    seconds_since_last_trade=st.one_of(st.none(), st.floats(0, 600)),
)


@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(cases(), cases(), cases(), st.tuples(random_requests, random_contexts)))
def test_gate_property(case):
    r, c = case
    d = GATE.evaluate(r, c)
    names = [x.name for x in d.checks]
    if d.approved:
        assert d.failed is None and all(x.passed for x in d.checks)
        if c.trading_state is TradingState.HALTED:
            assert r.purpose is not ENTRY and r.source in ("operator", "system")
        if r.purpose is ENTRY:
            assert c.trading_state is TradingState.ACTIVE
            assert c.open_positions + (1 if c.position_qty == 0 else 0) <= R.max_open_positions
            value = (abs(c.position_qty) + r.quantity) * r.price
            assert value <= min(c.equity * R.max_position_pct / 100, S.max_order_usd)
            assert r.stop_price is not None
            stop_dist = abs(r.price - r.stop_price) / r.price * 100
            assert R.stop_loss_min_pct <= stop_dist <= R.stop_loss_max_pct
            assert (r.stop_price < r.price) if r.side is Side.BUY else (r.stop_price > r.price)
            assert r.edge >= R.min_edge and r.confidence >= R.min_confidence
            assert c.gross_exposure + r.quantity * r.price <= R.max_total_capital_usd
            assert abs(r.price - r.stop_price) * r.quantity <= R.max_single_trade_loss_usd
            if not r.continuation:
                assert c.trades_today < R.max_trades_per_day and c.trades_last_hour < R.max_trades_per_hour
        else:
            # an exit or stop only ever shrinks the position
            assert c.position_qty != 0 and r.quantity <= abs(c.position_qty)
            assert (c.position_qty > 0) == (r.side is Side.SELL)
    else:
        assert d.failed in names
        first = next(x for x in d.checks if not x.passed)
        assert first.name == d.failed


# -- breakers ---------------------------------------------------------------------------------
class Meter:
    def __init__(self, limit: str = "100") -> None:
        self.value = D(0)
        self.limit = D(limit)

    def __call__(self) -> tuple[D, D]:
        return self.value, self.limit


def breaker(meter: Meter, action: str = "block") -> Breaker:
    return Breaker("daily_loss", action, "usd", "day", meter)


def step(b: Breaker, m: Meter, value: str):
    m.value = D(value)
    t = b.evaluate()
    return None if t is None else (t.old.value, t.new.value)


@pytest.mark.parametrize("value, state", [
    ("59.99", "armed"), ("60", "warning"), ("60.01", "warning"),
    ("79.99", "warning"), ("80", "critical"), ("99.99", "critical"), ("100", "tripped"), ("250", "tripped"),
])
def test_breaker_thresholds(value, state):
    m = Meter()
    b = breaker(m)
    step(b, m, value)
    assert b.state.value == state


def test_breaker_one_transition_per_crossing():
    m = Meter()
    b = breaker(m)
    assert step(b, m, "10") is None
    assert step(b, m, "60") == ("armed", "warning")
    assert step(b, m, "60") is None           # same value: no second alert
    assert step(b, m, "70") is None           # still in the warning band
    assert step(b, m, "80") == ("warning", "critical")
    assert step(b, m, "81") is None
    assert step(b, m, "59") == ("critical", "armed")  # falling back is a transition too, not a rise
    assert step(b, m, "100") == ("armed", "tripped")  # a jump straight to tripped is one transition
    assert step(b, m, "100") is None


def test_breaker_tripped_holds_until_reset():
    m = Meter()
    b = breaker(m, "halt")
    assert step(b, m, "100") == ("armed", "tripped")
    for v in ("0", "50", "99", "150"):
        assert step(b, m, v) is None
        assert b.state is BreakerState.TRIPPED
    assert b.value == D("150")  # the numbers keep updating for the screen
    b.reset()
    assert b.state is BreakerState.ARMED
    assert step(b, m, "10") is None
    assert step(b, m, "100") == ("armed", "tripped")


def test_breaker_rises_and_falls():
    m = Meter()
    b = breaker(m)
    m.value = D("85")
    up = b.evaluate()
    m.value = D("10")
    down = b.evaluate()
    assert is_rise(up) and not is_rise(down)


def test_breaker_with_no_limit_stays_armed_and_bad_action_is_refused():
    m = Meter("0")
    b = breaker(m)
    assert step(b, m, "1000") is None and b.state is BreakerState.ARMED and b.ratio == 0
    with pytest.raises(ValueError):
        Breaker("x", "explode", "usd", "day", m)


def test_breaker_text_shows_value_limit_and_percent():
    m = Meter()
    b = breaker(m)
    step(b, m, "62")
    assert "62 %" in b.text() and "$62.00" in b.text() and "$100.00" in b.text()


def test_trading_state_refusal_names_what_holds_it():
    from engine.risk.checks import TradingStateCheck

    held = TradingStateCheck().evaluate(req(), ctx(trading_state=TradingState.REDUCE_ONLY,
                                                   state_reason="daily_loss tripped"))
    assert not held.passed and held.values["why"] == "daily_loss tripped"
    assert held.detail == "state reduce_only (daily_loss tripped), entry from strategy"
    calm = TradingStateCheck().evaluate(req(), ctx())
    assert calm.passed and "why" not in calm.values  # active: nothing to explain
