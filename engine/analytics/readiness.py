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
from .journal_data import JournalData, JournalReadError, Row, load
from .metrics import Metrics, compute, jsonable, periods_per_year
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


def last_passing_drill(data: JournalData) -> Row | None:
    passing = [r for r in data.kind("drill") if r.data.get("passed")]
    return passing[-1] if passing else None


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
    t, r, dd = m.trades, m.returns, m.drawdown
    daily = [x for _, x in r["daily_returns"]]
    sharpe_ci = bootstrap_sharpe(daily, ppy, resamples=resamples, seed=seed, confidence=confidence)
    trade_ci = bootstrap_trades([float(x.net) for x in m.closed_trades], resamples=resamples, seed=seed,
                                confidence=confidence, workers=1)
    out: list[Criterion] = []

    def add(name: str, label: str, measured: Any, threshold: str, passed: bool, detail: str = "") -> None:
        out.append(Criterion(name, label, measured, threshold, bool(passed), detail))

    add("trades", "closed trades", t["trades"], f">= {crit.min_trades}", t["trades"] >= crit.min_trades)
    days = r["elapsed_days"]
    add("days", "time trading", round(days, 2), f">= {crit.min_days:g} days", days >= crit.min_days,
        f"{days:.2f} days over {r['days']} venue day(s)")
    ret = r["total_return_pct"]
    add("return", "return after fees", ret, f">= {crit.min_return_pct} %", ret >= float(crit.min_return_pct),
        _pct(ret))
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
    mdd = dd["max_drawdown_pct"]
    add("max_drawdown", "max drawdown", mdd, f"< {crit.max_drawdown_pct} %", mdd < float(crit.max_drawdown_pct),
        _pct(mdd))
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
    ll = t["largest_loss_pct_of_capital"]
    add("single_loss", "largest single loss, % of capital", ll, f"<= {crit.max_single_loss_pct} %",
        ll is not None and ll <= float(crit.max_single_loss_pct), f"{_pct(ll)} ({t['largest_loss']:.2f})")
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
        drill = last_passing_drill(data)
        age = None if drill is None else (now - drill.ts).total_seconds() / 86400
        add("drill", "passing drill", None if age is None else round(age, 2),
            f"within {crit.drill_max_age_days:g} days", age is not None and age <= crit.drill_max_age_days,
            "none journaled: run tradeconsole drill" if drill is None else f"{age:.1f} days ago ({drill.ts:%Y-%m-%d %H:%M})")
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
    judge (no criteria for the stage, no journal, a file that is not one)."""
    stage = stage or profile.stage
    if stage not in profile.readiness.stages:
        return {"stage": stage, "error": f"no readiness criteria for stage {stage}"}
    try:
        data = load(journal)
    except JournalReadError as exc:
        return {"stage": stage, "error": str(exc)}
    rep = evaluate(profile, data, stage, now=now, resamples=resamples, seed=seed)
    return {k: rep[k] for k in ("stage", "verdict", "passed", "total", "criteria", "journal")}
