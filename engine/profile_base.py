"""The strict base every profile section uses, shared so each section can live with its code."""
from __future__ import annotations

import typing
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

# The journal stores every row through orjson, which holds 64-bit integers: a larger count passed
# validation and then stopped the run, with a traceback, at its session row.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# No setting needs more: money is capped lower (MAX_USD), percentages at 100, seconds at a few
# years. Beyond this a Decimal overflowed the engine's arithmetic (decimal.Overflow) and a float
# of seconds overflowed timedelta, both at the run's first use, not at load.
MAX_DECIMAL = Decimal(10**15)
MAX_FLOAT = 1e9
# The largest amount of money any setting may name (a trillion): more than any account, and far
# below where Decimal arithmetic on it (28 digits) would lose the cents.
MAX_USD = Decimal(10**12)


def _numbers(value: object) -> typing.Iterator[object]:
    """The numbers in a field's value, inside lists and mappings too (nested models check their own)."""
    if isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        yield value


def _out_of_range(value: object) -> PydanticCustomError | None:
    top = MAX_FLOAT if isinstance(value, float) else MAX_DECIMAL if isinstance(value, Decimal) else INT_MAX
    bottom = INT_MIN if isinstance(value, int) else -top
    if value > top:
        return PydanticCustomError("less_than_equal", "Input should be less than or equal to {le}", {"le": top})
    if value < bottom:
        return PydanticCustomError("greater_than_equal", "Input should be greater than or equal to {ge}", {"ge": bottom})
    return None


class Strict(BaseModel):
    # No infinity or NaN anywhere: YAML spells them .inf and .nan, and an infinite timeout or age
    # limit is a limit silently switched off (NaN compares false, so it passes every bound).
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: object, info: ValidationInfo) -> object:
        # YAML reads yes/no/on/off as booleans and pydantic would take them as 1 and 0: a limit
        # written "max_open_positions: yes" must be an error, not one position.
        if isinstance(value, bool):
            ann = cls.model_fields[info.field_name].annotation
            if ann is not bool and bool not in typing.get_args(ann):
                raise PydanticCustomError("bool_not_number", "expected a number, not a yes/no value")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _in_range(cls, value: object) -> object:
        # Every number of every section, once, here: an integer the journal can hold, a Decimal or
        # float the engine can compute with. A field's own tighter bound is checked before this.
        for number in _numbers(value):
            err = _out_of_range(number)
            if err is not None:
                raise err
        return value


def bad(loc_field: str, message: str) -> PydanticCustomError:
    # The field name rides in the message context so the loader can point at it.
    return PydanticCustomError("cross_field", "{field}: {msg}", {"field": loc_field, "msg": message})


def raise_problems(model: str, problems: list[PydanticCustomError]) -> None:
    """Raise every cross-field problem found at once (each becomes its own line), not just the first:
    a trader fixing a profile should not meet its mistakes one run at a time."""
    if problems:
        raise ValidationError.from_exception_data(model, [InitErrorDetails(type=p, loc=(), input=None) for p in problems])
