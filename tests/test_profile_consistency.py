"""Limits that contradict each other (a GO no record can reach, a daily cap above the weekly, an
order floor above all the capital) and names that cannot be symbols pass no more: one line each."""
from __future__ import annotations

import pytest

from engine.config_loader import profile_from_mapping
from test_profile_files import refused


@pytest.mark.parametrize("text, lines", [
    ("readiness:\n  stages:\n    paper: {win_rate_min_pct: 70, win_rate_max_pct: 40}\n",
     ["readiness.stages.paper.win_rate_min_pct: must be <= win_rate_max_pct (40): no record could pass (got 70)"]),
    ("risk: {daily_loss_pct: 20, weekly_loss_pct: 10}\n",
     ["risk.daily_loss_pct: must be <= weekly_loss_pct (10) (got 20)"]),
    ("risk: {daily_loss_usd: 500, weekly_loss_usd: 100}\n",
     ["risk.daily_loss_usd: must be <= weekly_loss_usd (100) (got 500)"]),
    ("sizing: {min_order_usd: 5000}\nrisk: {max_total_capital_usd: 100}\n",
     ["sizing.min_order_usd: must be <= risk.max_total_capital_usd (100): no order could ever be sent (got 5000)"]),
    ("risk: {correlated_groups: {a: [BTC/USD, BTC/USD]}}\n", ["risk.correlated_groups.a: a group needs at least two symbols"]),
    ("risk: {correlated_groups: {a: [BTC/USD, ETH/USD, BTC/USD]}}\n", ["risk.correlated_groups.a: lists BTC/USD twice"]),
    ("readiness:\n  stages:\n    bogus: {}\n",
     ["readiness.stages.bogus: unknown stage; stages are paper, testnet, micro, small, medium, standard"]),
    ('symbols: ["", "   ", " BTC/USD", "ETH/USD\\n", "BTC USD", "SOL/USD\\t", "LTC/USD"]\n', [
        "symbols.0: a symbol cannot be empty (got '')",
        "symbols.1: a symbol cannot be empty (got '   ')",
        "symbols.2: a symbol has no spaces, line breaks or control characters (got ' BTC/USD')",
        "symbols.3: a symbol has no spaces, line breaks or control characters (got 'ETH/USD\\n')",
        "symbols.4: a symbol has no spaces, line breaks or control characters (got 'BTC USD')",
        "symbols.5: a symbol has no spaces, line breaks or control characters (got 'SOL/USD\\t')",
    ]),
    ("mode: testnet\nvenue: {name: binance}\nsymbols: [btc/usdt, ETH/USDT]\n",
     ["symbols.0: binance spells its symbols in upper case (got 'btc/usdt')"]),
])
def test_a_contradiction_or_a_name_that_is_no_symbol_is_one_line_each(tmp_path, text, lines):
    assert refused(tmp_path, text) == [f"{tmp_path / 'p.yaml'}: {line}" for line in lines]


@pytest.mark.parametrize("mapping", [
    {"risk": {"daily_loss_pct": 10, "weekly_loss_pct": 10, "daily_loss_usd": 100, "weekly_loss_usd": 100}},
    {"risk": {"daily_loss_usd": 500}},  # no weekly cap in USD: nothing to contradict
    {"sizing": {"min_order_usd": 100}, "risk": {"max_total_capital_usd": 100}},
    {"readiness": {"stages": {"paper": {"win_rate_min_pct": 50, "win_rate_max_pct": 50}}}},
    # the simulated market takes any name, lower case included; what a replay's rows say is its own check
    {"symbols": ["btc/usd", "BRK.B", "1000SATS/USDT"], "risk": {"correlated_groups": {"a": ["btc/usd", "BRK.B"]}}},
])
def test_limits_at_the_edge_and_odd_but_real_names_are_accepted(mapping):
    profile_from_mapping(mapping)
