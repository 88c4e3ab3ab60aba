"""Crash recovery: rebuild the engine's state from the journal, then reconcile it with the venue.

The journal is the source of truth for what *we* decided and learned; the venue is the truth of
what happened to the money. After any stop (clean or `kill -9`) the engine replays its journal
(from the last checkpoint), then asks the venue for positions and open orders. Differences are
never guessed away: each is listed, the engine starts reduce-only, and the operator resolves
each one (adopt, cancel, or mark closed), every choice journaled.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from .models import Fill, Order, OrderPurpose, OrderStatus, OrderType, Position, Side
from .portfolio import TradeTotals
from .risk.breakers import BreakerState

if TYPE_CHECKING:
    from .journal import JournalRow
    from .engine import Engine

log = logging.getLogger("tradeconsole.recovery")

CASH_TOLERANCE = Decimal("0.01")  # a cent: rounding of fees may differ, money may not
OPEN_STATES = {OrderStatus.SUBMITTED.value, OrderStatus.PARTIALLY_FILLED.value}
_D = lambda v: None if v is None else Decimal(v)  # noqa: E731
# How far back the trade log is rebuilt: its longest count is the ISO week's new positions, and
# it keeps no more than this itself (tracking.TradeLog.prune).
TRADE_MEMORY = timedelta(days=8)


@dataclass
class Difference:
    kind: str  # unknown_at_venue | unknown_to_venue | quantity_mismatch | closed_while_down | balance_mismatch
    symbol: str
    client_order_id: str | None
    journal: str
    venue: str
    resolved: str | None = None
    actions: tuple[str, ...] = ("adopt", "cancel", "mark_closed")

    @property
    def text(self) -> str:
        ref = f" {self.client_order_id}" if self.client_order_id else ""
        return f"{self.kind.replace('_', ' ')}: {self.symbol}{ref} — journal {self.journal}, venue {self.venue}"


@dataclass
class RecoveryReport:
    fills_replayed: int = 0
    open_orders: int = 0
    positions: int = 0
    expired_approvals: int = 0
    from_checkpoint: bool = False
    differences: list[Difference] = field(default_factory=list)


def checkpoint_record(e: "Engine") -> dict:
    """Everything a restart needs that is not cheaper to replay: journaled every minute."""
    p = e.portfolio
    return {
        "cash": p.cash, "realized": p.realized_pnl, "fees": p.fees, "peak": p.peak_equity,
        "pause_peak": p.pause_peak, "day_start": p.day_start_equity, "week_start": p.week_start_equity,
        "day": p.day_started,  # the venue day those two baselines belong to
        "closed_tail": p.closed_trades[-50:], "closed_count": p.totals.count,
        # What the performance screen counts: every trade, not the tail (portfolio.TradeTotals),
        # and the nets so far of the trades still open, which would otherwise close short.
        "trade_totals": p.totals.record(), "open_trade_pnl": p.open_trade_pnl(),
        # The screen's worst drawdown so far: a restart set it back to 0.
        "max_drawdown_shown": e.operator_state.max_drawdown_pct,
        # Of that tail, the trades a re-arm acknowledged: without it a restart counted the
        # acknowledged losing streak again and tripped consecutive_losses anew.
        "streak_acked": max(0, p.streak_base - (len(p.closed_trades) - len(p.closed_trades[-50:]))),
        "positions": [{"symbol": x.symbol, "quantity": x.quantity, "avg": x.avg_price, "last": x.last_price,
                       "realized": x.realized_pnl, "fees": x.fees, "stop": x.stop_price,
                       "stop_order_id": x.stop_order_id, "opening_order": x.opening_order}
                      for x in p.positions.values()],
        # Orders waiting for approval too: a restart after a crash closes them ("approval lost
        # in restart"); left out, one older than this checkpoint stayed pending_approval for good.
        "open_orders": [order_dict(o) for o in e.orders.working.values()]
                       + [order_dict(a.order) for a in e.approvals.items()],
        "breakers": {b.name: b.state.value for b in e.breakers},
        # Critical alerts nobody has acknowledged yet, by this session's numbers (restart.py).
        "session": e.session,
        "pinned": [{"seq": a.seq, "kind": a.kind, "message": a.message, "ts": a.ts, "data": a.data}
                   for a in e.alerts.unacknowledged()],
    }


def order_dict(o: Order) -> dict:
    from .orders import order_record

    return order_record(o)


def order_from(d: dict, ts: datetime) -> Order:
    return Order(d["client_order_id"], d["symbol"], Side(d["side"]), OrderType(d["type"]), Decimal(d["quantity"]),
                 OrderPurpose(d["purpose"]), ts, limit_price=_D(d.get("limit_price")),
                 stop_price=_D(d.get("stop_price")), status=OrderStatus(d["status"]),
                 filled_qty=Decimal(d.get("filled_qty") or 0), avg_fill_price=Decimal(d.get("avg_fill_price") or 0),
                 fees=Decimal(d.get("fees") or 0), venue_order_id=d.get("venue_order_id"),
                 reason=d.get("reason") or "", protective_stop=_D(d.get("protective_stop")),
                 parent_id=d.get("parent_id"))


async def rebuild(e: "Engine", cp: "JournalRow | None") -> RecoveryReport:
    """Positions, cash, P&L, open orders, breaker states and the day/week baselines from the
    journal: the last checkpoint `cp` (the caller has read it), then the rows after it; the trade
    log from its `entry` rows of the last days."""
    rep = RecoveryReport()
    j = e.journal
    p = e.portfolio
    after = 0
    open_orders: dict[str, dict] = {}
    states: dict[str, str] = {}  # each breaker's state at the checkpoint
    if cp is not None:
        rep.from_checkpoint = True
        after = cp.seq
        d = cp.data
        p.cash = Decimal(d["cash"])
        p.realized_pnl = Decimal(d["realized"])
        p.fees = Decimal(d["fees"])
        p.peak_equity = Decimal(d["peak"])
        p.pause_peak = Decimal(d["pause_peak"])
        day = d.get("day")  # absent from older checkpoints: their baselines were the row's own day's
        p.resume(datetime.fromisoformat(day or cp.ts), Decimal(d["day_start"]), Decimal(d["week_start"]))
        p.closed_trades = [Decimal(x) for x in d["closed_tail"]]
        p.streak_base = min(int(d.get("streak_acked", 0)), len(p.closed_trades))
        tot = d.get("trade_totals")
        p.totals = TradeTotals.from_record(tot) if tot is not None else await totals_from_fills(e, cp.seq)
        for x in d["positions"]:
            p.restore_position(Position(x["symbol"], Decimal(x["quantity"]), Decimal(x["avg"]), Decimal(x["realized"]),
                                        Decimal(x["fees"]), Decimal(x["last"]), _D(x["stop"]), x["stop_order_id"],
                                        opening_order=x.get("opening_order")))
        pnl = d.get("open_trade_pnl")
        # An older checkpoint's position carries its round trip's realized P&L and fees so far.
        p.restore_trade_pnl({s: Decimal(v) for s, v in pnl.items()} if pnl is not None else
                            {x.symbol: x.realized_pnl - x.fees for x in p.positions.values()})
        st = e.operator_state
        st.max_drawdown_pct = max(st.max_drawdown_pct, Decimal(d.get("max_drawdown_shown") or 0))
        open_orders = {o["client_order_id"]: o for o in d["open_orders"]}
        states = dict(d["breakers"])
    for row in await j.rows(kinds=["fill", "rearm"], after_seq=after):
        d = row.data
        if row.kind == "rearm":
            # A re-arm since the checkpoint acknowledged the losing streak as it stood then (the
            # trades replayed so far) and re-based the drawdown pause, when those had tripped (the
            # row says which; older rows did both): without this, a crash before the next
            # checkpoint tripped them again on the first tick.
            acked = d.get("acknowledged", ("consecutive_losses", "drawdown_pause"))
            if "consecutive_losses" in acked:
                p.streak_base = len(p.closed_trades)
            if "drawdown_pause" in acked:
                p.pause_peak = Decimal(d["pause_peak"]) if "pause_peak" in d else p.equity
            continue
        p.apply_fill(Fill(row.ref or "", d["symbol"], Side(d["side"]), Decimal(d["quantity"]), Decimal(d["price"]),
                          Decimal(d["fee"]), datetime.fromisoformat(row.ts), d.get("liquidity", ""), d.get("fill_id", "")))
        if d.get("parent_id"):
            p.credit_opening(d["symbol"], row.ref or "", d["parent_id"])
        rep.fills_replayed += 1
    # The latest state of every order touched since the checkpoint decides what is still open.
    for row in await j.rows(kinds=["order"], after_seq=after):
        open_orders[row.ref] = row.data
    now = e.clock.now()
    for cid, d in open_orders.items():
        status = d["status"]
        if status == OrderStatus.PENDING_APPROVAL.value:
            o = order_from(d, now)
            o.status = OrderStatus.EXPIRED
            o.reason = "approval lost in restart"
            e.orders.record(o)
            rep.expired_approvals += 1
        elif status in OPEN_STATES:
            o = order_from(d, now)
            e.orders.orders[cid] = o
            e.orders.track_restored(o, now)
            rep.open_orders += 1
            if o.filled_qty > 0:
                # Its fills are booked: a broker reading its trades again must not book them twice
                # (order_events.py). One query per part-filled working order, at restart only.
                e.orders.remember_fills(cid, {r.data["fill_id"] for r in await j.rows(kinds=["fill"], ref=cid)
                                              if r.data.get("fill_id")})
    for o in e.orders.working.values():
        if o.purpose is OrderPurpose.STOP and o.symbol in p.positions:
            pos = p.positions[o.symbol]
            pos.stop_order_id = o.client_order_id
            pos.stop_price = o.stop_price
    rep.positions = len(p.positions)
    await _restore_breakers(e, states, after)
    await restore_trades(e)
    # The first roll after the restart: a day (or week) that began while the engine was down
    # starts from the equity now, the best figure known for it, and its breakers reset with it.
    period = p.roll_period(now)
    if period:
        e.new_period(period)
    return rep


async def totals_from_fills(e: "Engine", upto: int) -> TradeTotals:
    """The trade totals of a checkpoint written before it kept them: the round trips of the fill
    rows up to it, rebuilt as analytics rebuilds them (one read of the journal's fills, once: the
    next checkpoint keeps the totals)."""
    from .analytics.journal_data import Row
    from .analytics.trades import closed, rebuild_trades

    fills = [Row(r.seq, datetime.fromisoformat(r.ts), r.kind, r.ref, r.data)
             for r in await e.journal.rows(kinds=["fill"]) if r.seq <= upto]
    totals = TradeTotals()
    for t in closed(rebuild_trades(fills)):
        totals.add(t.net)
    return totals


async def _restore_breakers(e: "Engine", states: dict[str, str], after: int) -> None:
    """Every breaker comes back in the state the checkpoint, or a row after it, left it in: a
    tripped one holds until its own reset (a re-arm, or the venue day or week that the first
    roll after the restart may bring), as if the process had not stopped; one at warning or
    critical stays there, so the crossing it already alerted is not alerted again.
    Self-clearing ones are measured afresh."""
    p = e.portfolio
    last = None
    for row in await e.journal.rows(kinds=["breaker", "rearm"], after_seq=after):
        if row.kind == "rearm":
            states.update({b.name: BreakerState.ARMED.value for b in e.breakers if b.reset_on == "rearm"})
            continue
        last = row
        states[row.ref] = row.data.get("new", BreakerState.ARMED.value)
    for b in e.breakers:
        if b.reset_on != "auto" and b.name in states:
            try:
                b.restore(BreakerState(states[b.name]))
            except ValueError:  # a state this version does not know: measured afresh
                log.warning("breaker %s: unknown state %r in the journal", b.name, states[b.name])
    if last is not None:
        # Breaker rows are written after the batch's roll: one stamped on a later venue day than
        # the checkpoint's means the engine had entered that day (its reset rows are above), and
        # its trips belong to it. That day's baseline was never checkpointed: equity now stands in.
        ts = datetime.fromisoformat(last.ts)
        if p.day_started is None:
            p.resume(ts, p.day_start_equity, p.week_start_equity)
        elif p.day_start(ts) > p.day_started:
            same_week = p.day_start(ts) - p.week_started < timedelta(days=7)
            p.resume(ts, p.equity, p.week_start_equity if same_week else p.equity)


async def restore_trades(e: "Engine") -> None:
    """The trade log as it stood, so no restart resets the throttles and new-position limits: the
    `entry` rows it journaled as it counted (tracking.TradeLog), one query bounded by time."""
    rows = await e.journal.rows_since(["entry"], e.clock.now() - TRADE_MEMORY)
    entries = [datetime.fromisoformat(r.ts) for r in rows]
    e.trades.restore(entries, [t for t, r in zip(entries, rows) if r.data.get("opens_position")])


async def reconcile(e: "Engine", rep: RecoveryReport) -> list[Difference]:
    """Compare the rebuilt state with the venue's; list every difference, guess none."""
    diffs: list[Difference] = []
    venue_pos = await e.broker.positions()
    p = e.portfolio
    ours = {s: x.quantity for s, x in p.positions.items()}
    for s, d in p.dust.items():  # the venue holds the dust too (engine/portfolio.py)
        ours[s] = ours.get(s, Decimal(0)) + d.quantity
    for sym in sorted(set(venue_pos) | set(ours)):
        a, b = ours.get(sym, Decimal(0)), venue_pos.get(sym, Decimal(0))
        if a != b and await _restore_dust(e, sym, b):
            continue
        if a != b:
            diffs.append(Difference("quantity_mismatch", sym, None, str(a), str(b), actions=("adopt", "mark_closed")))
    balances = await e.broker.balances()
    cur = e.broker.cash_currency  # USDT on a crypto spot venue, USD elsewhere
    venue_cash = balances.get(cur)
    if venue_cash is not None and abs(venue_cash - e.portfolio.cash) > CASH_TOLERANCE:
        diffs.append(Difference("balance_mismatch", cur, None, f"{e.portfolio.cash:.2f}", f"{venue_cash:.2f}",
                                actions=("adopt",)))
    prefix = e.orders.id_prefix.rsplit("-", 2)[0]  # this profile's ids, any session
    venue_open = {o.client_order_id: o for o in await e.broker.open_orders() if o.client_order_id.startswith(prefix)}
    for cid, vo in venue_open.items():
        if cid not in e.orders.working:
            diffs.append(Difference("unknown_at_venue", vo.symbol, cid, "no record",
                                    f"{vo.side.value} {vo.remaining} {vo.type.value} working", actions=("adopt", "cancel")))
    for cid, o in list(e.orders.working.items()):
        if cid in venue_open:
            continue
        vo = await e.broker.fetch_order(cid)
        if vo is None:
            diffs.append(Difference("unknown_to_venue", o.symbol, cid, f"{o.status.value} {o.remaining}", "no such order",
                                    actions=("mark_closed",)))
        else:
            # What it filled meanwhile can be booked as its fill (engine/restart.py): at the venue's
            # price, with the entry's stop.
            filled_more = vo.filled_qty > o.filled_qty
            diffs.append(Difference("closed_while_down", o.symbol, cid, f"{o.status.value} {o.filled_qty}",
                                    f"{vo.status.value} {vo.filled_qty}",
                                    actions=("book", "mark_closed") if filled_more else ("mark_closed",)))
    rep.differences = diffs
    return diffs


async def _restore_dust(e: "Engine", symbol: str, venue_qty: Decimal) -> bool:
    """A dust pile set aside before the last checkpoint is not in it (checkpoints list positions):
    when the venue holds exactly our position plus the pile the journal's last `dust` row names,
    that pile is put back (its cost and mark as journaled) and there is no difference."""
    row = None
    for r in reversed(await e.journal.rows(kinds=["dust"])):
        if r.data.get("symbol") == symbol:
            row = r
            break
    if row is None or Decimal(row.data["quantity"]) == 0:
        return False
    pile = Decimal(row.data["quantity"])
    pos = e.portfolio.positions.get(symbol)
    if (pos.quantity if pos is not None else Decimal(0)) + pile != venue_qty:
        return False
    e.portfolio.restore_dust(Position(symbol, pile, Decimal(row.data["avg"]), last_price=Decimal(row.data["price"])))
    log.info("restored %s dust %s from the journal", symbol, pile)
    return True
