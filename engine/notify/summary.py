"""The daily summary at the venue's day close, and the heartbeat for a dead-man's switch.

Day close is read off the engine, not a wall timer: the portfolio moves its day baseline in the
same loop step that the engine clock crosses midnight in the venue's time zone, so a simulated
run gets its summary at simulated midnight and the figures are the day's own (the new baseline
is the old day's closing equity).
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Callable

from ..money import ZERO, fmt_usd
from ..tracking import TradeLog
from .endpoint import Endpoint

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("tradeconsole.notify")

STALL_FLOOR_SECONDS = 300.0  # a slow simulation (speed << 1) may go minutes between batches


class DailySummary:
    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self._day: datetime | None = None
        self._baseline = ZERO
        self._breaker_seq = 0

    async def prime(self) -> None:
        """Note where the journal's breaker rows are, so a summary reads only its own day's."""
        last = await self.engine.journal.last(["breaker"])
        self._breaker_seq = last.seq if last is not None else 0
        self._observe()

    def _observe(self) -> None:
        p = self.engine.portfolio
        self._day, self._baseline = p.day_started, p.day_start_equity

    def crossed(self) -> bool:
        day = self.engine.portfolio.day_started
        if self._day is None:
            if day is not None:  # the engine's first batch set the first day: not a close
                self._observe()
            return False
        return day is not None and day > self._day

    async def compose(self) -> tuple[str, datetime]:
        """The summary of the day that just closed, and the moment it closed (engine time)."""
        e = self.engine
        p = e.portfolio
        closed_day, baseline = self._day, self._baseline
        assert closed_day is not None and p.day_started is not None
        close_equity = p.day_start_equity  # set at the roll: equity as the old day ended
        pnl = close_equity - baseline
        pct = (pnl / baseline * 100).quantize(Decimal("0.01")) if baseline > 0 else ZERO
        entries = e.trades.entries
        trades = TradeLog.count_since(entries, closed_day) - TradeLog.count_since(entries, p.day_started)
        states = await self._breaker_states(p.day_started)
        raised = [f"{name} {state}" for name, state in states.items() if state != "armed"]
        breakers = ", ".join(raised) + "; others armed" if raised else "all armed"
        sign = "+" if pnl > 0 else ""
        span = closed_day.astimezone(p.tz).date().isoformat()
        if (p.day_started - closed_day).days > 1:
            span += f" to {(p.day_started.astimezone(p.tz).date()).isoformat()}"
        text = (f"day {span} closed ({p.tz.key}): equity {fmt_usd(close_equity)}, "
                f"P&L {sign}{fmt_usd(pnl)} ({sign}{pct}%), trades {trades}, breakers: {breakers}")
        self._observe()
        return text, p.day_started.astimezone(timezone.utc)

    async def _breaker_states(self, day_start: datetime) -> dict[str, str]:
        """State of each breaker at the close: the day roll already reset the day breakers, and
        their journal reset rows hold what they were."""
        e = self.engine
        states = {b.name: b.state.value for b in e.breakers}
        rows = await e.journal.rows(["breaker"], after_seq=self._breaker_seq)
        if rows:
            self._breaker_seq = rows[-1].seq
        for r in rows:
            if r.data.get("reset") and r.ref in states and datetime.fromisoformat(r.ts) >= day_start:
                states[r.ref] = str(r.data.get("old", states[r.ref]))
        return states


def stall_seconds(interval: float) -> float:
    """How long the engine clock may stand still, while the run is said to be running, before the
    engine counts as hung: a simulated clock moves with every batch, a wall clock always moves."""
    return max(5 * interval, STALL_FLOOR_SECONDS)


def _dead(engine: "Engine", stalled_for: float, interval: float) -> str:
    """Why the engine is not alive ('' when it is). Not yet started counts as alive: the switch
    should hear from a process that is starting (warm-up, first paint)."""
    state = getattr(engine, "run_state", "idle")
    if state == "failed":
        return f"the engine's run ended with an error ({engine.run_error})"
    if state == "stopped":
        return "the engine's run ended (feed ended or engine stopped)"
    if state == "running" and stalled_for > stall_seconds(interval):
        return f"engine time has not moved for {stalled_for:.0f} s"
    return ""


async def heartbeat(endpoint: Endpoint, interval: float, engine: "Engine",
                    journal: Callable[[str, dict], None], publish: Callable[..., None],
                    wall: Callable[[], float] = time.monotonic) -> None:
    """Ping `endpoint` now and every `interval` wall seconds while the engine is alive. Wall time
    on purpose: the switch on the other end watches the real clock, and a paused simulation is
    still a live process.

    A dead-man's switch hears silence, not words: once the engine's run has ended (an error, the
    feed's end, a stop) or its clock has stood still past `stall_seconds`, the pings stop, so the
    switch fires; one `stopped` row and a warning say why here. A pinged "ENGINE STOPPED" would
    reset most switches (any request counts), so none is sent. Pings resume if the engine moves
    again. A loop that stops turning stops them too, which is what the switch is there to see."""
    failing = False
    silent = ""
    seen, moved = engine.clock.now(), wall()
    while True:
        now = engine.clock.now()
        if now != seen:
            seen, moved = now, wall()
        why = _dead(engine, wall() - moved, interval)
        if why:
            if not silent:
                log.error("heartbeat to %s stopped: %s", endpoint.label, why)
                journal("heartbeat", {"result": "stopped", "reason": why, "endpoint": endpoint.label,
                                      "kind": "heartbeat"})
                if engine.run_state != "failed":  # a failed run raised its own critical alert
                    publish("warning", "heartbeat_stopped", f"heartbeat to {endpoint.label} stopped: {why}; "
                            "the dead-man's switch will fire", channel="heartbeat")
            silent = why
            await asyncio.sleep(min(interval, STALL_FLOOR_SECONDS / 10))
            continue
        if silent:
            silent = ""
            publish("info", "heartbeat_recovered", f"heartbeat to {endpoint.label} resumed: the engine moves again",
                    channel="heartbeat")
        body = (f"tradeconsole {engine.profile.name} alive; engine time "
                f"{now.astimezone(engine.portfolio.tz):%Y-%m-%d %H:%M:%S %Z}; trading {engine.state.value}")
        out = await endpoint.send(f"tradeconsole {engine.profile.name}: alive", body, "info")
        journal("heartbeat", {"result": "ok" if out.ok else "failed", "attempt": 1, "of": 1,
                              "error": out.error, "endpoint": endpoint.label, "kind": "heartbeat"})
        if not out.ok and not failing:
            failing = True
            log.warning("heartbeat to %s failed: %s", endpoint.label, out.error)
            publish("warning", "heartbeat_failed", f"heartbeat to {endpoint.label} failed: {out.error}",
                    channel="heartbeat")
        elif out.ok and failing:
            failing = False
            publish("info", "heartbeat_recovered", f"heartbeat to {endpoint.label} delivers again",
                    channel="heartbeat")
        await asyncio.sleep(interval)
