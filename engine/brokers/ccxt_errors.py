"""A ccxt (or transport) exception as a VenueError of the right Failure kind (engine/brokers/retry.py)."""
from __future__ import annotations

import asyncio
import re

from .keys import redact
from .retry import Failure, VenueError

# Binance maps its numeric codes to ccxt errors by URL prefix; behind an emulator or a proxy those
# codes arrive as plain ExchangeError, so they are classified again here from the body.
BINANCE_CODES = {
    "-1003": Failure.RATE_LIMIT, "-1015": Failure.RATE_LIMIT, "-1008": Failure.RATE_LIMIT,
    "-1000": Failure.TRANSIENT, "-1001": Failure.TRANSIENT, "-1006": Failure.TRANSIENT,
    "-1007": Failure.TIMEOUT,
    "-2013": Failure.NOT_FOUND, "-2011": Failure.NOT_FOUND,
}
BYBIT_CODES = {"10006": Failure.RATE_LIMIT, "10016": Failure.TRANSIENT, "10000": Failure.TRANSIENT,
               "170213": Failure.NOT_FOUND, "110001": Failure.NOT_FOUND}
# A client order id the venue already holds (the order sent before landed): Binance's -2010 is every
# refused new order, so its text decides; Bybit spot 170141, derivatives 110072.
DUPLICATE_CODES = {"170141", "110072"}
AUTH_CODES = {"-2014", "-2015", "-1022", "10003", "10004", "10005", "33004"}


def classify(exc: BaseException, venue: str = "") -> VenueError:
    """A ccxt (or transport) exception as a VenueError with a redacted, bounded message."""
    import ccxt.async_support as ccxt

    msg = redact(str(exc))[:400] or type(exc).__name__
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
        kind = Failure.RATE_LIMIT
    elif isinstance(exc, ccxt.RequestTimeout) or isinstance(exc, asyncio.TimeoutError):
        kind = Failure.TIMEOUT
    elif isinstance(exc, ccxt.OrderNotFound):
        kind = Failure.NOT_FOUND
    elif isinstance(exc, ccxt.NetworkError) or isinstance(exc, (ccxt.OperationFailed, OSError)):
        kind = Failure.TRANSIENT
    elif isinstance(exc, ccxt.BaseError):
        kind = Failure.FINAL
        code = _venue_code(msg)
        table = BINANCE_CODES if venue == "binance" else BYBIT_CODES
        if code in table:
            kind = table[code]
    else:
        kind = Failure.TRANSIENT
    return VenueError(kind, f"{type(exc).__name__}: {msg}")


def _venue_code(msg: str) -> str | None:
    m = re.search(r'"(?:code|retCode)"\s*:\s*(-?\d+)', msg)
    return m.group(1) if m else None


def is_auth_error(err: VenueError) -> bool:
    return "AuthenticationError" in str(err) or "PermissionDenied" in str(err) or _venue_code(str(err)) in AUTH_CODES


def is_duplicate_id(err: VenueError) -> bool:
    """The venue refused an order because its client order id is taken."""
    msg = str(err)
    return _venue_code(msg) in DUPLICATE_CODES or "duplicate order sent" in msg.lower()
