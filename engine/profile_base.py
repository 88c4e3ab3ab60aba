"""The strict base every profile section uses, shared so each section can live with its code."""
from __future__ import annotations

import typing

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError


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


def bad(loc_field: str, message: str) -> PydanticCustomError:
    # The field name rides in the message context so the loader can point at it.
    return PydanticCustomError("cross_field", "{field}: {msg}", {"field": loc_field, "msg": message})


def raise_problems(model: str, problems: list[PydanticCustomError]) -> None:
    """Raise every cross-field problem found at once (each becomes its own line), not just the first:
    a trader fixing a profile should not meet its mistakes one run at a time."""
    if problems:
        raise ValidationError.from_exception_data(model, [InitErrorDetails(type=p, loc=(), input=None) for p in problems])
