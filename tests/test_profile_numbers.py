"""Numbers that passed validation and then crashed the run with a traceback: integers the journal
(64-bit) cannot hold, money that overflowed Decimal arithmetic, seconds that overflowed timedelta.
Every number of every profile section is bounded once, in the shared base (engine/profile_base.py),
money fields tighter; each refusal is one line naming the file and the field."""
from __future__ import annotations

import typing
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from engine.profile import Profile
from engine.profile_base import INT_MAX, MAX_USD
from test_profile_files import refused

TOO_BIG = "99999999999999999999"


@pytest.mark.parametrize("text, line", [
    (f"risk:\n  max_open_positions: {TOO_BIG}\n",
     f"risk.max_open_positions: must be <= 9223372036854775807 (got {TOO_BIG})"),
    (f"logging:\n  max_bytes: {TOO_BIG}\n", f"logging.max_bytes: must be <= 9223372036854775807 (got {TOO_BIG})"),
    (f"readiness:\n  stages:\n    paper:\n      min_trades: {TOO_BIG}\n",
     f"readiness.stages.paper.min_trades: must be <= 9223372036854775807 (got {TOO_BIG})"),
    (f"alerts:\n  queue_size: -{TOO_BIG}\n", "alerts.queue_size: must be >= 10 (got -99999999999999999999)"),
    ("paper:\n  starting_cash: 1e999999999\n", "paper.starting_cash: must be <= 1000000000000 (got 1e999999999)"),
    ("risk:\n  max_total_capital_usd: 1000000000000.01\n",
     "risk.max_total_capital_usd: must be <= 1000000000000 (got 1000000000000.01)"),
    ("stages:\n  paper:\n    max_capital_usd: 1e13\n",
     "stages.paper.max_capital_usd: must be <= 1000000000000 (got 1e13)"),
    ("risk:\n  max_spread_bps: 1e999999999\n", "risk.max_spread_bps: must be <= 1000000000000000 (got 1e999999999)"),
    ("approval:\n  timeout_seconds: 1.0e+300\n", "approval.timeout_seconds: must be <= 1000000000.0 (got 1e+300)"),
])
def test_a_number_the_run_cannot_hold_is_one_line(tmp_path, text, line):
    assert refused(tmp_path, text) == [f"{tmp_path / 'p.yaml'}: {line}"]


def _int_fields(model: type[BaseModel], prefix: tuple = ()) -> typing.Iterator[tuple[tuple, object]]:
    """(path, a value 2**63 at that path) for every integer field reachable through nested sections."""
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _int_fields(ann, (*prefix, name))
        elif ann is int or ann == (int | None):
            yield (*prefix, name), 2**63
        elif ann == list[int]:
            yield (*prefix, name), [2**63]


INT_FIELDS = list(_int_fields(Profile))


def test_there_are_integer_fields_to_check():
    assert len(INT_FIELDS) >= 15 and (("risk", "max_open_positions"), 2**63) in INT_FIELDS


@pytest.mark.parametrize("path, value", INT_FIELDS, ids=lambda p: ".".join(p) if isinstance(p, tuple) else "")
def test_every_integer_field_holds_at_most_64_bits(path, value):
    data: dict = {}
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    with pytest.raises(ValidationError) as exc:
        Profile.model_validate(data)
    assert any(tuple(e["loc"])[:len(path)] == path for e in exc.value.errors()), exc.value.errors()


async def test_a_profile_at_the_bounds_starts_and_journals(make_profile, open_engine):
    prof = make_profile(risk={"max_open_positions": INT_MAX, "max_trades_per_day": INT_MAX,
                              "max_new_positions_per_week": INT_MAX, "max_total_capital_usd": str(MAX_USD)},
                        logging={"max_bytes": INT_MAX}, paper={"starting_cash": str(MAX_USD)})
    eng = await open_engine(prof)
    assert await eng.journal.count("session") == 1
    assert eng.portfolio.equity == Decimal(MAX_USD)
    await eng.run(duration=60)
