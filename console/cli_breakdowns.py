"""Terminal tables of the metrics' breakdowns (docs/metrics.md): by strategy, by the strategy's
readiness at entry, and by the market regime at entry. Shared by `report` and `backtest`."""
from __future__ import annotations

from typing import Any, Callable

COLUMNS = ("trades", "win rate %", "avg win", "avg loss", "profit factor", "expectancy", "net P&L")


def _row(d: dict[str, Any], fmt: Callable[[Any], str]) -> list[str]:
    return [fmt(d["trades"]), fmt(d["win_rate_pct"]), fmt(d["avg_win"]), fmt(d["avg_loss"]),
            fmt(d["profit_factor"]), fmt(d["expectancy"]), fmt(d["net_pnl"])]


def _table(title: str, label: str, sections: list[tuple[str, dict[str, dict[str, Any]]]],
           fmt: Callable[[Any], str]):
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    t.add_column(label)
    for col in COLUMNS:
        t.add_column(col, justify="right")
    for i, (prefix, groups) in enumerate(sections):
        for j, (name, d) in enumerate(groups.items()):
            # A group without a trade is listed (it answers "how did we do when forming?": not at
            # all), dimmed so the eye goes to the rows with numbers.
            t.add_row(f"{prefix}{name}", *_row(d, fmt), style="dim" if not d["trades"] else None,
                      end_section=j == len(groups) - 1 and i < len(sections) - 1)
    return t


def breakdown_tables(m: dict[str, Any], title: str, fmt: Callable[[Any], str]) -> list:
    """By strategy, by readiness, by regime (volatility, then trend); none without a closed trade."""
    if not m["trades"]["trades"]:
        return []
    reg = m["per_regime"]
    return [
        _table(f"{title}by strategy", "strategy", [("", m["per_strategy"])], fmt),
        _table(f"{title}by strategy readiness at entry", "readiness", [("", m["per_readiness"])], fmt),
        _table(f"{title}by market regime at entry", "regime",
               [("vol ", reg["volatility"]), ("trend ", reg["trend"])], fmt),
    ]
