"""A report as one self-contained HTML file: tables and inline SVG charts, nothing fetched."""
from __future__ import annotations

from html import escape
from typing import Any

from . import svg
from .metrics import Metrics

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:980px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.pass{color:#2e7d32;font-weight:bold}.fail{color:#c62828;font-weight:bold}
.go{background:#e8f5e9;padding:6px 10px;display:inline-block}.nogo{background:#ffebee;padding:6px 10px;display:inline-block}
.muted{color:#777}
"""


def _v(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:,.4g}" if abs(x) < 1 else f"{x:,.2f}"
    if isinstance(x, str):
        try:
            return f"{float(x):,.2f}" if x not in ("inf", "-inf") else x
        except ValueError:
            return x
    return str(x)


def _when(iso: str | None) -> str:
    """'2026-01-05T01:02:41+00:00' -> '01-05 01:02:41' (the year and zone are in the header)."""
    return "" if not iso else iso[5:19].replace("T", " ")


def _table(head: list[str], rows: list[list[Any]], left: int = 1, text_last: bool = False) -> str:
    """Numbers right-aligned; the first `left` columns (and a trailing text column) left."""
    def cls(i: int) -> str:
        return "l" if i < left or (text_last and i == len(head) - 1) else ""

    th = "".join(f'<th class="{cls(i)}">{escape(h)}</th>' for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="{cls(i)}">{c}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _kv(d: dict[str, Any], keys: list[tuple[str, str]]) -> str:
    return _table(["metric", "value"], [[escape(label), escape(_v(d.get(k)))] for k, label in keys])


TRADE_KEYS = [("trades", "closed trades"), ("win_rate_pct", "win rate %"), ("avg_win", "average win"),
              ("avg_loss", "average loss"), ("profit_factor", "profit factor"), ("expectancy", "expectancy / trade"),
              ("net_pnl", "net P&L"), ("fees", "fees"), ("fee_drag_pct", "fee drag %"),
              ("largest_loss", "largest loss"), ("largest_loss_pct_of_capital", "largest loss % of capital"),
              ("longest_win_streak", "longest win streak"), ("longest_loss_streak", "longest loss streak")]
RETURN_KEYS = [("start_equity", "start equity"), ("final_equity", "final equity"),
               ("total_return_pct", "total return %"), ("annualized_return_pct", "annualised return %"),
               ("sharpe", "Sharpe"), ("sortino", "Sortino"), ("days", "venue days"), ("elapsed_days", "days trading")]
DD_KEYS = [("max_drawdown_pct", "max drawdown %"), ("max_drawdown_usd", "max drawdown $"), ("peak_at", "peak"),
           ("trough_at", "trough"), ("recovered", "recovered"), ("recovered_at", "recovered at"), ("max_drawdown_duration_s", "duration (s)"),
           ("longest_underwater_s", "longest under water (s)")]


AXIS = {"volatility": "vol", "trend": "trend"}
GROUP_HEAD = ["trades", "win rate %", "average win", "average loss", "profit factor", "expectancy", "net P&L"]


def _groups(title: str, label: str, groups: dict[str, dict[str, Any]]) -> str:
    """A breakdown (docs/metrics.md): one row per group, a group without trades included."""
    return f"<h2>{escape(title)}</h2>" + _table([label, *GROUP_HEAD], [
        [escape(g), d["trades"], _v(d["win_rate_pct"]), _v(d["avg_win"]), _v(d["avg_loss"]), _v(d["profit_factor"]),
         _v(d["expectancy"]), _v(d["net_pnl"])] for g, d in groups.items()])


def render(rep: dict[str, Any], m: Metrics) -> str:
    met = rep["metrics"]
    per = rep["period"]
    title = f"tradeconsole {rep['kind']} report: {rep['profile']}"
    head = (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>")
    sub = (f"<p class='muted'>stage {escape(str(rep['stage']))} · journal {escape(rep['journal'])} · "
           f"period {escape(str(per.get('since') or per.get('first_row')))} .. "
           f"{escape(str(per.get('until') or per.get('last_row')))}</p>")
    parts = [head, sub]
    rd = rep.get("readiness")
    if rd:
        cls = "go" if rd["verdict"] == "GO" else "nogo"
        parts.append(f"<h2>Readiness: stage {escape(rd['stage'])}</h2><p class='{cls}'>{escape(rd['verdict'])} "
                     f"({rd['passed']}/{rd['total']} criteria)</p>")
        parts.append(_table(["criterion", "measured", "threshold", "result", "detail"], [
            [escape(c["label"]), escape(_v(c["measured"])), escape(c["threshold"]),
             f"<span class='{'pass' if c['passed'] else 'fail'}'>{'PASS' if c['passed'] else 'FAIL'}</span>",
             escape(c["detail"])] for c in rd["criteria"]], text_last=True))
    curve = m.curve
    times = [p.ts for p in curve]
    eq = [float(p.value) for p in curve]
    peak, dds = float(m.capital), []
    for v in eq:
        peak = max(peak, v)
        dds.append(-(peak - v) / peak * 100 if peak > 0 else 0.0)
    parts.append("<h2>Charts</h2>")
    parts.append(svg.line("Equity", times, eq))
    parts.append(svg.line("Drawdown (%)", times, dds, color=svg.DOWN, area=True))
    parts.append(svg.histogram("P&L per closed trade", [float(t.net) for t in m.closed_trades]))
    syms = sorted(met["per_symbol"])
    parts.append(svg.bars("Net P&L by symbol", syms, [float(met["per_symbol"][s]["net_pnl"]) for s in syms]))
    # Every regime is listed even without trades; with no trade at all the chart says so instead.
    regimes = [(f"{AXIS[axis]} {g}", float(d["net_pnl"])) for axis, groups in met["per_regime"].items()
               for g, d in groups.items()] if m.closed_trades else []
    parts.append(svg.bars("Net P&L by market regime at entry", [lab for lab, _ in regimes], [v for _, v in regimes]))
    parts.append("<h2>Trades</h2>" + _kv(met["trades"], TRADE_KEYS))
    parts.append("<h2>Returns</h2>" + _kv(met["returns"], RETURN_KEYS))
    parts.append("<h2>Drawdown</h2>" + _kv(met["drawdown"], DD_KEYS))
    parts.append("<h2>By symbol</h2>" + _table(
        ["symbol", "trades", "win rate %", "net P&L", "fees", "profit factor", "expectancy"],
        [[escape(s), d["trades"], _v(d["win_rate_pct"]), _v(d["net_pnl"]), _v(d["fees"]), _v(d["profit_factor"]),
          _v(d["expectancy"])] for s, d in sorted(met["per_symbol"].items())]))
    parts.append(_groups("By strategy", "strategy", met["per_strategy"]))
    parts.append(_groups("By readiness at entry", "strategy readiness", met["per_readiness"]))
    parts.append(_groups("By market regime at entry: volatility", "volatility", met["per_regime"]["volatility"]))
    parts.append(_groups("By market regime at entry: trend", "trend", met["per_regime"]["trend"]))
    ex = met["execution"]
    parts.append("<h2>Execution</h2>" + _kv(ex, [
        ("entries_sent", "entries sent"), ("fill_rate_pct", "fill rate %"), ("limit_fill_rate_pct", "limit fill rate %"),
        ("slippage_measured", "fills with a signal price"), ("slippage_bps_mean", "slippage mean (bps)"),
        ("slippage_bps_worst", "slippage worst (bps)")]))
    review = rep.get("week") or rep.get("review")
    if review:
        parts.append("<h2>Review</h2>")
        for key, label in (("largest_gain", "largest gain"), ("largest_loss", "largest loss")):
            t = review[key]
            parts.append(f"<p>{label}: " + ("none" if t is None else
                         f"{escape(t['symbol'])} {escape(_v(t['net']))} ({escape(t['closed_at'] or '')}) — "
                         f"<span class='muted'>{escape(t['reason'])}</span>") + "</p>")
        inc = review["incidents"]
        parts.append(_table(["when", "type", "what"],
                            [[escape(str(b["ts"])), "breaker", escape(f"{b['breaker']} {b['from']} -> {b['to']}")]
                             for b in inc["breakers"]]
                            + [[escape(str(h["ts"])), "halt", escape(f"{h['source']}: {h['reason']}")] for h in inc["halts"]]
                            + [[escape(str(v["ts"])), "venue", escape(v["message"])] for v in inc["venue_errors"]],
                            left=2, text_last=True))
        bare = review["positions_without_stop"]
        parts.append(f"<p>positions without a stop: {bare['count']} (stop refusals {bare['stop_refused_alerts']})</p>")
    if rep.get("notes"):
        parts.append("<h2>Notes</h2>" + _table(
            ["when", "about", "text"],
            [[escape(str(n["ts"])), escape(n["about"] if not n["ref"] else f"{n['about']} {n['ref']}"),
              escape(n["text"])] for n in rep["notes"]], left=2, text_last=True))
    mc = rep.get("monte_carlo")
    if mc and mc.get("max_drawdown_pct"):
        parts.append("<h2>Monte Carlo</h2>" + _table(["quantity", "value"], [
            ["paths x trades", f"{mc['resamples']:,} x {mc['horizon_trades']:,}"],
            [f"P(drawdown >= {mc['stop_pct']:g} %, the stop)", _v(mc["p_hit_drawdown_stop"])],
            [f"P(down {mc['loss_pct']:g} % at some point)", _v(mc["p_loss_pct"])],
            ["median max drawdown %", _v(mc["max_drawdown_pct"]["p50"])],
            ["95th pct max drawdown %", _v(mc["max_drawdown_pct"]["p95"])]]))
    if rep["trades"]:
        parts.append("<h2>Closed trades</h2>" + _table(
            ["symbol", "opened", "closed", "net", "fees", "stop", "readiness", "volatility", "trend", "reason"],
            [[escape(t["symbol"]), escape(_when(t["opened_at"])), escape(_when(t["closed_at"])), _v(t["net"]), _v(t["fees"]),
              "yes" if t["stop_covered"] else "no", escape(t["readiness"]), escape(t["volatility"]), escape(t["trend"]),
              f"<span class='muted'>{escape(t['reason'])}</span>"]
             for t in rep["trades"][-200:]], text_last=True))
    parts.append("</body></html>")
    return "\n".join(parts)
