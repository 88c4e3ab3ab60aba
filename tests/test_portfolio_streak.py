"""The losing streak the consecutive-loss breaker reads, counted forward as trades close."""
from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.portfolio import Portfolio


def naive(trades: list[D], base: int) -> int:
    n = 0
    for t in reversed(trades[base:]):
        if t >= 0:
            break
        n += 1
    return n


steps = st.lists(st.one_of(
    st.tuples(st.just("close"), st.integers(-5, 5)),
    st.tuples(st.just("ask"), st.none()),
    st.tuples(st.just("rearm"), st.none()),
    st.tuples(st.just("restore"), st.integers(0, 8)),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_streak_matches_a_full_recount_whatever_the_order_of_closes_rearms_and_restores(script):
    p = Portfolio(D(10000))
    for op, arg in script:
        if op == "close":
            p.closed_trades.append(D(arg))
        elif op == "rearm":
            p.acknowledge_losses(streak=True, pause=True)
        elif op == "restore":  # a restart loads the checkpoint's tail as a new list
            p.closed_trades = list(p.closed_trades[-arg:]) if arg else []
            p.streak_base = 0
        assert p.consecutive_losses() == naive(p.closed_trades, p.streak_base)


def test_a_zero_trade_ends_the_streak_and_a_rearm_starts_it_again():
    p = Portfolio(D(10000))
    p.closed_trades += [D(-1), D(-2), D(-3)]
    assert p.consecutive_losses() == 3
    p.closed_trades.append(D(0))
    assert p.consecutive_losses() == 0
    p.closed_trades += [D(-1)] * 4
    assert p.consecutive_losses() == 4
    p.acknowledge_losses(streak=True, pause=False)
    assert p.consecutive_losses() == 0
    p.closed_trades.append(D("-0.01"))
    assert p.consecutive_losses() == 1
