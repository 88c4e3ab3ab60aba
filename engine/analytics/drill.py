"""The operator drill: prove, on a real Engine and the paper broker, that halt and close-all work.

Steps, each timed: get quotes; place a resting limit entry and a small market entry through the
risk gate (the market one opens a position, which must get its protective stop); halt and check
that every entry order was cancelled while the position's stop stayed; close all and check that
nothing is left open; audit the drill's journal (every order that reached the broker has a gate
decision). The drill trades in a scratch journal of its own, so its halt and its orders never
count as incidents or trades of the profile; only the `drill` row (pass/fail and timings) goes
into the profile's journal.

Paper and testnet profiles only: the caller refuses live ones.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from engine.models import Order, OrderPurpose, OrderStatus, OrderType, Side
from engine.strategy.base import Strategy

SETTLE_STEP = 1.0  # simulated seconds per step while waiting for the paper broker
SETTLE_LIMIT = 30.0


class _Quiet(Strategy):
    """The profile's strategy, heard but not obeyed: it keeps its readiness (the gate asks for
    it) but its signals are dropped, so only the drill's own orders trade."""

    name = "drill"

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner

    def on_quote(self, quote, position_qty):  # type: ignore[override]
        self.inner.on_quote(quote, position_qty)  # its signal, if any, is dropped

    def readiness(self, symbol: str) -> str:
        return self.inner.readiness(symbol)


@dataclass
class Step:
    name: str
    ok: bool = False
    ms: float = 0.0
    detail: str = ""


@dataclass
class DrillResult:
    passed: bool
    steps: list[Step] = field(default_factory=list)
    journal: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "journal": self.journal, "total_ms": round(sum(s.ms for s in self.steps), 3),
                "steps": [{"name": s.name, "ok": s.ok, "ms": round(s.ms, 3), "detail": s.detail} for s in self.steps]}


def drill_profile(profile: Any, journal: str | Path) -> Any:
    from engine.profile import Profile

    data = profile.model_dump(mode="json")
    data["approval"] = {**data["approval"], "required": False}
    if data["feed"]["kind"] != "sim":  # the paper broker needs a market; a replay may be cold
        data["feed"] = {**data["feed"], "kind": "sim", "csv_path": None}
    # The drill runs on the paper broker whatever venue the profile trades (a testnet profile's
    # drill must not place orders at the testnet).
    data["mode"] = "paper"
    data["venue"] = {**data["venue"], "name": "paper", "base_url": None, "data_url": None}
    data["feed"]["speed"] = 0
    data["journal"] = {"path": str(journal)}
    data["logging"] = {**data["logging"], "path": str(Path(journal).with_suffix(".log"))}
    return Profile.model_validate(data)


def _order(engine: Any, symbol: str, type_: OrderType, notional: Decimal, offset_pct: Decimal) -> Order:
    q = engine.quotes[symbol]
    price = q.bid * (1 - offset_pct / 100)
    qty = (notional / q.ask).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
    stop = (q.bid * (1 - engine.profile.risk.stop_loss_default_pct / 100)).quantize(Decimal("0.01"))
    return Order(engine.orders.new_id(), symbol, Side.BUY, type_, qty, OrderPurpose.ENTRY, engine.clock.now(),
                 limit_price=price.quantize(Decimal("0.01")) if type_ is OrderType.LIMIT else None,
                 protective_stop=stop, reason="drill")


def _notional(profile: Any) -> Decimal:
    """Small: twice the smallest order worth sending, within the stage's position cap."""
    n = max(profile.sizing.min_order_usd * 2, Decimal(20))
    cap = profile.stage_limits().max_position_usd
    if cap is not None:
        n = min(n, cap * Decimal("0.9"))
    return min(n, profile.sizing.max_order_usd)


async def _settle(engine: Any, done) -> bool:
    spent = 0.0
    while not done() and spent < SETTLE_LIMIT:
        await engine.run(duration=SETTLE_STEP)
        spent += SETTLE_STEP
    return bool(done())


async def run_drill(profile: Any, journal: str | Path, seed: int | None = None) -> DrillResult:
    from engine.engine import Engine

    res = DrillResult(False, journal=str(journal))
    engine = await Engine.open(drill_profile(profile, journal), seed=seed, speed=0.0)
    engine.strategy = _Quiet(engine.strategy)

    async def step(name: str, coro) -> bool:
        s = Step(name)
        res.steps.append(s)
        t0 = time.perf_counter()
        try:
            s.ok, s.detail = await coro
        except Exception as exc:  # noqa: BLE001 - a drill reports what broke, it does not crash
            s.ok, s.detail = False, f"{type(exc).__name__}: {exc}"
        s.ms = (time.perf_counter() - t0) * 1000
        return s.ok

    state: dict[str, Any] = {}

    async def quotes():
        await engine.run(duration=5)
        syms = [s for s in profile.symbols if s in engine.quotes]
        state["symbols"] = syms
        return bool(syms), f"quotes for {', '.join(syms) or 'nothing'}"

    async def place():
        syms = state["symbols"]
        notional = _notional(engine.profile)
        limit = _order(engine, syms[0], OrderType.LIMIT, notional, Decimal(1))  # rests 1 % under the bid
        market = _order(engine, syms[-1] if len(syms) > 1 else syms[0], OrderType.MARKET, notional, Decimal(0))
        for o in (limit, market):
            if not await engine.orders.send(o, "operator"):
                return False, f"{o.symbol} {o.type.value} refused: {o.reason}"
        state["limit"], state["market"] = limit, market
        filled = await _settle(engine, lambda: market.status is OrderStatus.FILLED
                               and engine.orders.stop_order(market.symbol) is not None)
        stop = engine.orders.stop_order(market.symbol)
        if not filled or stop is None:
            return False, f"market entry {market.status.value}; stop {'placed' if stop else 'missing'}"
        if limit.client_order_id not in engine.orders.working:
            return False, f"limit entry not resting ({limit.status.value})"
        state["stop"] = stop
        return True, (f"limit {limit.symbol} {limit.quantity} @ {limit.limit_price} resting; market {market.symbol} "
                      f"{market.quantity} filled, stop {stop.stop_price}")

    async def halt():
        await engine.halt("drill", "operator drill")
        limit, stop = state["limit"], state["stop"]
        entries = [o for o in engine.orders.working.values() if o.purpose is OrderPurpose.ENTRY]
        ok = (engine.state.value == "halted" and limit.status is OrderStatus.CANCELLED and not entries
              and stop.client_order_id in engine.orders.working and not engine.cancels_outstanding)
        return ok, (f"state {engine.state.value}; limit {limit.status.value}; entries working {len(entries)}; "
                    f"stop {'kept' if stop.client_order_id in engine.orders.working else 'GONE'}")

    async def close_all():
        await engine.close_all("drill")
        flat = await _settle(engine, lambda: not engine.portfolio.positions and not engine.orders.working)
        return flat, (f"positions {len(engine.portfolio.positions)}, working orders {len(engine.orders.working)}")

    async def audit():
        await engine.journal.flush()
        decided = {r.ref for r in await engine.journal.rows(["decision"])}
        sent = {r.ref for r in await engine.journal.rows(["order"]) if r.data.get("status") == "submitted"}
        missing = sorted(sent - decided)
        return not missing, f"{len(sent)} orders sent, each with a gate decision" if not missing else \
            f"sent without a decision: {', '.join(missing)}"

    try:
        for name, fn in (("quotes", quotes), ("place", place), ("halt", halt), ("close_all", close_all),
                         ("audit", audit)):
            if not await step(name, fn()):
                break
    finally:
        await asyncio.sleep(0)
        await engine.close()
    res.passed = len(res.steps) == 5 and all(s.ok for s in res.steps)
    return res
