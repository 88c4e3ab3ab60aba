"""What each trade's entry was taken in: the strategy that signalled it, the strategy's readiness
(ready / forming / not ready) and the market regime (volatility, trend) it read then.

All of it comes from the entry's `signal` row, which the engine journals right before the order
(trades.signal_of_order links them): `strategy` and `readiness` are fields of the row, and the
regime is the tag the strategy ends an entry's reason with (engine/strategy/regime.py), or a
structured `regime` field when the row has one. A trade the operator opened by hand (a
`submit_manual` operator row for its order) has no signal: strategy `operator`, the rest
`unknown`; so is anything the journal cannot tell (a journal from before regimes were recorded).
"""
from __future__ import annotations

from typing import Any

from engine.strategy.regime import TREND_LABELS, UNKNOWN, VOL_LABELS, parse_tag

from .journal_data import JournalData, Row
from .trades import Trade, signal_of_order

READINESS_STATES = ("ready", "forming", "not_ready")
OPERATOR = "operator"


def _root_orders(orders: list[Row]) -> dict[str, str]:
    """Client id -> the id of the order it continues (a limit entry's market fallback) or itself."""
    parent: dict[str, str] = {}
    for r in orders:
        if r.ref and r.ref not in parent:
            parent[r.ref] = r.data.get("parent_id") or r.ref
    return parent


def _known(value: Any, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else UNKNOWN


def _regime(sig: Row | None, reason: str) -> tuple[str, str]:
    if sig is not None and isinstance(sig.data.get("regime"), dict):
        reg = sig.data["regime"]
        return _known(reg.get("volatility"), VOL_LABELS), _known(reg.get("trend"), TREND_LABELS)
    found = parse_tag(sig.data.get("reason", "") if sig is not None else reason)
    if found is None:
        return UNKNOWN, UNKNOWN
    return _known(found[0], VOL_LABELS), _known(found[1], TREND_LABELS)


def annotate_context(trades: list[Trade], data: JournalData) -> None:
    """Set each trade's strategy, readiness, volatility and trend from its entry's signal."""
    orders = data.kind("order")
    signal_of = signal_of_order(data.kind("signal"), orders)
    root = _root_orders(orders)
    manual = {r.ref for r in data.kind("operator") if r.data.get("action") == "submit_manual" and r.ref}
    for t in trades:
        entry = root.get(t.entry_order or "", t.entry_order or "")
        sig = signal_of.get(entry)
        if entry in manual:
            t.strategy, t.readiness, t.volatility, t.trend = OPERATOR, UNKNOWN, UNKNOWN, UNKNOWN
            continue
        if sig is None:  # the order's own reason may still carry the strategy's regime tag
            t.volatility, t.trend = _regime(None, t.reason)
            continue
        t.strategy = sig.data.get("strategy") or UNKNOWN
        t.readiness = _known(sig.data.get("readiness"), READINESS_STATES)
        t.volatility, t.trend = _regime(sig, t.reason)
