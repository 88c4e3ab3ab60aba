"""Round trips rebuilt from the journal's fill rows, and what the order rows say about them.

A trade opens when a symbol's position goes from 0 to non-zero and closes when it is back at 0;
its net P&L is the realized P&L of its fills minus the fees of its fills. This is the rule
`Portfolio.closed_trades` follows (a fill that flips a position through zero does not close the
trade), so the numbers here are the ones the engine's consecutive-loss breaker counted.

Each fill row carries `position_after`; the position before it is that minus the fill's signed
quantity, so no state has to survive a session boundary. A fill that opens from 0 while a trade
is still open for the symbol means the engine restarted flat: the old trade is `abandoned`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from statistics import median
from typing import Any, Callable

from .journal_data import JournalData, Row, dec

ZERO = Decimal(0)


@dataclass(slots=True)
class Trade:
    symbol: str
    direction: str  # long | short
    opened_at: datetime
    timeline: int
    closed_at: datetime | None = None
    realized: Decimal = ZERO  # before fees
    fees: Decimal = ZERO
    fills: int = 0
    max_qty: Decimal = ZERO
    entry_order: str | None = None  # client order id of the opening fill
    reason: str = ""  # the entry's signal reason (the order row's reason)
    stop_covered: bool | None = None  # a protective stop order was working while it was open
    status: str = "open"  # open | closed | abandoned
    fill_refs: list[str] = field(default_factory=list)
    # What the entry was taken in (engine/analytics/context.py): the strategy that signalled it
    # ("operator" for a manual order), the strategy's readiness, and the market regime it read.
    strategy: str = "unknown"
    readiness: str = "unknown"
    volatility: str = "unknown"
    trend: str = "unknown"

    @property
    def net(self) -> Decimal:
        return self.realized - self.fees

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "direction": self.direction, "opened_at": self.opened_at.isoformat(),
                "closed_at": self.closed_at.isoformat() if self.closed_at else None, "realized": str(self.realized),
                "fees": str(self.fees), "net": str(self.net), "fills": self.fills, "reason": self.reason,
                "stop_covered": self.stop_covered, "status": self.status, "strategy": self.strategy,
                "readiness": self.readiness, "volatility": self.volatility, "trend": self.trend}


def _signed(row: Row) -> Decimal:
    q = dec(row.data.get("quantity"))
    return q if row.data.get("side") == "buy" else -q


def rebuild_trades(fills: list[Row]) -> list[Trade]:
    """Every round trip in fill order: closed ones, then whatever is still open or abandoned."""
    open_: dict[str, Trade] = {}
    out: list[Trade] = []
    for f in fills:
        d = f.data
        sym = d.get("symbol", "")
        after = dec(d.get("position_after"))
        before = after - _signed(f)
        t = open_.get(sym)
        if before == 0 and after != 0:
            if t is not None:  # opened again from flat: the engine restarted without the position
                t.status = "abandoned"
                out.append(t)
            t = open_[sym] = Trade(sym, "long" if after > 0 else "short", f.ts, f.timeline,
                                   entry_order=f.ref)
        if t is None:
            continue  # a fill of a position opened before this journal begins: not measurable
        t.realized += dec(d.get("realized"))
        t.fees += dec(d.get("fee"))
        t.fills += 1
        t.max_qty = max(t.max_qty, abs(after))
        if f.ref:
            t.fill_refs.append(f.ref)
        if after == 0:
            t.closed_at = f.ts
            t.status = "closed"
            out.append(t)
            del open_[sym]
    out.extend(open_.values())
    return out


def closed(trades: list[Trade]) -> list[Trade]:
    return [t for t in trades if t.status == "closed"]


def _order_states(orders: list[Row]) -> dict[str, dict[str, Any]]:
    """The last journaled state of every order, by client order id."""
    last: dict[str, dict[str, Any]] = {}
    for r in orders:
        if r.ref:
            rec = last.setdefault(r.ref, {"first_seq": r.seq, "ever_sent": False, "first_ts": r.ts,
                                          "first_reason": r.data.get("reason") or ""})
            rec.update(r.data)  # a venue update overwrites `reason` ("cancelled"...), hence first_reason
            if r.data.get("status") in ("submitted", "partially_filled", "filled"):
                rec["ever_sent"] = True
    return last


def signal_of_order(signals: list[Row], orders: list[Row]) -> dict[str, Row]:
    """The signal row behind each strategy entry order, by the order's client id.

    The engine journals a signal, then the decision and the order for it, before anything else of
    that symbol; the first entry order row of the same symbol after a signal is its order. A
    manual order has no signal row and so no entry here."""
    pending: dict[str, Row] = {}
    out: dict[str, Row] = {}
    for r in sorted(signals + orders, key=lambda x: x.seq):
        sym = r.data.get("symbol", "")
        if r.kind == "signal":
            pending[sym] = r
        elif r.data.get("purpose") == "entry" and not r.data.get("parent_id") and sym in pending:
            out[r.ref or ""] = pending.pop(sym)
    return out


def annotate(trades: list[Trade], data: JournalData) -> None:
    """Fill in each trade's entry reason and whether a protective stop covered it."""
    orders = data.kind("order")
    states = _order_states(orders)
    # When each protective stop reached the venue, per symbol: a trade with none placed between
    # its open and its close was a position without a stop.
    stops_placed: dict[tuple[str, int], list[datetime]] = {}
    for r in orders:
        d = r.data
        if d.get("purpose") == "stop" and d.get("status") == "submitted":
            stops_placed.setdefault((d.get("symbol", ""), r.timeline), []).append(r.ts)
    for t in trades:
        st = states.get(t.entry_order or "")
        if st is not None:
            parent = states.get(st.get("parent_id") or "")
            t.reason = (parent or st)["first_reason"] or st["first_reason"]
        end = t.closed_at
        t.stop_covered = any(t.opened_at <= ts and (end is None or ts <= end)
                             for ts in stops_placed.get((t.symbol, t.timeline), []))


def execution_stats(data: JournalData, keep: Callable[[Row], bool] | None = None) -> dict[str, Any]:
    """Fill rate of entries and slippage of entry fills against the signal's price (of the
    orders and signals `keep` picks, all by default)."""
    orders = data.kind("order")
    signals = data.kind("signal")
    if keep is not None:
        orders = [r for r in orders if keep(r)]
        signals = [r for r in signals if keep(r)]
    states = _order_states(orders)
    children: dict[str, list[str]] = {}
    for cid, st in states.items():
        if st.get("parent_id"):
            children.setdefault(st["parent_id"], []).append(cid)
    filled_qty = {cid: dec(st.get("filled_qty")) for cid, st in states.items()}
    parents = [cid for cid, st in states.items()
               if st.get("purpose") == "entry" and not st.get("parent_id") and st.get("ever_sent")]
    filled = [cid for cid in parents
              if filled_qty.get(cid, ZERO) > 0 or any(filled_qty.get(c, ZERO) > 0 for c in children.get(cid, []))]
    limits = [cid for cid in parents if states[cid].get("type") == "limit"]
    limit_full = [cid for cid in limits if states[cid].get("status") == "filled"]

    signal_of = signal_of_order(signals, orders)
    fills_by_order: dict[str, list[Row]] = {}
    for f in data.kind("fill"):
        fills_by_order.setdefault(f.ref or "", []).append(f)
    slips: list[float] = []
    by_symbol: dict[str, list[float]] = {}
    for cid, sig in signal_of.items():
        price = dec(sig.data.get("price"))
        if price <= 0:
            continue
        fl = [f for c in [cid, *children.get(cid, [])] for f in fills_by_order.get(c, [])]
        qty = sum((dec(f.data.get("quantity")) for f in fl), ZERO)
        if qty <= 0:
            continue
        avg = sum((dec(f.data.get("quantity")) * dec(f.data.get("price")) for f in fl), ZERO) / qty
        sign = 1 if sig.data.get("side") == "buy" else -1
        bps = float((avg - price) / price * sign * 10000)  # > 0: paid more (or got less) than signalled
        slips.append(bps)
        by_symbol.setdefault(sig.data.get("symbol", ""), []).append(bps)
    return {
        "entries_sent": len(parents),
        "entries_filled": len(filled),
        "fill_rate_pct": None if not parents else 100.0 * len(filled) / len(parents),
        "limit_entries": len(limits),
        "limit_fill_rate_pct": None if not limits else 100.0 * len(limit_full) / len(limits),
        "slippage_measured": len(slips),
        "slippage_bps_mean": None if not slips else sum(slips) / len(slips),
        "slippage_bps_median": None if not slips else median(slips),
        "slippage_bps_worst": None if not slips else max(slips),
        "slippage_bps_by_symbol": {s: sum(v) / len(v) for s, v in sorted(by_symbol.items())},
    }
