"""An alpaca-py / requests exception as a VenueError of the right Failure kind (engine/brokers/retry.py)."""
from __future__ import annotations

from .keys import redact
from .retry import Failure, VenueError


def classify(exc: BaseException) -> VenueError:
    """An alpaca-py / requests exception as a VenueError (redacted)."""
    import requests
    from alpaca.common.exceptions import APIError

    msg = redact(str(exc))[:300] or type(exc).__name__
    if isinstance(exc, APIError):
        status = exc.status_code
        if status == 429:
            kind = Failure.RATE_LIMIT
        elif status == 404:
            kind = Failure.NOT_FOUND
        elif status is not None and status >= 500:
            kind = Failure.TRANSIENT
        else:
            kind = Failure.FINAL
        return VenueError(kind, f"HTTP {status}: {msg}")
    if isinstance(exc, (requests.Timeout, TimeoutError)):
        return VenueError(Failure.TIMEOUT, f"{type(exc).__name__}: {msg}")
    if isinstance(exc, (requests.ConnectionError, OSError)):
        return VenueError(Failure.TRANSIENT, f"{type(exc).__name__}: {msg}")
    return VenueError(Failure.FINAL, f"{type(exc).__name__}: {msg}")


def is_duplicate_id(err: VenueError) -> bool:
    """Alpaca refused an order because its client order id is taken (422)."""
    return "client_order_id must be unique" in str(err).lower()
