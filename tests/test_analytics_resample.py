"""Bootstrap CIs and Monte Carlo: seeded, the same on one thread or two, and statistically sane."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.analytics.resample import Scratch, bootstrap_sharpe, bootstrap_trades, monte_carlo


def test_indices_are_uniform_and_in_range():
    g = np.random.Generator(np.random.SFC64(1))
    idx = Scratch().indices(g, 200, 1000)
    assert idx.shape == (200, 1000) and idx.dtype == np.intp
    assert idx.min() == 0 and idx.max() == 999
    counts = np.bincount(idx.ravel(), minlength=1000)
    chi2 = ((counts - 200) ** 2 / 200).sum()  # 999 degrees of freedom: mean 999, sd ~45
    assert 800 < chi2 < 1200


def test_bootstrap_is_seeded_and_independent_of_threads():
    pnl = np.random.default_rng(3).normal(1, 10, 500)
    a = bootstrap_trades(pnl, resamples=3000, seed=9, workers=1)
    b = bootstrap_trades(pnl, resamples=3000, seed=9, workers=2)
    c = bootstrap_trades(pnl, resamples=3000, seed=10, workers=1)
    assert a == b
    assert a["expectancy"] != c["expectancy"]


def test_bootstrap_intervals_match_the_normal_theory():
    rng = np.random.default_rng(5)
    n = 400
    pnl = np.where(rng.random(n) < 0.5, rng.uniform(5, 15, n), -rng.uniform(5, 15, n))
    ci = bootstrap_trades(pnl, resamples=10_000, seed=1)
    p = (pnl > 0).mean()
    half = 1.96 * math.sqrt(p * (1 - p) / n) * 100
    wr = ci["win_rate_pct"]
    assert wr["estimate"] == pytest.approx(p * 100)
    assert wr["low"] == pytest.approx(p * 100 - half, abs=1.0) and wr["high"] == pytest.approx(p * 100 + half, abs=1.0)
    ex = ci["expectancy"]
    se = pnl.std(ddof=1) / math.sqrt(n)
    assert ex["estimate"] == pytest.approx(pnl.mean())
    assert ex["high"] - ex["low"] == pytest.approx(2 * 1.96 * se, rel=0.08)
    pf = ci["profit_factor"]
    assert pf["low"] < pf["estimate"] < pf["high"]


def test_bootstrap_edge_cases():
    empty = bootstrap_trades([], resamples=100)
    assert empty["win_rate_pct"]["estimate"] is None and empty["profit_factor"]["low"] is None
    wins = bootstrap_trades([1.0, 2.0, 3.0], resamples=500, seed=1)
    assert wins["profit_factor"]["estimate"] == math.inf and wins["profit_factor"]["low"] == math.inf
    assert wins["win_rate_pct"]["low"] == wins["win_rate_pct"]["high"] == 100.0
    losses = bootstrap_trades([-1.0, -2.0], resamples=500, seed=1)
    assert losses["profit_factor"]["high"] == 0.0 and losses["win_rate_pct"]["high"] == 0.0


def test_bootstrap_sharpe():
    assert bootstrap_sharpe([0.01], 365)["estimate"] is None
    r = np.random.default_rng(2).normal(0.002, 0.01, 250)
    ci = bootstrap_sharpe(r, 252, resamples=4000, seed=3)
    est = r.mean() / r.std(ddof=1) * math.sqrt(252)
    assert ci["estimate"] == pytest.approx(est)
    assert ci["low"] < est < ci["high"]
    # the Sharpe standard error is about sqrt((1 + SR_daily^2 / 2) / n) per period
    sr = r.mean() / r.std(ddof=1)
    se = math.sqrt((1 + sr * sr / 2) / len(r)) * math.sqrt(252)
    assert ci["high"] - ci["low"] == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert bootstrap_sharpe(r, 252, resamples=4000, seed=3) == ci


def test_monte_carlo_known_paths():
    down = monte_carlo([-100.0], 1000.0, resamples=50, horizon=5, stop_pct=25, loss_pct=10)
    assert down["p_hit_drawdown_stop"] == 1.0 and down["p_loss_pct"] == 1.0 and down["p_final_loss"] == 1.0
    assert down["max_drawdown_pct"]["p50"] == pytest.approx(50.0)
    assert down["final_return_pct"]["p50"] == pytest.approx(-50.0)
    up = monte_carlo([10.0, 20.0], 1000.0, resamples=50)
    assert up["p_hit_drawdown_stop"] == 0.0 and up["max_drawdown_pct"]["p95"] == 0.0
    assert monte_carlo([], 1000.0)["p_loss_pct"] is None


def test_monte_carlo_probabilities_are_plausible_and_seeded():
    pnl = np.random.default_rng(8).normal(0.0, 50.0, 300)
    a = monte_carlo(pnl, 10_000.0, resamples=4000, seed=4, stop_pct=10, loss_pct=5, workers=1)
    assert a == monte_carlo(pnl, 10_000.0, resamples=4000, seed=4, stop_pct=10, loss_pct=5, workers=2)
    # a driftless walk of 300 trades of sd 50 (~866 after 300): ending below start about half the time
    assert 0.35 < a["p_final_loss"] < 0.65
    assert 0 < a["p_hit_drawdown_stop"] < a["p_loss_pct"] + 0.2
    q = a["max_drawdown_pct"]
    assert q["p5"] <= q["p25"] <= q["p50"] <= q["p75"] <= q["p95"] <= q["p99"]
