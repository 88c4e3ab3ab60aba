"""The restart's reconciliation differences over the control socket (`tradeconsole reconcile`).

Each difference gets a short id taken from what it says (kind, symbol, order, journal, venue),
not from its place in the list: an id read before a restart never names another difference
after it (it names none, and the operator lists them again). The answer itself is the engine's
(`Engine.resolve_difference`, the console dialog's method); nothing here decides it.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine import Engine
    from ..recovery import Difference

ID_DIGITS = 6


def difference_id(d: Difference) -> str:
    key = "\x1f".join((d.kind, d.symbol, d.client_order_id or "", d.journal, d.venue))
    return hashlib.sha256(key.encode()).hexdigest()[:ID_DIGITS]


def shown(action: str) -> str:
    """An answer as the operator types it (`mark-closed`)."""
    return action.replace("_", "-")


def find(e: Engine, ident: str) -> tuple[int, Difference] | None:
    """The difference `ident` names (its index, for resolve_difference); an open one first."""
    found = [(i, d) for i, d in enumerate(e.reconciliation) if difference_id(d) == ident]
    return next(((i, d) for i, d in found if not d.resolved), found[0] if found else None)


def open_count(e: Engine) -> int:
    return sum(1 for d in e.reconciliation if not d.resolved)


def difference_row(d: Difference) -> dict[str, Any]:
    return {"id": difference_id(d), "kind": d.kind, "symbol": d.symbol, "client_order_id": d.client_order_id,
            "journal": d.journal, "venue": d.venue, "text": d.text, "resolved": d.resolved,
            "actions": list(d.actions)}


def trading(e: Engine) -> dict[str, Any]:
    return {"open": open_count(e), "state": e.state.value, "halt_reason": e.halt_reason}


def reconcile_reply(e: Engine) -> dict[str, Any]:
    return {"ok": True, "differences": [difference_row(d) for d in e.reconciliation], **trading(e)}


def holding(e: Engine, symbol: str) -> dict[str, Any] | None:
    """The symbol's position after an answer, with the stop protecting it (None when flat)."""
    pos = e.portfolio.positions.get(symbol)
    if pos is None:
        return None
    stop = e.orders.stop_order(symbol)
    return {"symbol": symbol, "quantity": pos.quantity, "stop_price": pos.stop_price,
            "stop_order": stop.client_order_id if stop is not None else None,
            "stop_working_price": stop.stop_price if stop is not None else None}
