"""Go / no-go for leaving a stage: every criterion of `readiness.stages[stage]`, measured on the
profile's journal, with its threshold and a pass or a fail. GO only when every one passes; a
number that cannot be measured (no trades, one day of returns) fails: readiness is never assumed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from .config import StageCriteria
from .context import OPERATOR
from .journal_data import JournalData, JournalReadError, Row, dec, load
from .metrics import Metrics, compute, jsonable, periods_per_year, trade_stats
from .resample import bootstrap_sharpe, bootstrap_trades


@dataclass
class Criterion:
    name: str
    label: str
    measured: Any
    threshold: str
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return jsonable({"name": self.name, "label": self.label, "measured": self.measured,
                         "threshold": self.threshold, "passed": self.passed, "detail": self.detail})


def incidents(data: JournalData) -> list[dict[str, Any]]:
    """Critical alerts and halts, oldest first. A halt also raises a critical `halt` alert; the
    halt row stands for both."""
    out = []
    for r in data.kind("alert", "halt"):
        if r.kind == "halt":
            out.append({"ts": r.ts, "kind": "halt", "message": f"halt by {r.data.get('source')}: {r.data.get('reason')}"})
        elif r.data.get("severity") == "critical" and r.ref != "halt":
            out.append({"ts": r.ts, "kind": r.ref or "alert", "message": r.data.get("message", "")})
    return out


def latest_by_ref(rows: list[Row]) -> dict[str, Row]:
    out: dict[str, Row] = {}
    for r in rows:
        if r.ref:
            out[r.ref] = r
    return out


def unbooked_fees(data: JournalData) -> str:
    """Fees paid in an asset the engine cannot price (each fill row's `unbooked_fee`, e.g.
    "0.00042 BNB"), totalled per asset: "0.2 BNB on 2 fills", or "" when there are none."""
    per_asset: dict[str, Decimal] = {}
    fills = 0
    for r in data.kind("fill"):
        text = r.data.get("unbooked_fee")
        if not text:
            continue
        amount, _, asset = str(text).partition(" ")
        try:
            per_asset[asset] = per_asset.get(asset, Decimal(0)) + Decimal(amount)
        except ArithmeticError:
            per_asset[asset] = per_asset.get(asset, Decimal(0))
        fills += 1
    if not fills:
        return ""
    return ", ".join(f"{v.normalize():f} {a}" for a, v in sorted(per_asset.items())) + f" on {fills} fill(s)"


def drills_of(data: JournalData, profile: Any | None = None) -> list[Row]:
    """The journal's drill rows; with `profile`, only those its own drill made: the row's
    `profile` and `mode` are that profile's name and mode (a paper profile's drill written into a
    live journal proves nothing about the live profile's configuration)."""
    rows = data.kind("drill")
    if profile is None:
        return rows
    return [r for r in rows if r.data.get("profile") == profile.name and r.data.get("mode") == profile.mode]


def last_passing_drill(data: JournalData, profile: Any | None = None) -> Row | None:
    passing = [r for r in drills_of(data, profile) if r.data.get("passed")]
    return passing[-1] if passing else None


def judged_stage(profile: Any, journal: str | Path | None) -> str:
    """The stage whose criteria a readiness report judges by default: the one `promote` would
    judge (engine/stages.py::current_stage). A paper profile stands at paper whatever its
    `stage:` says; a testnet or live profile at the stage its journal grants it on its venue,
    or at its `stage:` while nothing is granted (nothing can be promoted from there yet)."""
    from engine.stages import current_stage, grant_for

    rows: list[Row] = []
    if journal is not None:
        try:
            rows = load(journal, ("stage", "venue")).rows
        except JournalReadError:
            rows = []
    return current_stage(profile, grant_for(profile, rows)[0]) or profile.stage


def stage_record(data: JournalData, stage: str) -> JournalData:
    """What `promote` judges of this journal to leave `stage` (engine/stages.py::record_at): the
    sessions that traded at it, since it was granted. The readiness command and the console's
    go/no-go line judge the same rows, so their GO is promote's GO."""
    from engine.stages import record_at

    try:
        stage_rows = load(data.path, ("stage",)).rows
    except JournalReadError:
        stage_rows = []
    return record_at(data, stage, stage_rows)


def stage_capital(profile: Any, stage: str) -> Decimal | None:
    """The `max_capital_usd` of `stage` for this profile (its `stages:` override of the built-in
    caps), None for a stage without a cap."""
    try:
        return profile.model_copy(update={"stage": stage}).stage_limits().max_capital_usd
    except (KeyError, AttributeError):
        return None


def _max_drawdown_usd(curve: list[Any], start: Decimal) -> Decimal:
    peak, worst = start, Decimal(0)
    for p in curve:
        peak = max(peak, p.value)
        worst = max(worst, peak - p.value)
    return worst


def _open_loss(data: JournalData, m: Metrics) -> tuple[Decimal, str]:
    """What the trades still open at the end of the journal have made so far, all together: their
    booked P&L (realized on partial exits, minus fees) plus the unrealized P&L of the last
    `equity` row taken after the latest of them opened (the engine marks the book, not each
    position). (P&L, how it was marked)."""
    open_ = m.open
    if not open_:
        return Decimal(0), ""
    booked = sum((t.net for t in open_), Decimal(0))
    newest = max(open_, key=lambda t: t.opened_at)
    eq = data.kind("equity")
    last = eq[-1] if eq else None
    if last is None or last.timeline != newest.timeline or last.ts < newest.opened_at:
        return booked, "not marked (no equity row since it opened): its booked P&L only"
    return booked + dec(last.data.get("unrealized")), f"marked at the equity row of {last.ts:%Y-%m-%d %H:%M}"


def _pct(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f} %"


def _num(v: float | None, digits: int = 2) -> str:
    if v is None:
        return "n/a"
    return "inf" if v == float("inf") else f"{v:.{digits}f}"


def evaluate(profile: Any, data: JournalData, stage: str, *, now: datetime | None = None,
             resamples: int = 2000, seed: int = 0, confidence: float = 0.95,
             metrics: Metrics | None = None) -> dict[str, Any]:
    """The readiness verdict of `stage` as a JSON-ready dict (see docs/metrics.md)."""
    crit: StageCriteria = profile.readiness.stages[stage]
    now = now or datetime.now(timezone.utc)
    ppy = periods_per_year(profile)
    m = metrics or compute(data, capital=data.starting_capital(profile.paper.starting_cash), ppy=ppy,
                           tz=profile.venue.timezone)
    r, dd = m.returns, m.drawdown
    # Readiness judges the strategy: trades the operator opened by hand are left out of the trade
    # criteria (they stay in the equity curve: return, drawdown and Sharpe cannot tell them apart).
    strategy_trades = [x for x in m.closed_trades if x.strategy != OPERATOR]
    manual = len(m.closed_trades) - len(strategy_trades)
    t = trade_stats(strategy_trades, m.capital) if manual else m.trades
    # The % criteria are of the capital the stage trades with: the stage's cap when it is below
    # what the account started with (idle cash in the account would dilute every risk figure).
    cap = stage_capital(profile, stage)
    capped = cap is not None and cap < m.capital
    base = cap if capped else m.capital
    base_text = (f"of {base:f}, stage {stage}'s max capital (account started with {m.capital:f})" if capped
                 else f"of the starting capital {m.capital:f}"
                 + (f" (within stage {stage}'s max capital {cap:f})" if cap is not None else ""))
    daily = [x for _, x in r["daily_returns"]]
    sharpe_ci = bootstrap_sharpe(daily, ppy, resamples=resamples, seed=seed, confidence=confidence)
    trade_ci = bootstrap_trades([float(x.net) for x in strategy_trades], resamples=resamples, seed=seed,
                                confidence=confidence, workers=1)
    out: list[Criterion] = []

    def add(name: str, label: str, measured: Any, threshold: str, passed: bool, detail: str = "") -> None:
        out.append(Criterion(name, label, measured, threshold, bool(passed), detail))

    add("trades", "closed trades", t["trades"], f">= {crit.min_trades}", t["trades"] >= crit.min_trades,
        f"{t['trades']} strategy trade(s); {manual} manual trade(s) left out" if manual else "")
    days = r["elapsed_days"]
    add("days", "time trading", round(days, 2), f">= {crit.min_days:g} days", days >= crit.min_days,
        f"{days:.2f} days over {r.get('sessions', 0)} session(s), {r['days']} venue day(s); "
        f"time between sessions not counted")
    if capped:
        ret = float((r["final_equity"] - r["start_equity"]) / base * 100)
    else:
        ret = r["total_return_pct"]
    add("return", "return after fees", ret, f">= {crit.min_return_pct} %", ret >= float(crit.min_return_pct),
        f"{_pct(ret)} {base_text}")
    sh = r["sharpe"]
    low = sharpe_ci["low"]
    add("sharpe", "Sharpe (daily, annualised)", sh, f">= {crit.min_sharpe:g}",
        sh is not None and sh >= crit.min_sharpe,
        f"{_num(sh)}; {confidence:.0%} bootstrap lower bound {_num(low)}" if sh is not None
        else f"not measurable ({r['days']} day(s) of returns; needs 2 with variation)")
    pf = t["profit_factor"]
    add("profit_factor", "profit factor", pf, f">= {crit.min_profit_factor:g}",
        pf is not None and pf >= crit.min_profit_factor,
        _num(pf) + (f"; {confidence:.0%} CI {_num(trade_ci['profit_factor']['low'])}.."
                    f"{_num(trade_ci['profit_factor']['high'])}" if pf is not None else ""))
    if capped:
        dd_usd = _max_drawdown_usd(m.curve, m.capital)
        mdd = float(dd_usd / base * 100)
        dd_text = f"{_pct(mdd)}: {dd_usd:.2f} from a peak, {base_text}"
    else:
        mdd = dd["max_drawdown_pct"]
        dd_text = f"{_pct(mdd)} of the running peak, which starts at the starting capital {m.capital:f}"
    add("max_drawdown", "max drawdown", mdd, f"< {crit.max_drawdown_pct} %", mdd < float(crit.max_drawdown_pct),
        dd_text)
    fd = t["fee_drag_pct"]
    unpriced = unbooked_fees(data)
    if unpriced:
        # Fees the venue took in another asset (BNB) are in no figure here: a drag measured
        # without them could pass on fees it never counted.
        add("fee_drag", "fee drag (fees / P&L before fees)", fd, f"< {crit.max_fee_drag_pct} %", False,
            f"not measurable: {unpriced} paid in an asset the engine cannot price are left out of every "
            f"figure here (return, fees, P&L); pay fees in the quote currency to measure it")
    else:
        add("fee_drag", "fee drag (fees / P&L before fees)", fd, f"< {crit.max_fee_drag_pct} %",
            fd is not None and fd < float(crit.max_fee_drag_pct),
            _pct(fd) if fd is not None else "not measurable: no profit before fees")
    wr = t["win_rate_pct"]
    add("win_rate", "win rate", wr, f"{crit.win_rate_min_pct}..{crit.win_rate_max_pct} %",
        wr is not None and float(crit.win_rate_min_pct) <= wr <= float(crit.win_rate_max_pct),
        _pct(wr) + (f"; {confidence:.0%} CI {_pct(trade_ci['win_rate_pct']['low'])}.."
                    f"{_pct(trade_ci['win_rate_pct']['high'])}" if wr is not None else ""))
    # The largest loss of a closed strategy trade, or what the trades still open have lost so far
    # (marked at the journal's last equity row), whichever is larger: a position sitting on a
    # loss beyond the limit must not pass because it has not been closed yet.
    largest = t["largest_loss"]
    ll = float(-largest / base * 100) if base > 0 else None
    ll_text = f"largest closed {_pct(ll)} ({largest:.2f})"
    open_pnl, marked = _open_loss(data, m)
    if m.open:
        open_pct = float(max(-open_pnl, Decimal(0)) / base * 100) if base > 0 else None
        ll_text += f"; {len(m.open)} open trade(s) at {open_pnl:.2f} ({_pct(open_pct)}), {marked}"
        if ll is not None and open_pct is not None:
            ll = max(ll, open_pct)
    add("single_loss", "largest single loss, % of capital", ll, f"<= {crit.max_single_loss_pct} %",
        ll is not None and ll <= float(crit.max_single_loss_pct), f"{ll_text}; {base_text}")
    if crit.no_critical_incident:
        inc = incidents(data)
        add("no_critical_incident", "no critical incident", len(inc), "0", not inc,
            "; ".join(f"{i['ts']:%Y-%m-%d %H:%M} {i['message']}" for i in inc[-3:]) + (" ..." if len(inc) > 3 else ""))
    attested = latest_by_ref(data.kind("attestation"))
    for item in crit.attestations:
        row = attested.get(item)
        add(f"attest:{item}", f"attested: {item}", row is not None, "attested", row is not None,
            f"{row.ts:%Y-%m-%d %H:%M} {row.data.get('text', '')}" if row else
            f"missing: tradeconsole attest {item} --text ...")
    if crit.drill_max_age_days is not None:
        drill = last_passing_drill(data, profile)
        age = None if drill is None else (now - drill.ts).total_seconds() / 86400
        others = len(data.kind("drill")) - len(drills_of(data, profile))
        if drill is not None:
            where = " on the paper broker and a simulated market" if drill.data.get("market") == "simulated" else ""
            drill_text = f"{age:.1f} days ago ({drill.ts:%Y-%m-%d %H:%M}){where}"
        else:
            how = "drill --simulated" if profile.mode == "live" else "drill"
            drill_text = (f"none journaled by profile {profile.name!r} ({profile.mode}): run tradeconsole {how} "
                          f"--profile PATH with this profile's file")
            if others:
                drill_text += f"; {others} drill row(s) of another profile or mode do not count"
        add("drill", "passing drill", None if age is None else round(age, 2),
            f"within {crit.drill_max_age_days:g} days", age is not None and age <= crit.drill_max_age_days,
            drill_text)
    go = all(c.passed for c in out)
    return jsonable({
        "profile": profile.name, "stage": stage, "journal": data.path, "verdict": "GO" if go else "NO-GO",
        "passed": sum(c.passed for c in out), "total": len(out),
        "criteria": [c.as_dict() for c in out],
        "bootstrap": {"sharpe": sharpe_ci, **{k: trade_ci[k] for k in ("win_rate_pct", "profit_factor", "expectancy")},
                      "resamples": resamples, "seed": seed},
        "metrics": m.as_dict(),
    })


def summary(profile: Any, journal: str | Path, *, stage: str | None = None, now: datetime | None = None,
            resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The verdict and its criteria without the metrics behind them (what the console shows):
    {stage, verdict, passed, total, criteria, journal}, or {stage, error} when there is nothing to
    judge (no criteria for the stage, no journal, a file that is not one). The stage is by
    default the one `promote` would judge (`judged_stage`)."""
    stage = stage or judged_stage(profile, journal)
    if stage not in profile.readiness.stages:
        return {"stage": stage, "error": f"no readiness criteria for stage {stage}"}
    try:
        data = load(journal)
    except JournalReadError as exc:
        return {"stage": stage, "error": str(exc)}
    rep = evaluate(profile, stage_record(data, stage), stage, now=now, resamples=resamples, seed=seed)
    return {k: rep[k] for k in ("stage", "verdict", "passed", "total", "criteria", "journal")}
