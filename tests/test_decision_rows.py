"""The journal rows of a decision's checks: the compiled encoder must build exactly what the
general path builds, whatever the checks answer (engine/risk/gate.py)."""
from __future__ import annotations

from decimal import Decimal

from hypothesis import given, strategies as st

from engine.risk.gate import CheckNames, Decision, _row

KEYS = [("open", "limit"), ("value", "limit", "pct"), (), ("age",)]
NAMES = ("max_open_positions", "position_size", "stop_present", "data_fresh")


def outcome(i: int, passed: bool, numbers: tuple, keys: tuple | None = None) -> tuple:
    keys = KEYS[i] if keys is None else keys
    return (passed, "{%s} over the limit" % keys[0] if keys else "no numbers", keys, numbers[: len(keys)])


def general(names, outcomes) -> list[dict]:
    return [_row(n, o) for n, o in zip(names, outcomes)]


def test_compiled_rows_match_the_general_path_for_the_first_decision_and_later_ones():
    names = CheckNames(NAMES)
    first = [outcome(i, True, (Decimal("1.5"), 2, Decimal("0.1"))) for i in range(4)]
    assert Decision(True, None, None, names=names, outcomes=first).checks_as_dicts() == general(names, first)
    assert names.encoder is not None  # compiled on first use, kept with the names
    later = [outcome(0, True, (Decimal("4"), 5)), outcome(1, False, (Decimal("9"), Decimal("5"), 3)),
             outcome(2, True, ()), outcome(3, True, (Decimal("0.25"),))]
    rows = Decision(False, None, "position_size", names=names, outcomes=later).checks_as_dicts()
    assert rows == general(names, later)
    assert rows[1] == {"name": "position_size", "passed": False, "detail": "9 over the limit",
                       "values": {"value": Decimal("9"), "limit": Decimal("5"), "pct": 3}}
    assert rows[0] == {"name": "max_open_positions", "passed": True, "values": {"open": Decimal("4"), "limit": 5}}


def test_a_check_answering_with_other_value_names_takes_the_general_path():
    names = CheckNames(NAMES[:2])
    Decision(True, None, None, names=names, outcomes=[outcome(0, True, (1, 2)), outcome(1, True, (1, 2, 3))]).checks_as_dicts()
    other = [outcome(0, True, (1, 2), keys=("held", "cap")), outcome(1, True, (1, 2, 3))]
    assert Decision(True, None, None, names=names, outcomes=other).checks_as_dicts() == [
        {"name": "max_open_positions", "passed": True, "values": {"held": 1, "cap": 2}},
        {"name": "position_size", "passed": True, "values": {"value": 1, "limit": 2, "pct": 3}}]


def test_plain_names_and_mismatched_lengths_use_the_general_path():
    outcomes = [outcome(0, True, (1, 2))]
    assert Decision(True, None, None, names=("max_open_positions",), outcomes=outcomes).checks_as_dicts() == \
        general(("max_open_positions",), outcomes)
    names = CheckNames(NAMES[:2])
    assert Decision(True, None, None, names=names, outcomes=outcomes).checks_as_dicts() == general(names, outcomes)
    assert names.encoder is None
    assert Decision(True, None, None, names=CheckNames(()), outcomes=[]).checks_as_dicts() == []


numbers = st.tuples(*[st.one_of(st.integers(), st.decimals(allow_nan=False), st.text(max_size=3))] * 3)


@given(st.lists(st.tuples(st.booleans(), numbers, st.booleans()), min_size=4, max_size=4),
       st.lists(st.tuples(st.booleans(), numbers, st.booleans()), min_size=4, max_size=4))
def test_any_two_decisions_encode_like_the_general_path(first, second):
    names = CheckNames(NAMES)
    for spec in (first, second):
        # Fresh keys tuples (equal, not identical) where asked: those must go the general way.
        outs = [outcome(i, passed, nums, keys=tuple(list(KEYS[i])) if fresh else None)
                for i, (passed, nums, fresh) in enumerate(spec)]
        assert Decision(all(o[0] for o in outs), None, None, names=names, outcomes=outs).checks_as_dicts() == \
            general(names, outs)
