"""Builds the console's `EngineSnapshot` from the engine's state, and the history views read
from the journal. Every number the screen shows against a limit is computed here, on the engine
side, so the console only formats."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Sequence

from .models import OrderPurpose
from .money import ZERO
from .risk.checks_operator import PauseBook
from .snapshot import (
    AlertView, ApprovalView, BreakerView, CapitalView, CheckView, DustView, EngineSnapshot, HistoryView, NoteView,
    OrderView, PauseView, PerformanceView, PositionView, TradeRowView,
)

if TYPE_CHECKING:
    from .engine import Engine
    from .journal import JournalRow

HUNDRED = Decimal(100)
ALERTS_SHOWN = 50


def _position(p, e: "Engine") -> PositionView:
    risk = e.profile.risk
    equity = e.portfolio.equity
    qty = abs(p.quantity)
    dist = loss = limit = None
    if p.stop_price is not None and p.last_price > 0:
        gap = (p.last_price - p.stop_price) if p.quantity > 0 else (p.stop_price - p.last_price)
        dist = (gap / p.last_price * HUNDRED).quantize(Decimal("0.01"))
    if p.stop_price is not None:
        # The same arithmetic as the single_trade_loss check, measured from the average price.
        fee_rate = e.profile.paper.taker_fee_bps / Decimal(10000)
        fees = (p.avg_price + p.stop_price) * qty * fee_rate
        move = (p.avg_price - p.stop_price) if p.quantity > 0 else (p.stop_price - p.avg_price)
        loss = move * qty + fees
        limit = min(equity * risk.risk_per_trade_pct / HUNDRED + fees, risk.max_single_trade_loss_usd)
    stop = e.orders.stop_order(p.symbol)
    return PositionView(p.symbol, "long" if p.quantity > 0 else "short", qty, p.avg_price,
                        p.last_price, p.unrealized_pnl, p.stop_price, dist,
                        loss_at_stop=loss, loss_limit=limit, exposure=qty * p.last_price,
                        exposure_cap=equity * risk.max_symbol_exposure_pct / HUNDRED,
                        stop_order_id=p.stop_order_id, stop_working=stop is not None and stop.remaining >= qty)


def _alert(a) -> AlertView:
    return AlertView(a.seq, a.ts, a.severity, a.kind, a.message, a.acknowledged)


def _alerts(e: "Engine") -> tuple[AlertView, ...]:
    recent = e.alerts.recent(ALERTS_SHOWN)
    shown = {a.seq for a in recent}
    # Unacknowledged critical alerts stay, even once the bounded feed has moved past them.
    extra = [a for a in e.pinned_alerts() if a.seq not in shown]
    merged = sorted([*recent, *extra], key=lambda a: a.seq, reverse=True)
    return tuple(_alert(a) for a in merged)


def _capital(e: "Engine") -> CapitalView:
    p, risk = e.portfolio, e.profile.risk
    return CapitalView(p.equity, p.gross_exposure, risk.max_total_capital_usd, e.profile.stage_limits().max_capital_usd,
                       p.cash, p.equity * risk.cash_reserve_pct / HUNDRED, risk.cash_reserve_pct)


def _performance(e: "Engine") -> PerformanceView:
    # Every trade the account closed, restarts included (portfolio.TradeTotals), so the screen
    # and readiness, which reads them all from the journal, count the same trades.
    t = e.portfolio.totals
    n, wins, losses, gp, gl, big_w, big_l = (t.count, t.wins, t.losses, t.gross_profit, t.gross_loss,
                                             t.largest_win, t.largest_loss)
    st = e.operator_state
    dd = e.portfolio.drawdown_pct
    st.max_drawdown_pct = max(st.max_drawdown_pct, dd)
    win_rate = (Decimal(wins) / n * HUNDRED) if n else None
    pf = (gp / gl) if gl > 0 else None
    targets: list[CheckView] = []
    crit = e.profile.readiness.stages.get(e.profile.stage)
    if crit is not None:
        targets.append(CheckView("trades", n >= crit.min_trades, f"{n} closed, need {crit.min_trades}"))
        wr_ok = win_rate is not None and crit.win_rate_min_pct <= win_rate <= crit.win_rate_max_pct
        wr = "—" if win_rate is None else f"{win_rate:.1f}%"
        targets.append(CheckView("win_rate", wr_ok, f"{wr}, target {crit.win_rate_min_pct}-{crit.win_rate_max_pct}%"))
        pf_ok = pf is not None and pf >= Decimal(str(crit.min_profit_factor))
        pf_text = "—" if pf is None else f"{pf:.2f}"
        targets.append(CheckView("profit_factor", pf_ok, f"{pf_text}, min {crit.min_profit_factor}"))
        targets.append(CheckView("max_drawdown", st.max_drawdown_pct <= crit.max_drawdown_pct,
                                 f"{st.max_drawdown_pct:.2f}%, max {crit.max_drawdown_pct}%"))
    return PerformanceView(n, wins, losses, win_rate, pf, gp - gl, gp, gl, big_w, big_l, dd,
                           st.max_drawdown_pct, tuple(targets))


def drawdown_curve(curve: Sequence[float]) -> tuple[float, ...]:
    """Percent below the running peak of the samples (the window's own peak)."""
    out, peak = [], 0.0
    for eq in curve:
        peak = max(peak, eq)
        out.append(0.0 if peak <= 0 else (peak - eq) / peak * 100)
    return tuple(out)


def build_snapshot(e: "Engine") -> EngineSnapshot:
    p = e.portfolio
    now = e.clock.now()
    approvals = tuple(
        ApprovalView(
            a.order.client_order_id, a.order.symbol, a.order.side.value, a.order.quantity,
            a.order.limit_price or (a.signal.price if a.signal else Decimal(0)),
            a.order.protective_stop,
            a.order.quantity * (a.order.limit_price or (a.signal.price if a.signal else Decimal(0))),
            a.signal.reason if a.signal else a.order.reason, a.sizing,
            tuple(CheckView(c.name, c.passed, c.detail) for c in a.decision.checks),
            max(0.0, (a.deadline - now).total_seconds()),
        )
        for a in e.approvals.items()
    )
    orders = tuple(
        OrderView(o.client_order_id, o.symbol, o.side.value, o.type.value, o.purpose.value, o.quantity,
                  o.filled_qty, o.limit_price if o.limit_price is not None else o.stop_price, o.status.value)
        for o in e.orders.working.values()
    )
    breakers = tuple(BreakerView(b.name, b.state.value, b.value, b.limit, b.text()) for b in e.breakers)
    curve = tuple(float(eq) for _, eq in p.curve)
    st = e.operator_state
    since_stage = None
    if st.stage_pnl_before is not None and st.session_start_equity is not None:
        since_stage = st.stage_pnl_before + p.equity - st.session_start_equity
    book = e.pause_book
    paused = () if book is None else tuple(
        PauseView(k, PauseBook.label(k), book.reasons[k]) for k in book.keys())
    return EngineSnapshot(
        ts=now, mode=e.profile.mode, profile=e.profile.name, venue=e.broker.name,
        trading_state=e.state.value, halt_reason=e.halt_reason, connected=e.broker.connected,
        run_finished=e.run_finished,
        equity=p.equity, cash=p.cash, realized_pnl=p.realized_pnl, unrealized_pnl=p.unrealized_pnl,
        pnl_today=p.pnl_today, pnl_week=p.pnl_week, fees=p.fees, equity_curve=curve,
        positions=tuple(_position(pos, e) for pos in sorted(p.positions.values(), key=lambda x: x.symbol)),
        open_orders=orders, approvals=approvals, breakers=breakers, alerts=_alerts(e),
        counters=dict(e.counters) | {
            "stops": sum(1 for o in e.orders.working.values() if o.purpose is OrderPurpose.STOP)},
        stage=e.profile.stage, stage_started=st.stage_started, pnl_since_stage_start=since_stage,
        drawdown_curve=drawdown_curve(curve), capital=_capital(e), performance=_performance(e),
        paused=paused, approval_required=e.profile.approval.required,
        venue_notice=getattr(e, "venue_notice", ""),
        dust=tuple(DustView(d.symbol, d.quantity, d.last_price, d.quantity * d.last_price)
                   for d in sorted(p.dust.values(), key=lambda x: x.symbol)),
        rearm_lifts=e.rearm_refusal() is None,
    )


# -- journal reads ----------------------------------------------------------------------------
def stage_history(rows: Sequence["JournalRow"], stage: str) -> tuple[Decimal, datetime | None, Decimal | None]:
    """From session/session_end/equity rows: (P&L of the earlier sessions in the current run of
    sessions at `stage`, when that run began, the current session's first equity sample)."""
    sessions = [i for i, r in enumerate(rows) if r.kind == "session"]
    run: list[int] = []
    for i in reversed(sessions):
        if (rows[i].data.get("config") or {}).get("stage", "paper") != stage:
            break
        run.insert(0, i)
    if not run:
        return ZERO, None, None
    ends = {start: end for start, end in zip(sessions, [*sessions[1:], len(rows)])}
    before = ZERO
    for i in run[:-1]:
        eq = [Decimal(r.data["equity"]) for r in rows[i + 1:ends[i]] if "equity" in r.data]
        if len(eq) >= 2:
            before += eq[-1] - eq[0]
    first = next((Decimal(r.data["equity"]) for r in rows[run[-1] + 1:] if r.kind == "equity"), None)
    return before, datetime.fromisoformat(rows[run[0]].ts), first


def history_view(rows: Sequence["JournalRow"], limit: int) -> HistoryView:
    fills: list[TradeRowView] = []
    notes: list[NoteView] = []
    total = 0
    for r in reversed(rows):
        d = r.data
        if r.kind == "fill":
            total += 1
            if len(fills) < limit:
                fills.append(TradeRowView(
                    r.seq, datetime.fromisoformat(r.ts), r.ref or "", str(d.get("symbol", "")),
                    str(d.get("side", "")), Decimal(str(d.get("quantity", 0))), Decimal(str(d.get("price", 0))),
                    Decimal(str(d.get("fee", 0))), Decimal(str(d.get("realized", 0))), str(d.get("purpose", "")),
                    Decimal(str(d.get("position_after", 0)))))
        elif r.kind == "note" and len(notes) < limit:
            notes.append(NoteView(r.seq, datetime.fromisoformat(r.ts), str(d.get("kind", "")), r.ref or "",
                                  str(d.get("text", ""))))
    return HistoryView(tuple(fills), tuple(notes), total)
