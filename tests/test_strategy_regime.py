"""The market regime the strategy reads (engine/strategy/regime.py): labels at their boundaries,
the tag in the reason, hand-worked volatility and trend, jumps that must not read as trends, and
the labels against the simulated market's own regimes."""
from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal

import pytest

from engine.feeds.sim import SimulatedMarket
from engine.profile import Profile
from engine.strategy import EmaTrendStrategy
from engine.strategy.regime import MAD_NORMAL, Regime, RegimeTracker, parse_tag, tag, trend_label, vol_label


def test_labels_at_their_boundaries():
    assert [vol_label(x) for x in (0.0, 0.3333, 1 / 3, 0.5, 2 / 3, 0.6667, 1.0, None)] == [
        "low", "low", "normal", "normal", "normal", "high", "high", "unknown"]
    assert [trend_label(z) for z in (-3.0, -1.0, -0.999, 0.0, 0.999, 1.0, 2.5, None)] == [
        "down", "down", "flat", "flat", "flat", "up", "up", "unknown"]


def test_the_tag_reads_back():
    r = Regime("high", 0.842, 91.3, "up", 1.3249)
    text = f"trend up vote +0.38 [10s:+0.14@0.46] {tag(r)}"
    assert tag(r) == "regime: vol high (p84), trend up (z +1.32)"
    assert parse_tag(text) == ("high", "up")
    assert tag(Regime("unknown", None, None, "unknown", None)) == "regime: vol unknown, trend unknown"
    assert parse_tag(tag(Regime("low", 0.0, 20.0, "down", -0.5))) == ("low", "down")
    assert parse_tag("trend up vote +0.38 [10s:+0.14@0.46]") is None and parse_tag("") is None


class Bars:
    """Fast-bar closes `dt` seconds apart into a tracker, given by their log returns."""

    def __init__(self, tr: RegimeTracker, dt: float = 10.0) -> None:
        self.tr, self.dt, self.t, self.price = tr, dt, 0.0, 100.0
        tr.on_fast_close(self.t, self.price)

    def returns(self, rs: list[float]) -> float:
        for r in rs:
            self.t += self.dt
            self.price *= math.exp(r)
            self.tr.on_fast_close(self.t, self.price)
        return self.t


def test_volatility_and_trend_worked_by_hand():
    a = 0.001
    tr = RegimeTracker(window_seconds=200)  # 20 returns of 10 s
    Bars(tr).returns([a] * 20)
    g = tr.regime()
    sd = a / math.sqrt(10) / MAD_NORMAL  # per root second: median |u| over the normal's
    assert tr.variance() == pytest.approx(sd * sd, rel=1e-9)
    assert g.vol_annual_pct == pytest.approx(sd * math.sqrt(365 * 86400) * 100, rel=1e-9)
    # 20 equal returns, none beyond 3 sigma: drift 20a over sd * sqrt(200 s) = 0.6745 * sqrt(20)
    assert g.trend_z == pytest.approx(MAD_NORMAL * math.sqrt(20), rel=1e-9) and g.trend == "up"
    assert g.volatility == "unknown" and g.vol_rank is None  # no history to rank against yet

    flat = RegimeTracker(window_seconds=200)
    Bars(flat).returns([a, -a] * 10)
    assert flat.regime().trend_z == pytest.approx(0.0, abs=1e-9) and flat.regime().trend == "flat"


def test_a_gap_is_a_jump_not_a_trend():
    """19 returns alternating +-a and one gap of 10a: clipped to 3 sigma the gap adds 4.45a, and
    the drift stays under one sigma; summed as it is, it would read as an up trend."""
    a = 0.001
    tr = RegimeTracker(window_seconds=200)
    Bars(tr).returns([a, -a] * 9 + [a] + [10 * a])
    sd = a / math.sqrt(10) / MAD_NORMAL  # the median ignores the gap
    assert math.sqrt(tr.variance()) == pytest.approx(sd, rel=1e-9)
    clipped = a + 3 * sd * math.sqrt(10)  # the alternating part nets +a
    z = tr.regime().trend_z
    assert z == pytest.approx(clipped / (sd * math.sqrt(200)), rel=1e-9)
    assert tr.regime().trend == "flat"
    assert (11 * a) / (sd * math.sqrt(200)) > 1  # unclipped it would have said "up"


def test_volatility_is_ranked_against_the_symbols_own_history():
    a = 0.001
    tr = RegimeTracker(window_seconds=200)
    bars = Bars(tr)
    bars.returns([a, -a] * 10)
    for _ in range(30):  # an hour of calm, one reading per 2-minute slow bar
        tr.on_slow_close(bars.returns([a, -a] * 6))
    g = tr.regime()
    assert (g.vol_rank, g.volatility) == (0.5, "normal")  # as volatile as every reading: ties count half
    bars.returns([3 * a, -3 * a] * 10)
    g = tr.regime()
    assert g.vol_rank == 1.0 and g.volatility == "high"
    bars.returns([a / 3, -a / 3] * 10)
    assert tr.regime().vol_rank == 0.0 and tr.regime().volatility == "low"


def test_the_strategy_reads_the_simulated_markets_regimes():
    """Against the simulated market's own regime switches: the volatile regime reads mostly high,
    a trending regime reads its direction far more often than the opposite one."""
    profile = Profile()
    strat = EmaTrendStrategy(profile.strategy, profile.risk)
    market = SimulatedMarket(["BTC/USD", "ETH/USD"], seed=7)
    vol: Counter = Counter()
    trend: Counter = Counter()
    reasons = []
    for n in range(36 * 3600):
        for q in market.next_batch():
            sig = strat.on_quote(q, Decimal(0))
            if sig is not None and len(reasons) < 50:
                reasons.append(sig.reason)
            if n > 7200 and n % 60 == 0:
                g = strat.regime(q.symbol)
                vol[(market.regime(q.symbol), g.volatility)] += 1
                trend[(market.regime(q.symbol), g.trend)] += 1

    def share(c: Counter, true: str, label: str) -> float:
        return c[(true, label)] / sum(v for (t, _), v in c.items() if t == true)

    assert share(vol, "volatile", "high") > 0.7 and share(vol, "calm", "low") > share(vol, "calm", "high")
    assert share(trend, "trending_up", "up") > 3 * share(trend, "trending_up", "down")
    assert share(trend, "trending_down", "down") > 3 * share(trend, "trending_down", "up")
    assert share(trend, "calm", "flat") > 0.5
    assert reasons and all(parse_tag(r) is not None for r in reasons)  # every entry says its regime
    assert strat.regime("DOGE/USD") is None  # a symbol never quoted has no regime
