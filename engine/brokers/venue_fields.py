"""What the ccxt and Alpaca adapters read from a venue the same way: a payload number as Decimal, the
client order id alphabet both venues take (and which ids the engine made), and what becomes of a fill
whose numbers cannot be read.

A venue number is read strictly. A value that is not a finite decimal of a sane size ("NaN", "abc",
"Infinity", "1e999"), or is missing where the caller gave no default, raises `UnreadableNumber`:
nothing downstream ever sees a 0 made up for it. Each caller decides, field by field, whether a
missing value has a true reading (a fee the venue did not report is no fee) or is a failure.
"""
from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from ..models import OrderPurpose
from .keys import redact
from .retry import Failure, VenueError

ZERO = Decimal(0)
CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:/-]{1,36}$")
# The engine's own client ids (engine/orders.py `new_id`): "tc<profile tag>-<session>-<n>", within
# CLIENT_ID's alphabet. The family "tc<tag>-" is the profile's across its sessions, so an order it
# placed before a restart is of it too; an id of any other form (the trader's own, another bot's,
# none at all) was never made by the engine.
ENGINE_ID = re.compile(r"^(tc[A-Za-z0-9]+-)[0-9]+-[0-9]+$")
# Exactly what `new_id` makes (the tag is 4 hex digits of the profile name's SHA-1): what is taken
# as ours while no family is known yet (a restart's first sweep, before anything is tracked).
ENGINE_ID_EXACT = re.compile(r"^tc[0-9a-f]{4}-[0-9]+-[0-9]+$")
# No venue quantity, price, fee or balance comes near 1e30 (or, non-zero, below 1e-30). Beyond that
# it is garbage: "1e999" is how a float-minded sender writes infinity, and Decimal would carry it
# through P&L as if it were money.
MAX_EXPONENT = 30
_NO_DEFAULT: Any = object()

log = logging.getLogger("tradeconsole.venue")


class UnreadableNumber(ValueError):
    """A venue field that holds no usable number; names the field and the raw value."""

    def __init__(self, field: str, raw: Any, why: str = "is not a usable number") -> None:
        self.field = field
        self.raw = raw
        text = raw if isinstance(raw, str) else str(raw)
        # Bounded for an alert line: a payload field can hold anything, of any length.
        self.shown = "missing" if raw is None or raw == "" else repr(text if len(text) <= 32 else text[:32] + "...")
        super().__init__(f"{field} missing" if self.shown == "missing" else f"{field} {self.shown} {why}")


def id_family(cid: str | None) -> str | None:
    """The profile family ("tc<tag>-") of a client id the engine made, or None for any other id."""
    m = ENGINE_ID.match(cid or "")
    return m.group(1) if m else None


def number(raw: Any, field: str, *, missing: Any = _NO_DEFAULT) -> Decimal:
    """`raw` as a finite Decimal. None or "" gives `missing` when the caller names one (a reading
    that truly means that value); otherwise, like anything unparseable, UnreadableNumber."""
    if raw is None or raw == "":
        if missing is _NO_DEFAULT:
            raise UnreadableNumber(field, raw)
        return missing
    if isinstance(raw, bool):  # str(True) is no number, but say so before Decimal tries
        raise UnreadableNumber(field, raw)
    try:
        d = raw if isinstance(raw, Decimal) else Decimal(str(raw))
    except (InvalidOperation, ValueError, TypeError):
        raise UnreadableNumber(field, raw) from None
    if not d.is_finite() or (d and not -MAX_EXPONENT <= d.adjusted() <= MAX_EXPONENT):
        raise UnreadableNumber(field, raw)
    return d


def positive(raw: Any, field: str) -> Decimal:
    """`raw` as a finite Decimal above 0: a fill's price or quantity, an order's amount."""
    d = number(raw, field)
    if d <= 0:
        raise UnreadableNumber(field, raw, "is not a positive number")
    return d


def unreadable_error(venue: str, what: str, bad: UnreadableNumber) -> VenueError:
    """A payload the adapter cannot read fails like a request that failed: no retry helps."""
    return VenueError(Failure.FINAL, redact(f"{venue}: {what}: {bad}")[:300])


class UnreadableFills:
    """Part of each real venue broker (CcxtBroker, AlpacaBroker), whose __init__ sets
    `self._held_symbols = {}`; `alerts` is the engine's AlertBus (engine/venue_wiring.py wires it
    beside `on_api_failure`; a broker on its own only logs).

    A fill that cannot be read is never booked: no Fill event, so no journal fill row and no
    portfolio change. The order is marked (`track.unreadable`): nothing more of it is booked and its
    end is not reported, so the engine keeps it open until a restart's reconciliation lists it
    (the venue's order against the journal, the venue's position against the books). Entries in its
    symbol are refused meanwhile: the venue may hold more than the engine knows (with no stop for the
    difference), and a limit's market fallback for a "remaining" that in truth filled would add to it."""

    alerts: Any = None

    def _fill_unreadable(self, track: Any, what: str, bad: UnreadableNumber) -> None:
        o = track.order
        cid, symbol = o.client_order_id, o.symbol
        if track.unreadable:
            log.error("venue %s: %s of %s (%s) not booked either: %s", self.name, what, cid, symbol, bad)
            return
        track.unreadable = str(bad)
        self._held_symbols.setdefault(symbol, f"{cid}: {bad}")
        msg = redact(f"{self.name}: {what} of {cid} ({symbol}): {bad}; not booked. The {symbol} position at "
                     f"{self.name} may differ from the engine's, with no stop for the difference; nothing more of "
                     f"this order is booked and new entries in {symbol} are refused until a restart reconciles it")
        log.critical("venue %s", msg)
        if self.alerts is not None:
            self.alerts.publish("critical", "venue_unreadable_fill", msg, self.clock.now(), client_order_id=cid,
                                symbol=symbol, venue=self.name, field=bad.field, raw=bad.shown)

    def _entry_held(self, order: Any) -> str | None:
        """Why an entry in this symbol is refused now, or None. Stops and exits still go: they reduce."""
        held = self._held_symbols.get(order.symbol)
        if held is None or order.purpose is not OrderPurpose.ENTRY:
            return None
        return (f"{self.name}: entries in {order.symbol} are held: a fill of {held} could not be read; "
                f"restart to reconcile with the venue")
