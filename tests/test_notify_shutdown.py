"""What the alert channels hear when the engine stops: a run that dies raises one critical alert
and silences the dead-man's switch; a critical alert in flight at shutdown gets a bounded grace,
and what still does not go out is journaled undelivered and sent again at the next start."""
from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from conftest import build_profile
from engine.engine import Engine
from engine.notify import service as notify
from engine.notify import summary
from engine.notify.endpoint import Outcome
from test_notify_support import FakeWall, http_receiver, wait_async, wait_for  # noqa: F401 - fixtures

pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

CRITICAL_HOOK = {"channels": {"phone": {"url_env": "TC_HOOK", "severities": ["critical"], "timeout_seconds": 20}},
                 "daily_summary": False}
CLOSE_BOUND_SECONDS = 7.0  # the critical grace (5 s) and some slack for two shared cores


def _die(eng: Engine, text: str) -> None:
    async def on_batch(batch) -> None:
        raise RuntimeError(text)
    eng.on_batch = on_batch


async def test_a_run_that_dies_raises_one_critical_alert_on_the_bus_and_at_the_channel(tmp_path, http_receiver):
    rx = http_receiver()
    eng = await Engine.open(build_profile(tmp_path, alerts=CRITICAL_HOOK), seed=3)
    eng.services.append(await notify.start(eng, environ={"TC_HOOK": rx.url()}))
    try:
        _die(eng, "database is locked\nTraceback noise on a second line")
        with pytest.raises(RuntimeError):
            await eng.run(600)
        assert eng.run_state == "failed"
        [pinned] = eng.alerts.unacknowledged()
        assert pinned.kind == "engine_failed"
        assert pinned.message.startswith("ENGINE STOPPED with an error: RuntimeError: database is locked;")
        assert "second line" not in pinned.message
        await wait_for(lambda: any("engine_failed" in t for t in rx.titles()), what="the channel hears it")
        assert any(m.startswith("ENGINE STOPPED with an error") for m in rx.messages())
    finally:
        await eng.close()
    rows = await _rows(tmp_path, ["alert"])
    assert [r.ref for r in rows if r.data["severity"] == "critical"] == ["engine_failed"]


async def test_a_run_that_ends_normally_raises_nothing(tmp_path, http_receiver):
    rx = http_receiver()
    eng = await Engine.open(build_profile(tmp_path, alerts=CRITICAL_HOOK), seed=3)
    eng.services.append(await notify.start(eng, environ={"TC_HOOK": rx.url()}))
    try:
        await eng.run(60)
        assert eng.run_state == "stopped"
        assert not [a for a in eng.alerts.recent() if a.kind == "engine_failed"]
    finally:
        await eng.close()


class _Beat:
    label = "json://127.0.0.1"

    def __init__(self) -> None:
        self.bodies: list[str] = []

    async def send(self, title: str, body: str, severity: str) -> Outcome:
        self.bodies.append(body)
        return Outcome(True, "")


async def _heartbeat(eng: Engine, wall=time.monotonic) -> tuple[_Beat, list, list, asyncio.Task]:
    beat, rows, alerts = _Beat(), [], []
    task = asyncio.get_running_loop().create_task(summary.heartbeat(
        beat, 0.05, eng, lambda ch, d: rows.append(d), lambda *a, **k: alerts.append(a), wall=wall))
    await wait_for(lambda: len(beat.bodies) >= 2, what="alive pings")
    return beat, rows, alerts, task


async def test_the_heartbeat_goes_silent_once_the_run_has_died(tmp_path):
    eng = await Engine.open(build_profile(tmp_path), seed=3)
    try:
        beat, rows, alerts, task = await _heartbeat(eng)
        assert beat.bodies[0].startswith("tradeconsole paper alive")
        _die(eng, "database is locked")
        with pytest.raises(RuntimeError):
            await eng.run(600)
        await wait_for(lambda: any(r["result"] == "stopped" for r in rows), what="stopped row")
        sent = len(beat.bodies)
        await asyncio.sleep(0.5)  # ten intervals: not one more ping
        task.cancel()
        assert len(beat.bodies) == sent
        [row] = [r for r in rows if r["result"] == "stopped"]
        assert "ended with an error (RuntimeError: database is locked)" in row["reason"]
        assert alerts == []  # the engine's own critical alert says it; no second warning
    finally:
        await eng.close()


async def test_the_heartbeat_goes_silent_when_engine_time_stands_still(tmp_path):
    eng = await Engine.open(build_profile(tmp_path), seed=3)
    wall = FakeWall()
    try:
        eng.run_state = "running"  # a run hung inside one batch: the loop turns, the clock does not
        beat, rows, alerts, task = await _heartbeat(eng, wall)
        wall.t += summary.stall_seconds(0.05) + 1
        await wait_for(lambda: any(r["result"] == "stopped" for r in rows), what="stopped row")
        sent = len(beat.bodies)
        await asyncio.sleep(0.3)
        assert len(beat.bodies) == sent
        assert [a[1] for a in alerts] == ["heartbeat_stopped"]
        eng.clock.set(eng.clock.now() + timedelta(seconds=1))  # it moves again: so do the pings
        await wait_for(lambda: len(beat.bodies) > sent, what="pings resume")
        task.cancel()
        assert [a[1] for a in alerts] == ["heartbeat_stopped", "heartbeat_recovered"]
    finally:
        await eng.close()


async def test_a_critical_alert_on_a_slow_channel_is_delivered_within_the_close_grace(tmp_path, http_receiver):
    rx = http_receiver()
    rx.mode, rx.hang_seconds = "slow", 2.5  # a slow SMTP relay: longer than STUCK_SECONDS, well in its timeout
    eng = await Engine.open(build_profile(tmp_path, alerts=CRITICAL_HOOK), seed=3)
    eng.services.append(await notify.start(eng, environ={"TC_HOOK": rx.url()}))
    eng.alerts.publish("critical", "halt", "HALTED by signal: SIGTERM received", eng.clock.now())
    await wait_for(lambda: rx.hits == 1, what="the attempt under way")
    await asyncio.sleep(1.2)
    began = time.monotonic()
    await eng.close()
    assert time.monotonic() - began < CLOSE_BOUND_SECONDS
    assert rx.messages() and rx.messages()[0].startswith("HALTED by signal")
    rows = await _rows(tmp_path, ["delivery"])
    assert [r.data["result"] for r in rows] == ["ok"]


async def test_a_critical_alert_cut_off_at_close_is_journaled_and_sent_again_at_the_next_start(tmp_path, http_receiver):
    rx = http_receiver()
    rx.mode, rx.hang_seconds = "hang", 30
    profile = build_profile(tmp_path, alerts=CRITICAL_HOOK)
    eng = await Engine.open(profile, seed=3)
    eng.services.append(await notify.start(eng, environ={"TC_HOOK": rx.url()}))
    eng.alerts.publish("critical", "halt", "HALTED by breaker drawdown_stop", eng.clock.now())
    await wait_for(lambda: rx.hits == 1, what="the attempt under way")
    began = time.monotonic()
    await eng.close()
    assert time.monotonic() - began < CLOSE_BOUND_SECONDS  # bounded, never hangs
    [row] = [r for r in await _rows(tmp_path, ["delivery"]) if r.data["result"] == "dropped"]
    assert row.ref == "phone" and row.data["reason"] == "shutdown" and row.data["messages"] == 1
    assert [u["text"] for u in row.data["undelivered"]] == ["HALTED by breaker drawdown_stop"]

    rx.stop()
    rx.mode = "ok"
    rx.start()
    for _ in range(2):  # the second start finds it delivered: nothing to send again
        eng = await Engine.open(profile, seed=3)
        eng.services.append(await notify.start(eng, environ={"TC_HOOK": rx.url()}))
        try:
            await wait_for(lambda: len(rx.messages()) == 1, what="sent again")
            await asyncio.sleep(0.3)
            assert [a.message for a in eng.alerts.unacknowledged()] == ["HALTED by breaker drawdown_stop"]
        finally:
            await eng.close()
    assert rx.messages()[0].startswith("(not delivered before the last shutdown; sent again) HALTED by breaker")


async def _rows(tmp_path, kinds):
    from engine.journal import Journal
    j = await Journal.open(tmp_path / "j.sqlite")
    try:
        return await j.rows(kinds)
    finally:
        await j.close()
