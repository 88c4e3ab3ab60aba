"""Performance metrics from the journal: closed trades and the equity curve.

Definitions are in docs/metrics.md; the short version:

* trade statistics use each closed round trip's net P&L (realized minus the fees of its fills),
  exactly, in Decimal;
* return statistics use the equity curve (the journal's `equity` and `session_end` rows), chained
  across sessions, with one return per venue day; Sharpe and Sortino take a risk-free rate of 0
  and annualise by sqrt(periods per year): 365 on a 24/7 market, 252 on an exchange calendar;
* drawdown is measured on every equity point, from a running peak that starts at the starting
  capital.

Everything here is a plain synchronous function on copies of the journal's rows: CPU work that
the CLI calls directly and the console can hand to a worker thread.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

import numpy as np

from engine.strategy.regime import TREND_LABELS, VOL_LABELS

from .context import READINESS_STATES, annotate_context
from .journal_data import JournalData, dec
from .trades import Trade, annotate, closed, execution_stats, rebuild_trades

ZERO = Decimal(0)
INF = float("inf")


def periods_per_year(profile: Any) -> int:
    """365 trading days a year on a 24/7 market (crypto), 252 on an exchange calendar."""
    cal = getattr(getattr(profile, "market_hours", None), "calendar", "24/7")
    return 365 if cal == "24/7" else 252


# -- the equity curve ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Point:
    ts: datetime
    timeline: int
    value: Decimal  # account value on one continuous scale (see equity_curve)
    session: int = 0  # how many `session` rows came before it: the engine run it was taken in


def equity_curve(data: JournalData, capital: Decimal) -> list[Point]:
    """The equity rows on one scale that starts at `capital`.

    A session whose start rebuilt the books from the journal (it journaled a `recovery` row)
    carried the account over: it continues from where it left off, so with no fresh start in
    the journal the curve is the journaled equity itself. A session without one had nothing to
    rebuild and began at its own starting cash: it is chained on, its growth multiplying the
    value the previous session ended at, so a changed `starting_cash` (or a journal whose
    sessions each began anew) is neither a jump nor a new account."""
    out: list[Point] = []
    base_eq = capital  # the session's own equity that corresponds to `base_val`
    base_val = capital
    new_session = carried = False
    last_eq: Decimal | None = None
    sessions = 0
    for r in data.kind("session", "recovery", "equity", "session_end"):
        if r.kind == "session":
            new_session, carried = last_eq is not None, False
            sessions += 1
            continue
        if r.kind == "recovery":
            carried = True
            continue
        eq = dec(r.data.get("equity"))
        if new_session:
            # Whether a start is fresh is read from the recovery row, never guessed from the
            # first equity row: with zero fees and nothing closed yet, a carried-over account
            # showed realized 0 and fees 0 too, and its open positions' gains were counted
            # again at every restart. The engine journals `recovery` whenever it restores
            # anything (a checkpoint, written every minute and at close, or fills to replay),
            # and has since before analytics existed, so no engine journal lacks it where the
            # account was carried over; where it is absent the books really began empty.
            start_cash = _session_cash(data, r.seq)
            base_val = out[-1].value if out else capital
            if carried or start_cash is None:
                base_eq = last_eq or eq  # without a known starting cash: continue, never rescale
            else:
                base_eq = start_cash
            new_session = False
        value = eq if base_eq == base_val else (base_val * eq / base_eq if base_eq else eq)
        out.append(Point(r.ts, r.timeline, value, sessions))
        last_eq = eq
    return out


def _session_cash(data: JournalData, seq: int) -> Decimal | None:
    cash = None
    for s in data.kind("session"):
        if s.seq > seq:
            break
        c = ((s.data.get("config") or {}).get("paper") or {}).get("starting_cash")
        cash = None if c is None else Decimal(str(c))
    return cash


def elapsed_seconds(points: Sequence[Point]) -> list[float]:
    """Time along the curve: the engine's running time. Only the time between two points of one
    session counts; the gap from a session's last point to the next session's first (the engine
    was down) adds nothing, and neither does a sim restart (a new timeline)."""
    out, total = [], 0.0
    for i, p in enumerate(points):
        if i and p.timeline == points[i - 1].timeline and p.session == points[i - 1].session:
            total += max(0.0, (p.ts - points[i - 1].ts).total_seconds())
        out.append(total)
    return out


def daily_returns(points: Sequence[Point], base: Decimal, tz: str = "UTC") -> list[tuple[str, float]]:
    """(day, return) per venue day that has equity points: each day's last value over the
    previous day's (the first day over `base`)."""
    zone = ZoneInfo(tz)
    closes: list[tuple[tuple[int, str], Decimal]] = []
    for p in points:
        key = (p.timeline, p.ts.astimezone(zone).date().isoformat())
        if closes and closes[-1][0] == key:
            closes[-1] = (key, p.value)
        else:
            closes.append((key, p.value))
    out, prev = [], base
    for (_, day), v in closes:
        out.append((day, float(v / prev - 1) if prev else 0.0))
        prev = v
    return out


# -- statistics ------------------------------------------------------------------------------------
def sharpe(returns: Sequence[float] | np.ndarray, ppy: int) -> float | None:
    """Mean over sample standard deviation (ddof 1) of per-period returns, times sqrt(ppy)."""
    r = np.asarray(returns, dtype=float)
    if r.size < 2:
        return None
    sd = r.std(ddof=1)
    if sd == 0 or not math.isfinite(sd):
        return None
    return float(r.mean() / sd * math.sqrt(ppy))


def sortino(returns: Sequence[float] | np.ndarray, ppy: int) -> float | None:
    """Mean over downside deviation, sqrt(mean(min(r, 0)^2)) over ALL periods, times sqrt(ppy)."""
    r = np.asarray(returns, dtype=float)
    if r.size < 2:
        return None
    dd = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if dd == 0:
        return INF if r.mean() > 0 else None
    return float(r.mean() / dd * math.sqrt(ppy))


def drawdown(points: Sequence[Point], capital: Decimal) -> dict[str, Any]:
    """Max drawdown (% of the running peak, which starts at `capital`), when it started,
    bottomed and recovered, and the longest time spent under a previous peak."""
    res: dict[str, Any] = {"max_drawdown_pct": 0.0, "max_drawdown_usd": ZERO, "peak_at": None, "trough_at": None,
                           "recovered_at": None, "recovered": True, "max_drawdown_duration_s": 0.0,
                           "recovery_s": 0.0, "longest_underwater_s": 0.0}
    if not points:
        return res
    el = elapsed_seconds(points)
    peak, peak_i = capital, -1  # -1: the starting capital, before the first point
    best = (ZERO, -1, -1)  # (drawdown fraction, peak index, trough index)
    underwater_from: float | None = None
    longest = 0.0
    for i, p in enumerate(points):
        if p.value >= peak:
            if underwater_from is not None:
                longest = max(longest, el[i] - underwater_from)
                underwater_from = None
            peak, peak_i = p.value, i
            continue
        if underwater_from is None:
            underwater_from = el[peak_i] if peak_i >= 0 else el[0]
        dd = (peak - p.value) / peak if peak > 0 else ZERO
        if dd > best[0]:
            best = (dd, peak_i, i)
    if underwater_from is not None:
        longest = max(longest, el[-1] - underwater_from)
    res["longest_underwater_s"] = longest
    dd, pi, ti = best
    if dd == 0:
        return res
    peak_val = capital if pi < 0 else points[pi].value
    start = el[pi] if pi >= 0 else el[0]
    rec = next((j for j in range(ti + 1, len(points)) if points[j].value >= peak_val), None)
    res.update(max_drawdown_pct=float(dd * 100), max_drawdown_usd=peak_val - points[ti].value,
               peak_at=points[pi].ts if pi >= 0 else points[0].ts, trough_at=points[ti].ts,
               recovered_at=points[rec].ts if rec is not None else None, recovered=rec is not None,
               max_drawdown_duration_s=(el[rec] if rec is not None else el[-1]) - start,
               recovery_s=(el[rec] - el[ti]) if rec is not None else None)
    return res


def _streaks(nets: Iterable[Decimal]) -> tuple[int, int]:
    win = loss = best_w = best_l = 0
    for n in nets:
        win = win + 1 if n > 0 else 0
        loss = loss + 1 if n < 0 else 0
        best_w, best_l = max(best_w, win), max(best_l, loss)
    return best_w, best_l


def profit_factor(gross_profit: Decimal, gross_loss: Decimal) -> float | None:
    """Winning trades' net over losing trades' |net|; inf with no losses, None with neither."""
    if gross_loss == 0:
        return INF if gross_profit > 0 else None
    return float(gross_profit / -gross_loss)


def trade_stats(trades: Sequence[Trade], capital: Decimal) -> dict[str, Any]:
    """Statistics of closed trades, in the order they closed. Money stays Decimal."""
    nets = [t.net for t in trades]
    n = len(nets)
    wins = [x for x in nets if x > 0]
    losses = [x for x in nets if x < 0]
    gp, gl = sum(wins, ZERO), sum(losses, ZERO)
    realized = sum((t.realized for t in trades), ZERO)
    fees = sum((t.fees for t in trades), ZERO)
    largest_loss = min(losses) if losses else ZERO
    best_w, best_l = _streaks(nets)
    return {
        "trades": n, "wins": len(wins), "losses": len(losses), "flat": n - len(wins) - len(losses),
        "win_rate_pct": None if n == 0 else 100.0 * len(wins) / n,
        "avg_win": sum(wins, ZERO) / len(wins) if wins else None,
        "avg_loss": sum(losses, ZERO) / len(losses) if losses else None,
        "gross_profit": gp, "gross_loss": gl,
        "profit_factor": profit_factor(gp, gl),
        "expectancy": sum(nets, ZERO) / n if n else None,
        "realized_before_fees": realized, "fees": fees, "net_pnl": realized - fees,
        # What the fees took out of what the trading made before them; undefined without a profit.
        "fee_drag_pct": float(fees / realized * 100) if realized > 0 else None,
        "largest_win": max(wins) if wins else ZERO,
        "largest_loss": largest_loss,
        "largest_loss_pct_of_capital": float(-largest_loss / capital * 100) if capital > 0 else None,
        "longest_win_streak": best_w, "longest_loss_streak": best_l,
    }


GROUP_KEYS = ("trades", "wins", "losses", "win_rate_pct", "avg_win", "avg_loss", "net_pnl", "fees",
              "profit_factor", "expectancy", "largest_loss")


def per_group(trades: Sequence[Trade], capital: Decimal, key: Callable[[Trade], str],
              always: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """The trade statistics of each group of trades (`key` names a trade's group). The groups in
    `always` come first, in that order, even without a trade (0 trades, rates undefined); any
    other group that has trades follows in name order."""
    groups: dict[str, list[Trade]] = {g: [] for g in always}
    for t in trades:
        groups.setdefault(key(t), []).append(t)
    order = [*always, *sorted(g for g in groups if g not in always)]
    return {g: {k: v for k, v in trade_stats(groups[g], capital).items() if k in GROUP_KEYS} for g in order}


def per_symbol(trades: Sequence[Trade], capital: Decimal) -> dict[str, dict[str, Any]]:
    return per_group(trades, capital, lambda t: t.symbol)


def breakdowns(trades: Sequence[Trade], capital: Decimal) -> dict[str, Any]:
    """By strategy, by the strategy's readiness at entry (every state listed, traded or not), and
    by the market regime at entry: volatility and trend (docs/metrics.md)."""
    return {
        "per_strategy": per_group(trades, capital, lambda t: t.strategy),
        "per_readiness": per_group(trades, capital, lambda t: t.readiness, READINESS_STATES),
        "per_regime": {"volatility": per_group(trades, capital, lambda t: t.volatility, VOL_LABELS),
                       "trend": per_group(trades, capital, lambda t: t.trend, TREND_LABELS)},
    }


def return_stats(points: Sequence[Point], base: Decimal, ppy: int, tz: str) -> dict[str, Any]:
    days = daily_returns(points, base, tz)
    r = [x for _, x in days]
    final = points[-1].value if points else base
    total = final / base - 1 if base else ZERO
    n = len(r)
    annual = None
    if n and final > 0 and base > 0:
        # compounded over n days at ppy days a year (as empyrical's annual_return)
        annual = math.exp(math.log(float(final / base)) * ppy / n) - 1
    el = elapsed_seconds(points)
    return {
        "sessions": len({(p.timeline, p.session) for p in points}),
        "start_equity": base, "final_equity": final, "total_return_pct": float(total * 100),
        "annualized_return_pct": None if annual is None else annual * 100,
        "days": n, "elapsed_days": (el[-1] / 86400) if el else 0.0,
        "sharpe": sharpe(r, ppy), "sortino": sortino(r, ppy), "periods_per_year": ppy,
        "daily_returns": days,
    }


# -- one call for everything -----------------------------------------------------------------------
@dataclass
class Metrics:
    trades: dict[str, Any]
    returns: dict[str, Any]
    drawdown: dict[str, Any]
    per_symbol: dict[str, dict[str, Any]]
    execution: dict[str, Any]
    closed_trades: list[Trade]
    curve: list[Point]
    capital: Decimal
    open_trades: int = 0
    abandoned_trades: int = 0
    open: list[Trade] = field(default_factory=list)  # trades still open at the end of the journal
    per_strategy: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_readiness: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_regime: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # volatility, trend

    def as_dict(self, *, with_series: bool = False) -> dict[str, Any]:
        ret = dict(self.returns)
        if not with_series:
            ret.pop("daily_returns", None)
        out = {"capital": self.capital, "trades": self.trades, "returns": ret, "drawdown": self.drawdown,
               "per_symbol": self.per_symbol, "per_strategy": self.per_strategy,
               "per_readiness": self.per_readiness, "per_regime": self.per_regime, "execution": self.execution,
               "open_trades": self.open_trades, "abandoned_trades": self.abandoned_trades}
        if with_series:
            out["equity"] = [[p.ts.isoformat(), str(p.value)] for p in self.curve]
            out["closed_trades"] = [t.as_dict() for t in self.closed_trades]
        return jsonable(out)


def compute(data: JournalData, *, capital: Decimal | None = None, ppy: int = 365, tz: str = "UTC",
            since: datetime | None = None, until: datetime | None = None,
            timeline: int | None = None) -> Metrics:
    """All metrics of a journal, or of the part of it in [since, until) on one timeline.

    Within a window, trades count when they close in it, and the curve starts from the value it
    had just before the window (the window's own starting capital)."""
    cap0 = data.starting_capital(Decimal(10000)) if capital is None else capital
    all_trades = rebuild_trades(data.kind("fill"))
    annotate(all_trades, data)
    annotate_context(all_trades, data)
    curve = equity_curve(data, cap0)

    def inside(ts: datetime | None, tl: int) -> bool:
        return ts is not None and (timeline is None or tl == timeline) and \
            (since is None or ts >= since) and (until is None or ts < until)

    trades = [t for t in closed(all_trades) if inside(t.closed_at, t.timeline)]
    pts = [p for p in curve if inside(p.ts, p.timeline)]
    base = cap0
    first = next((i for i, p in enumerate(curve) if inside(p.ts, p.timeline)), None)
    if first:
        base = curve[first - 1].value
    open_now = [t for t in all_trades if t.status == "open"]
    return Metrics(
        trades=trade_stats(trades, base), returns=return_stats(pts, base, ppy, tz),
        drawdown=drawdown(pts, base), per_symbol=per_symbol(trades, base),
        execution=execution_stats(data, lambda r: inside(r.ts, r.timeline)),
        closed_trades=trades, curve=pts, capital=base, open_trades=len(open_now), open=open_now,
        abandoned_trades=sum(1 for t in all_trades if t.status == "abandoned"), **breakdowns(trades, base))


def jsonable(x: Any) -> Any:
    """Decimals as their exact strings (the journal's convention), inf as "inf", times as ISO."""
    if isinstance(x, Decimal):
        return str(x)
    if isinstance(x, float):
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return None if math.isnan(x) else x
    if isinstance(x, datetime):
        return x.isoformat()
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, Trade):
        return x.as_dict()
    return x
