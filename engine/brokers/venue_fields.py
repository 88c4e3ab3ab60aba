"""What the ccxt and Alpaca adapters read from a venue the same way: a payload number as Decimal, and
the client order id alphabet both venues take."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

ZERO = Decimal(0)
CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:/-]{1,36}$")


def dec(x: Any) -> Decimal:
    if x is None or x == "":
        return ZERO
    if isinstance(x, Decimal):
        return x
    try:
        return Decimal(str(x))
    except (InvalidOperation, ValueError):
        return ZERO
