"""`tradeconsole run --headless`: the same engine, no screen, log lines on stdout, a summary."""
from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from .control.signals import policy_for
from .engine import Engine
from .money import fmt_usd


log = logging.getLogger("tradeconsole.engine")

# Headless, no key and no command answers an approval: every entry would wait out its timeout.
NO_ONE_TO_APPROVE = ("approval.required is on, and a headless run has no one to approve: every entry waits and "
                     "expires; run an approval-off profile (config/paper-auto.yaml) to trade unattended")


def summary_lines(e: Engine, sim_seconds: float) -> list[str]:
    p = e.portfolio
    c = e.counters
    s = e.snapshot()
    judged = c["approved"] + c["refused"]
    lines = [
        "",
        f"── tradeconsole headless summary ─ profile {e.profile.name} ({e.profile.mode}) ──",
        f"this session     {_duration(sim_seconds)} of simulated time   ({c['ticks']:,} quotes)",
        f"signals          {c['signals']:,}: {judged:,} entries judged (gate passed {c['approved']:,}, "
        f"refused {c['refused']:,}), {c['held_signals']:,} on a held position, "
        f"{c['skipped']:,} skipped (an entry already in flight in the symbol)",
        f"orders sent      {c['orders']:,}   fills {c['fills']:,}   approvals expired {c['expired']:,}   "
        f"still waiting at the end {c['approvals_closed']:,} (cancelled)",
        "account          (every session on this journal)",
        f"equity           {fmt_usd(p.equity)}   (start {fmt_usd(p.starting_cash)})",
        f"realized P&L     {fmt_usd(p.realized_pnl)}   unrealized {fmt_usd(p.unrealized_pnl)}   fees {fmt_usd(p.fees)}",
        f"closed trades    {len(p.closed_trades)}   wins {sum(1 for t in p.closed_trades if t > 0)}",
        f"open positions   {len(p.positions)}   working orders {len(e.orders.working)}",
        *(["dust             " + ", ".join(f"{d.symbol} {d.quantity:f} (~{fmt_usd(d.value)})" for d in s.dust)]
          if s.dust else []),
        f"trading state    {e.state.value}{(' — ' + e.halt_reason) if e.halt_reason else ''}",
        *([f"approval         {NO_ONE_TO_APPROVE}"] if e.profile.approval.required else []),
    ]
    for b in s.breakers:
        lines.append(f"breaker          {b.state:<8} {b.text}")
    lines.append(f"journal          {e.journal.path}")
    return lines


def _duration(seconds: float) -> str:
    """90 s -> "1m 30s", 2 h -> "2h 00m": the run's length as the operator gave it, not 0.03 h."""
    s = int(round(seconds))
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


async def run_headless(engine: Engine, duration: float | None) -> int:
    # SIGHUP/SIGTERM/SIGINT follow the profile's control section (engine/control/signals.py):
    # halt (entries cancelled, stops kept), journal committed, then this returns 0.
    policy = policy_for(engine, engine.stop)
    policy.install(asyncio.get_running_loop())
    if engine.profile.approval.required:
        log.warning(NO_ONE_TO_APPROVE)
    try:
        await engine.run(duration)
        # A signal's halt cancels entries in a task of its own: let it finish (bounded) first,
        # so the summary and the journal show the halt complete.
        await policy.settle()
        await asyncio.sleep(0)
        await engine.finish_run(engine.run_end)
        began = engine.trading_started or engine.clock.now()
        sim = (engine.clock.now() - began).total_seconds()
        try:
            print("\n".join(summary_lines(engine, sim)), flush=True)
        except OSError:
            pass  # stdout is gone (closed pipe, dead terminal): the journal and log have it all
    finally:
        # From here on a signal only logs: a halt racing close() would write to a closed journal.
        policy.stopping = True
        await policy.settle()
        try:
            await engine.close()
        finally:
            policy.uninstall()
    return 0


def parse_duration(text: str) -> float:
    """'90', '90s', '30m', '2h', '1d' -> seconds."""
    t = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    mult = 1
    if t and t[-1] in units:
        mult = units[t[-1]]
        t = t[:-1]
    try:
        value = Decimal(t)
    except Exception:
        raise ValueError(f"--duration: expected a number with an optional unit s/m/h/d (got {text!r})") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"--duration: must be a finite number > 0 (got {text!r})")
    seconds = value * mult
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"--duration: at most 3650d (got {text!r})")
    return float(seconds)


MAX_DURATION_SECONDS = 3650 * 86400
