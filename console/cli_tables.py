"""How the journal commands (console/cli_analytics.py) print on a terminal: rich tables of the
metrics, the readiness criteria, a backtest against paper and its walk-forward windows. With
--json the commands print the same dictionaries instead.
"""
from __future__ import annotations

from typing import Any


def cell(x: Any, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, str):
        if x in ("inf", "-inf"):
            return x
        try:
            return f"{float(x):,.{digits}f}"
        except ValueError:
            return x
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def terminal():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, width=max(100, Console().width))


def kv_table(title: str, rows: list[tuple[str, Any]]):
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    for k, v in rows:
        t.add_row(k, cell(v))
    return t


def metrics_tables(m: dict[str, Any], title: str = "") -> list:
    from rich.table import Table

    t, r, d, ex = m["trades"], m["returns"], m["drawdown"], m["execution"]
    out = [kv_table(f"{title}trades", [
        ("closed trades", t["trades"]), ("win rate %", t["win_rate_pct"]), ("average win", t["avg_win"]),
        ("average loss", t["avg_loss"]), ("profit factor", t["profit_factor"]), ("expectancy", t["expectancy"]),
        ("net P&L", t["net_pnl"]), ("fees", t["fees"]), ("fee drag %", t["fee_drag_pct"]),
        ("largest loss", t["largest_loss"]), ("largest loss % capital", t["largest_loss_pct_of_capital"]),
        ("win / loss streak", f"{t['longest_win_streak']} / {t['longest_loss_streak']}")]),
        kv_table(f"{title}returns and risk", [
            ("start equity", r["start_equity"]), ("final equity", r["final_equity"]),
            ("total return %", r["total_return_pct"]), ("annualised return %", r["annualized_return_pct"]),
            ("Sharpe", r["sharpe"]), ("Sortino", r["sortino"]), ("days trading", r["elapsed_days"]),
            ("max drawdown %", d["max_drawdown_pct"]), ("drawdown recovered", d["recovered"]),
            ("longest under water h", d["longest_underwater_s"] / 3600),
            ("entry fill rate %", ex["fill_rate_pct"]), ("slippage bps (mean)", ex["slippage_bps_mean"])])]
    if m["per_symbol"]:
        s = Table(title=f"{title}by symbol", title_justify="left")
        for col in ("symbol", "trades", "win rate %", "net P&L", "fees", "profit factor"):
            s.add_column(col, justify="left" if col == "symbol" else "right")
        for sym, v in m["per_symbol"].items():
            s.add_row(sym, cell(v["trades"]), cell(v["win_rate_pct"]), cell(v["net_pnl"]), cell(v["fees"]),
                      cell(v["profit_factor"]))
        out.append(s)
    from .cli_breakdowns import breakdown_tables

    return out + breakdown_tables(m, title, cell)


def print_readiness(rep: dict[str, Any]) -> None:
    from rich.table import Table

    c = terminal()
    t = Table(title=f"readiness: profile {rep['profile']}, stage {rep['stage']}", title_justify="left")
    for col in ("criterion", "measured", "threshold", "result", "detail"):
        t.add_column(col, justify="right" if col in ("measured",) else "left")
    for cr in rep["criteria"]:
        t.add_row(cr["label"], cell(cr["measured"]), cr["threshold"],
                  "[green]PASS[/]" if cr["passed"] else "[red]FAIL[/]", cr["detail"])
    c.print(t)
    colour = "green" if rep["verdict"] == "GO" else "red"
    c.print(f"[bold {colour}]{rep['verdict']}[/]  {rep['passed']}/{rep['total']} criteria pass  (journal {rep['journal']})")


def print_vs_paper(c, vs: dict[str, Any] | None) -> None:
    from rich.table import Table

    if vs is None:
        c.print("backtest vs paper: no paper journal for this profile yet")
        return
    t = Table(title=f"backtest vs paper (flagged: paper worse by more than {vs['factor']} of the backtest)",
              title_justify="left")
    for col in ("metric", "backtest", "paper", "better", "flag"):
        t.add_column(col, justify="left" if col in ("metric", "better", "flag") else "right")
    for r in vs["rows"]:
        t.add_row(r["metric"], cell(r["backtest"]), cell(r["paper"]), r["better"], "[red]DIVERGES[/]" if r["flagged"] else "")
    c.print(t)


def print_windows(c, windows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    t = Table(title="walk-forward: out-of-sample per window (in-sample in brackets)", title_justify="left")
    for col in ("#", "out of sample", "trades", "win rate %", "profit factor", "net P&L", "return %", "max DD %"):
        t.add_column(col, justify="left" if col == "out of sample" else "right")
    for w in windows:
        o, i = w["oos"], w["is"]
        t.add_row(str(w["window"]), f"{w['out_of_sample'][0][5:16]} .. {w['out_of_sample'][1][5:16]}",
                  f"{o['trades']} ({i['trades']})", f"{cell(o['win_rate_pct'])} ({cell(i['win_rate_pct'])})",
                  f"{cell(o['profit_factor'])} ({cell(i['profit_factor'])})", f"{cell(o['net_pnl'])} ({cell(i['net_pnl'])})",
                  f"{cell(o['return_pct'])} ({cell(i['return_pct'])})", cell(o["max_drawdown_pct"]))
    c.print(t)
