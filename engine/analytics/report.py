"""Daily, weekly and stage reports from the journal, as JSON-ready dicts (the CLI renders them as
tables, JSON or HTML).

The day and the week are the venue's (profile.venue.timezone), the ones holding the journal's
last row; a simulated market that restarted its clock is reported on its latest run only.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .journal_data import WALL_CLOCK_KINDS, JournalData, Row
from .metrics import Metrics, compute, jsonable, periods_per_year
from .readiness import evaluate, incidents, judged_stage
from .resample import bootstrap_sharpe, bootstrap_trades, monte_carlo

KINDS = ("daily", "weekly", "stage")
# Alerts that mean the venue (or our link to it) misbehaved.
VENUE_ALERTS = {"order_rejected", "cancel_failed", "service_failed", "reconciliation", "fallback_refused",
                "stop_rejected", "stop_partial", "venue_unreadable_fill", "venue_late_order", "restored_unconfirmed",
                "venue_rate_limit", "feed"}


def period(data: JournalData, kind: str, tz: str) -> tuple[datetime | None, datetime | None, int | None]:
    """[since, until) and the timeline of a report; (None, None, None) for the whole journal."""
    last = data.last_market_row()
    if kind == "stage" or last is None:
        return None, None, None
    zone = ZoneInfo(tz)
    local = last.ts.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "weekly":
        start -= timedelta(days=start.weekday())
        # a calendar week in the venue's zone: add days on the wall clock, then re-attach the zone
        end = (start.replace(tzinfo=None) + timedelta(days=7)).replace(tzinfo=zone)
    else:
        end = (start.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
    return start, end, last.timeline


def _inside(r: Row, since: datetime | None, until: datetime | None, timeline: int | None) -> bool:
    return (timeline is None or r.timeline == timeline) and (since is None or r.ts >= since) and \
        (until is None or r.ts < until)


def _trade_brief(t: Any) -> dict[str, Any] | None:
    return None if t is None else t.as_dict()


def build(profile: Any, data: JournalData, kind: str, *, resamples: int = 2000, seed: int = 0,
          now: datetime | None = None) -> tuple[dict[str, Any], Metrics]:
    """The report and the metrics it was built from (the HTML charts draw from the latter)."""
    if kind not in KINDS:
        raise ValueError(f"report kind must be one of {', '.join(KINDS)} (got {kind!r})")
    tz = profile.venue.timezone
    ppy = periods_per_year(profile)
    since, until, tl = period(data, kind, tz)
    cap = data.starting_capital(profile.paper.starting_cash)
    m = compute(data, capital=cap, ppy=ppy, tz=tz, since=since, until=until, timeline=tl)
    rows = [r for r in data.rows if r.kind not in WALL_CLOCK_KINDS and _inside(r, since, until, tl)]
    alerts = [r for r in rows if r.kind == "alert"]
    sub = JournalData(data.path, rows)
    # The stage `promote` judges (a paper profile stands at paper whatever its `stage:` says).
    stage = judged_stage(profile, data.path)
    rep: dict[str, Any] = {
        "kind": kind, "profile": profile.name, "stage": stage, "journal": data.path,
        "period": {"since": since, "until": until,
                   "first_row": rows[0].ts if rows else None, "last_row": rows[-1].ts if rows else None},
        "metrics": m.as_dict(),
        "trades": [t.as_dict() for t in m.closed_trades],
        "alerts": {s: sum(1 for a in alerts if a.data.get("severity") == s) for s in ("info", "warning", "critical")},
        "incidents": incidents(sub),
        # The operator's trading journal: what they noticed, on the day, a trade or an alert.
        "notes": [{"ts": r.ts, "about": r.data.get("kind"), "ref": r.ref, "text": r.data.get("text", "")}
                  for r in sub.kind("note")],
    }
    if kind in ("weekly", "stage"):
        rep["week" if kind == "weekly" else "review"] = _review(sub, m)
    if kind == "stage":
        nets = [float(t.net) for t in m.closed_trades]
        daily = [x for _, x in m.returns["daily_returns"]]
        rep["readiness"] = evaluate(profile, data, stage, now=now, resamples=resamples, seed=seed, metrics=m) \
            if stage in profile.readiness.stages else None
        rep["bootstrap"] = {"sharpe": bootstrap_sharpe(daily, ppy, resamples=resamples, seed=seed),
                            **bootstrap_trades(nets, resamples=resamples, seed=seed, workers=1)}
        crit = profile.readiness.stages.get(stage)
        # "losing X %": the stage's own drawdown limit, or 10 % for a stage without criteria
        loss = float(crit.max_drawdown_pct) if crit is not None else 10.0
        rep["monte_carlo"] = monte_carlo(nets, float(cap), resamples=resamples, seed=seed, workers=1,
                                         stop_pct=float(profile.risk.drawdown_stop_pct), loss_pct=loss)
    return jsonable(rep), m


def _review(sub: JournalData, m: Metrics) -> dict[str, Any]:
    """What a weekly review asks: win rate, the largest loss and gain and why they were taken,
    incidents by type, and positions that ever had no protective stop."""
    trades = m.closed_trades
    losses = [t for t in trades if t.net < 0]
    gains = [t for t in trades if t.net > 0]
    breakers = [{"ts": r.ts, "breaker": r.ref, "from": r.data.get("old"), "to": r.data.get("new"),
                 "value": r.data.get("value"), "limit": r.data.get("limit")}
                for r in sub.kind("breaker") if r.data.get("new") in ("critical", "tripped")]
    halts = [{"ts": r.ts, "source": r.data.get("source"), "reason": r.data.get("reason")} for r in sub.kind("halt")]
    venue = [{"ts": r.ts, "kind": r.ref, "message": r.data.get("message", "")}
             for r in sub.kind("alert") if r.ref in VENUE_ALERTS]
    venue += [{"ts": r.ts, "kind": r.kind, "message": f"{r.kind} {r.ref}"} for r in sub.kind("unknown_order", "unknown_fill", "duplicate_fill")]
    bare = [t for t in trades if t.stop_covered is False]
    refused = [r for r in sub.kind("alert") if r.ref == "stop_refused"]
    return {
        "win_rate_pct": m.trades["win_rate_pct"],
        "largest_loss": _trade_brief(min(losses, key=lambda t: t.net) if losses else None),
        "largest_gain": _trade_brief(max(gains, key=lambda t: t.net) if gains else None),
        "incidents": {"breakers": breakers, "halts": halts, "venue_errors": sorted(venue, key=lambda x: x["ts"])},
        "positions_without_stop": {
            "measurable": True,
            "how": "closed trades with no protective stop order placed between entry and exit, "
                   "plus stop_refused alerts",
            "count": len(bare), "trades": [t.as_dict() for t in bare], "stop_refused_alerts": len(refused)},
    }
