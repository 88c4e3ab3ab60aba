"""The EMA trend strategy's readiness: entries start "forming" once its fastest timeframe is warm,
exits and "ready" wait for every timeframe, and the gate refuses forming entries unless the
profile allows them."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from conftest import LOOSE_RISK, build_profile
from engine.engine import Engine
from engine.models import Quote, Side
from engine.profile import Profile
from engine.strategy.ema_trend import EmaTrendStrategy

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
SYMBOL = "XYZ/USD"
TIMEFRAMES = [10, 30, 120]
WARMUP = 10  # bars: the fastest is warm after 100 s, the slowest after 1,200 s
SECONDS = 1_800


def rising(i: int) -> Decimal:
    """A steady climb (1 bp a second) with a small wobble, so bars move and votes are scored."""
    return Decimal(100 * math.exp(1e-4 * i) * (1 + 2e-4 * math.sin(i / 7))).quantize(Decimal("0.01"))


def quotes(seconds: int = SECONDS):
    for i in range(seconds):
        mid = rising(i)
        yield i, Quote(SYMBOL, T0 + timedelta(seconds=i), mid - Decimal("0.01"), mid + Decimal("0.01"),
                       Decimal(1000), Decimal(1000), mid)


def strategy() -> EmaTrendStrategy:
    p = Profile(strategy={"timeframes": TIMEFRAMES, "warmup_bars": WARMUP})
    return EmaTrendStrategy(p.strategy, p.risk)


def test_entries_start_forming_on_the_fastest_timeframe_and_turn_ready_with_the_slowest():
    strat = strategy()
    seen = []  # (second, readiness when it signalled, reason)
    states = {}
    for i, q in quotes():
        sig = strat.on_quote(q, Decimal(0))
        states[i] = strat.readiness(SYMBOL)
        if sig is not None:
            assert sig.side is Side.BUY and sig.stop_price < q.ask
            seen.append((i, strat.readiness(SYMBOL), sig.reason))
    fastest_warm = (WARMUP + 1) * TIMEFRAMES[0]  # a bar closes when the next one starts
    slowest_warm = (WARMUP + 1) * TIMEFRAMES[-1]
    assert seen and seen[0][0] >= fastest_warm - TIMEFRAMES[0]
    assert states[fastest_warm - 2 * TIMEFRAMES[0]] == "not_ready"
    assert states[fastest_warm + 1] == "forming" and states[slowest_warm - 2 * TIMEFRAMES[-1]] == "forming"
    assert states[slowest_warm + 1] == "ready"
    forming = [s for s in seen if s[1] == "forming"]
    ready = [s for s in seen if s[1] == "ready"]
    assert forming and ready, "the climb should signal in both phases"
    assert all("120s:forming" in reason for _, _, reason in forming)
    assert not any("forming" in reason for _, _, reason in ready)


def test_no_exit_while_forming():
    """Held short against a climb: the exit waits for every timeframe, then comes."""
    strat = strategy()
    exits = [(i, strat.readiness(SYMBOL)) for i, q in quotes()
             if strat.on_quote(q, Decimal(-1)) is not None]
    assert exits and all(state == "ready" for _, state in exits)


def _replay(tmp: Path, allowed: list[str]):
    lines = ["timestamp,symbol,bid,ask,bid_size,ask_size"]
    for i, q in quotes():
        lines.append(f"{q.ts.strftime('%Y-%m-%dT%H:%M:%SZ')},{SYMBOL},{q.bid},{q.ask},1000,1000")
    path = tmp / "climb.csv"
    path.write_text("\n".join(lines) + "\n")
    # Loose edge and confidence floors, so readiness is the check that decides.
    return build_profile(tmp, f"climb-{len(allowed)}", feed={"kind": "csv", "csv_path": str(path)}, symbols=[SYMBOL],
                         strategy={"timeframes": TIMEFRAMES, "warmup_bars": WARMUP}, approval={"required": False},
                         orders={"entry_type": "market"},
                         risk={**LOOSE_RISK, "min_edge": 0, "min_confidence": 0, "allowed_readiness": allowed})


async def _entries_while_forming(tmp: Path, allowed: list[str]) -> tuple[list, list]:
    eng = await Engine.open(_replay(tmp, allowed))
    try:
        await eng.run(duration=(WARMUP + 1) * TIMEFRAMES[-1] - 2 * TIMEFRAMES[-1])  # still forming
        decisions = [r.data for r in await eng.journal.rows(["decision"]) if r.data["purpose"] == "entry"]
        signals = [r.data for r in await eng.journal.rows(["signal"])]
    finally:
        await eng.close()
    return decisions, signals


async def test_the_gate_refuses_forming_entries_by_default(tmp_path):
    decisions, signals = await _entries_while_forming(tmp_path, ["ready"])
    assert signals and all(s["readiness"] == "forming" for s in signals)
    assert decisions and not any(d["approved"] for d in decisions)
    for d in decisions:
        assert d["failed"] == "readiness"
        check = next(c for c in d["checks"] if c["name"] == "readiness")
        assert check["values"] == {"state": "forming", "allowed": "ready"}


async def test_a_profile_that_allows_forming_trades_it(tmp_path):
    decisions, signals = await _entries_while_forming(tmp_path, ["ready", "forming"])
    assert signals and all(s["readiness"] == "forming" for s in signals)
    assert any(d["approved"] for d in decisions)
