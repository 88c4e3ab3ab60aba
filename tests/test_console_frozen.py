"""A frozen engine for screen tests: the console's whole view of an engine is `snapshot()` plus a
few commands, so a fixed `EngineSnapshot` gives a screen that is identical on every run (no clock,
no market, no journal). The SVG snapshot tests (test_console_snapshots.py) and the layout tests
drive the real app with it; this module also checks that the frozen states say what they claim.
"""
from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

from engine.profile import Profile
from engine.snapshot import (
    AlertView, ApprovalView, BreakerView, CapitalView, CheckView, EngineSnapshot, OrderView, PauseView,
    PerformanceView, PositionView,
)
from engine.snapshot_build import drawdown_curve

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)

LOG_LINES = [
    "2026-01-05 14:21:10 INFO    tradeconsole.engine: session 3 started: profile paper, mode paper",
    "2026-01-05 14:22:00 INFO    tradeconsole.engine: alert info approval_needed: SOL/USD buy 6.21 awaits approval",
    "2026-01-05 14:24:49 INFO    tradeconsole.orders: fill tc9505-3-1 SOL/USD buy 6.211951 @ 160.89 fee 2.00",
    "2026-01-05 14:26:02 WARNING tradeconsole.engine: alert warning breaker: daily_loss warning",
    "2026-01-05 14:27:40 DEBUG   tradeconsole.orders: cancel tc9505-3-4 (stop replaced)",
    "2026-01-05 14:29:55 INFO    tradeconsole.engine: alert info approval_needed: LTC/USD buy 12.149192",
]


def _position(symbol: str, qty: str, avg: str, last: str, stop: str, cap: str = "1000") -> PositionView:
    q, a, px, s = D(qty), D(avg), D(last), D(stop)
    fees = (a + s) * q * D("0.002")
    return PositionView(symbol, "long", q, a, px, (px - a) * q, s, ((px - s) / px * 100).quantize(D("0.01")),
                        loss_at_stop=(a - s) * q + fees, loss_limit=D("101.20"), exposure=q * px,
                        exposure_cap=D(cap), stop_order_id=f"stop-{symbol}")


POSITIONS = (
    _position("BTC/USD", "0.017", "56310.50", "56420.00", "51800.00"),
    _position("ETH/USD", "0.3261", "3004.02", "2981.40", "2763.70"),
    _position("SOL/USD", "6.211951", "160.89", "162.77", "162.00"),  # stop above entry: profit locked
)
ORDERS = (
    OrderView("tc9505-3-9", "LTC/USD", "buy", "limit", "entry", D("12.149192"), D("0"), D("82.31"), "submitted"),
    OrderView("tc9505-3-2", "BTC/USD", "sell", "stop", "stop", D("0.017"), D("0"), D("51800.00"), "submitted"),
    OrderView("tc9505-3-6", "ETH/USD", "sell", "stop", "stop", D("0.3261"), D("0"), D("2763.70"), "submitted"),
    OrderView("tc9505-3-8", "SOL/USD", "sell", "stop", "stop", D("6.211951"), D("0"), D("162.00"), "submitted"),
)
CHECKS = (
    CheckView("trading_state", True, "state active, entry from strategy"),
    CheckView("symbol_paused", True, "ADA/USD not paused"),
    CheckView("spread", True, "spread 4.2 bps, max 50"),
    CheckView("stop_loss", True, "stop 0.4382 below entry 0.4763: 8.00% within 5-15%"),
    CheckView("min_edge", True, "edge 0.214, min 0.08"),
    CheckView("max_open_positions", True, "open after 4, max 5"),
    CheckView("position_size", True, "position 979.68, cap 1001.20; order 979.68, min 10"),
    CheckView("single_trade_loss", True, "loss at stop 82.21, cap 101.96"),
    CheckView("cash_reserve", True, "cash after 6012.40, reserve 2503.01 (25%)"),
    CheckView("daily_loss", True, "loss this day 62.00, limit 200.24"),
)
APPROVAL = ApprovalView("tc9505-3-11", "ADA/USD", "buy", D("2056.9"), D("0.4763"), D("0.4382"), D("979.70"),
                        "trend up vote +0.38 [10s:+0.14@0.46 30s:+0.01@0.43 120s:+0.92@0.50]",
                        "risk 1% of 10012.00 = 100.12 over stop distance 0.04 -> 2628.0; cap 981.18 -> 2056.9",
                        CHECKS, 1575.0)


def _breakers(daily: str = "armed", dd: str = "armed", losses: str = "armed") -> tuple[BreakerView, ...]:
    values = {"armed": ("12.00", "0.1"), "warning": ("124.00", "9.6"), "critical": ("171.00", "12.9"),
              "tripped": ("203.00", "15.2")}
    d_usd, d_pct = values[daily][0], values[dd][1]
    return (
        BreakerView("daily_loss", daily, D(d_usd), D("200.24"), f"daily loss       -${d_usd} / -$200.24"),
        BreakerView("weekly_loss", "armed", D("62"), D("1001"), "weekly loss      -$62.00 / -$1,001.20"),
        BreakerView("drawdown_pause", dd, D(d_pct), D("15"), f"drawdown pause   {d_pct}% / 15%"),
        BreakerView("drawdown_stop", "armed", D("0.6"), D("25"), "drawdown stop    0.6% / 25%"),
        BreakerView("consecutive_losses", losses, D(3 if losses == "warning" else 1), D(5),
                    f"consec. losses   {3 if losses == 'warning' else 1} / 5"),
        BreakerView("api_failures", "armed", D(0), D(5), "api failures     0 / 5"),
        BreakerView("stale_data", "armed", D(1), D(30), "stale data       1s / 30s"),
    )


ALERTS = (
    AlertView(9, T0 - timedelta(seconds=5), "info", "approval_needed", "ADA/USD buy 2056.9 awaits approval"),
    AlertView(8, T0 - timedelta(minutes=3), "warning", "breaker", "daily_loss warning: -$124.00 / -$200.24"),
    AlertView(7, T0 - timedelta(minutes=6), "info", "gate_refused", "LTC/USD buy refused: min_edge (edge 0.041)"),
    AlertView(5, T0 - timedelta(minutes=9), "info", "approval_needed", "SOL/USD buy 6.211951 awaits approval"),
)
CURVE = tuple(10000 + 40 * math.sin(i / 9) + i * 0.3 - (60 if 70 < i < 90 else 0) for i in range(120))


def frozen_snapshot(**changes) -> EngineSnapshot:
    base = EngineSnapshot(
        ts=T0, mode="paper", profile="paper", venue="paper", trading_state="active", halt_reason="",
        connected=True, equity=D("10012.04"), cash=D("6991.98"), realized_pnl=D("-4.63"),
        unrealized_pnl=D("16.67"), pnl_today=D("12.04"), pnl_week=D("-62.00"), fees=D("9.42"),
        equity_curve=CURVE, positions=POSITIONS, open_orders=ORDERS, approvals=(), breakers=_breakers(),
        alerts=ALERTS, counters={"ticks": 86400, "signals": 40, "orders": 9, "fills": 8},
        stage="paper", stage_started=T0 - timedelta(days=9), pnl_since_stage_start=D("212.40"),
        drawdown_curve=drawdown_curve(CURVE),
        capital=CapitalView(D("10012.04"), D("3020.06"), D("100000"), None, D("6991.98"), D("2503.01"), D(25)),
        performance=PerformanceView(14, 8, 6, D("57.14"), D("1.42"), D("48.20"), D("162.40"), D("114.20"),
                                    D("41.10"), D("-29.80"), D("0.31"), D("1.85"), (
                                        CheckView("trades", False, "14 closed, need 100"),
                                        CheckView("win_rate", True, "57.1%, target 45-60%"),
                                        CheckView("profit_factor", True, "1.42, min 1.3"),
                                        CheckView("max_drawdown", True, "1.85%, max 10%"))),
        paused=(), approval_required=True,
    )
    return replace(base, **changes)


SCENARIOS = {
    "paper": {},
    "halted": {"trading_state": "halted", "halt_reason": "operator halt (F12)",
               "open_orders": ORDERS[1:], "alerts": (
                   AlertView(10, T0, "critical", "halt", "HALTED by console: operator halt (F12)"), *ALERTS)},
    "approval": {"approvals": (APPROVAL,),
                 "paused": (PauseView("LTC/USD", "LTC/USD", "console"),)},
    "breakers": {"breakers": _breakers("critical", "warning", "warning"), "trading_state": "active", "alerts": (
        AlertView(11, T0, "critical", "breaker", "daily_loss critical: -$171.00 / -$200.24"),
        AlertView(10, T0 - timedelta(seconds=20), "warning", "breaker", "drawdown_pause warning: 9.6% / 15%"),
        *ALERTS)},
    "live": {"mode": "live", "profile": "live-micro", "venue": "alpaca", "stage": "micro",
             "approvals": (APPROVAL,),
             "capital": CapitalView(D("10012.04"), D("412.30"), D("100000"), D("500"), D("9599.74"),
                                    D("2503.01"), D(25))},
}


def frozen_profile(mode: str = "paper", **updates) -> Profile:
    # model_copy skips validation: a live profile needs a real venue the frozen engine never opens.
    base = Profile(symbols=["BTC/USD", "ETH/USD", "SOL/USD", "LTC/USD", "ADA/USD"])
    return base.model_copy(update={"mode": mode, **updates})


class FrozenEngine:
    """The engine as the console sees it, answering with one fixed snapshot. Commands are recorded,
    not executed: a test asks what the screen asked for."""

    def __init__(self, snap: EngineSnapshot, log_path: Path, profile: Profile | None = None) -> None:
        self.snap = snap
        self.profile = profile or frozen_profile(snap.mode, name=snap.profile)
        self.log_path = log_path
        self.calls: list[tuple] = []
        self.closed = False
        self._stop = asyncio.Event()

    def snapshot(self) -> EngineSnapshot:
        return self.snap

    async def run(self, duration: float | None = None) -> None:
        await self._stop.wait()

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        self.closed = True

    def exposure(self) -> tuple[int, int]:
        entries = sum(1 for o in self.snap.open_orders if o.purpose == "entry")
        return entries + len(self.snap.approvals), len(self.snap.positions)

    async def load_stage_history(self) -> None:
        self.calls.append(("load_stage_history",))


def write_log(tmp_path: Path) -> Path:
    path = tmp_path / "paper.log"
    path.write_text("\n".join(LOG_LINES) + "\n")
    return path


def frozen_engine(tmp_path: Path, scenario: str = "paper") -> FrozenEngine:
    return FrozenEngine(frozen_snapshot(**SCENARIOS[scenario]), write_log(tmp_path))


def test_frozen_scenarios_show_what_they_claim():
    s = {name: frozen_snapshot(**changes) for name, changes in SCENARIOS.items()}
    assert s["halted"].trading_state == "halted" and not s["paper"].approvals
    assert s["approval"].approvals and s["live"].mode == "live"
    assert {b.state for b in s["breakers"].breakers} >= {"warning", "critical"}
    # the SOL stop sits above its entry: the risk meter must show a locked-in profit, not a loss
    assert POSITIONS[2].loss_at_stop < 0
