"""Outbound alerts delivered for real: apprise to an SMTP server and a JSON webhook receiver on
127.0.0.1 (tests/test_notify_support.py), driven by a real engine and its alert bus.

Covers routing by severity and by kind, coalescing with a count, per-channel rate limits, retry
until a receiver comes back, the failure warning (once, never to the failing channel), secrets
kept out of the journal and the log, and a hanging channel leaving the trading path's pace alone.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import build_profile
from engine.engine import Engine
from engine.notify import service as notify
from test_notify_support import FakeWall, http_receiver, smtp_receiver, wait_async, wait_for  # noqa: F401 - fixtures

# apprise imports a module Python 3.13 drops; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

SECRET_PATH = "T0KENsecret42"
SECRET_PW = "S3cretPW"


async def open_with_alerts(tmp: Path, alerts: dict[str, Any], env: dict[str, str], wall: Any = None,
                           **sections: Any) -> Engine:
    eng = await Engine.open(build_profile(tmp, alerts=alerts, **sections), seed=3)
    svc = await notify.start(eng, environ=env, wall=wall)
    assert svc is not None
    eng.services.append(svc)
    return eng


async def deliveries(eng: Engine, channel: str | None = None) -> list[dict]:
    rows = await eng.journal.rows(["delivery"])
    return [r.data | {"ref": r.ref} for r in rows if channel is None or r.ref == channel]


async def test_email_and_webhook_get_alerts_by_severity(tmp_path, http_receiver, smtp_receiver):
    hook = http_receiver()
    env = {"TC_MAIL": smtp_receiver.url(), "TC_HOOK": hook.url()}
    # 600 a minute: apprise's own pacing of email (5.5 s apart) is capped at the channel's rate
    alerts = {"channels": {"mail": {"url_env": "TC_MAIL", "severities": ["warning", "critical"],
                                    "rate_limit_per_minute": 600},
                           "hook": {"url_env": "TC_HOOK", "severities": ["critical"]}}}
    eng = await open_with_alerts(tmp_path, alerts, env)
    try:
        now = eng.clock.now()
        eng.alerts.publish("info", "approval_needed", "BTC/USD buy 0.1 awaits approval", now)
        eng.alerts.publish("warning", "breaker", "daily_loss warning: -$62 / -$100", now)
        eng.alerts.publish("critical", "halt", "HALTED by operator: F12", now)
        await wait_for(lambda: len(smtp_receiver.messages) >= 2 and len(hook.received) >= 1, what="deliveries")
        assert sorted(smtp_receiver.subjects()) == ["tradeconsole paper: CRITICAL halt", "tradeconsole paper: WARNING breaker"]
        assert any("daily_loss warning: -$62 / -$100" in b for b in smtp_receiver.bodies())
        [msg] = hook.received
        assert msg["body"]["title"] == "tradeconsole paper: CRITICAL halt"
        assert msg["body"]["message"].startswith("HALTED by operator: F12\n2026-01-05")
        assert msg["body"]["type"] == "failure" and msg["path"] == f"/hook/{SECRET_PATH}"
        # a receiver has the message a moment before apprise returns and the row is written
        rows = await wait_async(lambda: deliveries(eng), lambda rows: len(rows) >= 3, what="journal rows")
        assert sorted((r["ref"], r["kind"], r["result"], r["attempt"]) for r in rows) == [
            ("hook", "halt", "ok", 1), ("mail", "breaker", "ok", 1), ("mail", "halt", "ok", 1)]
        assert not any("approval_needed" == r["kind"] for r in rows)  # info: no channel takes it
    finally:
        await eng.close()


async def test_kind_routes_add_and_mute_channels(tmp_path, http_receiver):
    a, b = http_receiver(), http_receiver()
    env = {"TC_A": a.url(), "TC_B": b.url()}
    alerts = {"channels": {"a": {"url_env": "TC_A", "severities": ["critical"]},
                           "b": {"url_env": "TC_B", "severities": ["warning", "critical"]}},
              "routes": {"gate_refused": {"add": ["a"]}, "halt": {"mute": ["b"]}}}
    eng = await open_with_alerts(tmp_path, alerts, env)
    try:
        now = eng.clock.now()
        eng.alerts.publish("info", "gate_refused", "ETH/USD buy refused: max_spread", now)  # a by rule
        eng.alerts.publish("critical", "halt", "HALTED by breaker", now)  # a; b muted
        eng.alerts.publish("critical", "cancel_failed", "cancel of 3 orders failed", now)  # both
        await wait_for(lambda: len(a.received) >= 3 and len(b.received) >= 1, what="routed deliveries")
        await eng.journal.flush()
        assert sorted(m.split("\n")[0] for m in a.messages()) == [
            "ETH/USD buy refused: max_spread", "HALTED by breaker", "cancel of 3 orders failed"]
        assert [m.split("\n")[0] for m in b.messages()] == ["cancel of 3 orders failed"]
    finally:
        await eng.close()


async def test_identical_alerts_coalesce_with_a_count(tmp_path, http_receiver):
    rx = http_receiver()
    alerts = {"channels": {"hook": {"url_env": "TC_HOOK", "severities": ["warning"]}}, "coalesce_seconds": 60}
    eng = await open_with_alerts(tmp_path, alerts, {"TC_HOOK": rx.url()})
    try:
        for _ in range(12):
            eng.alerts.publish("warning", "stale_data", "no quote from SOL/USD for 31s", eng.clock.now())
            eng.clock.advance(2)  # all within the 60 s window of engine time
        eng.alerts.publish("warning", "stale_data", "something else", eng.clock.now())
        await wait_for(lambda: len(rx.received) >= 2, what="first of the run")
        assert [m.split("\n")[0] for m in rx.messages()] == ["no quote from SOL/USD for 31s", "something else"]
        eng.clock.advance(61)  # the window closes in engine time: the count goes out
        await wait_for(lambda: len(rx.received) >= 3, what="coalesced count")
        assert rx.messages()[2].split("\n")[0] == "no quote from SOL/USD for 31s (x12)"
        eng.alerts.publish("warning", "stale_data", "no quote from SOL/USD for 31s", eng.clock.now())
        await wait_for(lambda: len(rx.received) >= 4, what="a new window after the last one closed")
    finally:
        await eng.close()
    assert len(rx.received) == 4  # the single-alert windows add no count message


async def test_rate_limit_is_per_channel_and_the_excess_goes_as_one_digest(tmp_path, http_receiver):
    slow, fast = http_receiver(), http_receiver()
    wall = FakeWall()
    alerts = {"channels": {"slow": {"url_env": "TC_SLOW", "severities": ["critical"], "rate_limit_per_minute": 2},
                           "fast": {"url_env": "TC_FAST", "severities": ["critical"], "rate_limit_per_minute": 60}}}
    eng = await open_with_alerts(tmp_path, alerts, {"TC_SLOW": slow.url(), "TC_FAST": fast.url()}, wall=wall)
    try:
        for i in range(5):
            eng.alerts.publish("critical", "cancel_failed", f"cancel failed #{i}", eng.clock.now())
        await wait_for(lambda: len(fast.received) >= 5 and len(slow.received) >= 2, what="within-rate deliveries")
        await asyncio.sleep(0.6)  # the slow channel is out of tokens: nothing more may arrive
        assert len(slow.received) == 2
        wall.t += 30  # one token back (2 a minute)
        await wait_for(lambda: len(slow.received) >= 3, what="digest after the rate window")
        digest = slow.received[2]["body"]
        assert digest["title"] == "tradeconsole paper: 3 alerts (highest CRITICAL)"
        assert [line.split(": ", 1)[1] for line in digest["message"].split("\n")] == [
            "cancel failed #2", "cancel failed #3", "cancel failed #4"]
        assert [m.split("\n")[0] for m in fast.messages()] == [f"cancel failed #{i}" for i in range(5)]
    finally:
        await eng.close()


async def test_a_full_channel_queue_sheds_info_first_and_journals_it(tmp_path, http_receiver):
    rx = http_receiver()
    wall = FakeWall()
    alerts = {"channels": {"hook": {"url_env": "TC_HOOK", "severities": ["info", "critical"],
                                    "rate_limit_per_minute": 1}}, "queue_size": 10}
    eng = await open_with_alerts(tmp_path, alerts, {"TC_HOOK": rx.url()}, wall=wall)
    try:
        eng.alerts.publish("info", "gate_refused", "refusal 0", eng.clock.now())
        await wait_for(lambda: len(rx.received) == 1, what="first message")
        svc = eng.services[0]
        for i in range(1, 14):
            eng.alerts.publish("info", "gate_refused", f"refusal {i}", eng.clock.now())
            if i % 5 == 0:
                await wait_for(lambda: not svc.inbox, what="routed")  # past the inbox: the channel sheds
        eng.alerts.publish("critical", "halt", "HALTED", eng.clock.now())
        await wait_for(lambda: len(eng.services[0].workers["hook"].queue) == 10, what="queue full")
        wall.t += 60
        await wait_for(lambda: len(rx.received) == 2, what="digest")
        lines = rx.received[1]["body"]["message"].split("\n")
        assert [ln.split(": ", 1)[1] for ln in lines] == [f"refusal {i}" for i in range(5, 14)] + ["HALTED"]
        rows = await wait_async(lambda: deliveries(eng, "hook"), lambda r: len(r) == 3, what="journal rows")
        assert [(r["result"], r.get("messages")) for r in rows] == [("ok", 1), ("dropped", 4), ("ok", 10)]
    finally:
        await eng.close()


async def test_counts_still_open_at_shutdown_go_out_before_the_channels_stop(tmp_path, http_receiver):
    rx = http_receiver()
    alerts = {"channels": {"hook": {"url_env": "TC_HOOK", "severities": ["critical"]}}}
    eng = await open_with_alerts(tmp_path, alerts, {"TC_HOOK": rx.url()})
    for _ in range(3):
        eng.alerts.publish("critical", "cancel_failed", "cancel of 2 orders failed", eng.clock.now())
    await eng.close()
    assert [m.split("\n")[0] for m in rx.messages()] == ["cancel of 2 orders failed", "cancel of 2 orders failed (x3)"]


async def test_retries_until_the_receiver_comes_back(tmp_path, http_receiver):
    rx = http_receiver(start=False)  # down
    alerts = {"channels": {"hook": {"url_env": "TC_HOOK", "severities": ["critical"]}},
              "retry_attempts": 20, "retry_backoff_seconds": 0.05}
    eng = await open_with_alerts(tmp_path, alerts, {"TC_HOOK": rx.url()})
    try:
        eng.alerts.publish("critical", "halt", "HALTED by breaker: drawdown_stop", eng.clock.now())

        async def failures() -> list[dict]:
            return [r for r in await deliveries(eng, "hook") if r["result"] == "failed"]

        await wait_async(lambda: failures(), lambda rows: len(rows) >= 2, what="failed attempts journaled")
        errs = [r["error"] for r in await failures()]
        assert all("Connection error" in e for e in errs), errs
        rx.start()  # the receiver comes back on the same port
        rows = await wait_async(lambda: deliveries(eng, "hook"), lambda rows: rows[-1]["result"] == "ok",
                                what="delivery after the receiver came back")
        assert len(rx.received) == 1
        assert [r["result"] for r in rows] == ["failed"] * (len(rows) - 1) + ["ok"]
        assert [r["attempt"] for r in rows] == list(range(1, len(rows) + 1))
        assert not [a for a in eng.alerts.recent() if a.kind == "delivery_failed"]  # recovered in time
    finally:
        await eng.close()


async def test_a_lost_channel_warns_once_in_the_console_and_never_to_itself(tmp_path, http_receiver):
    dead, ok = http_receiver(start=False), http_receiver()
    alerts = {"channels": {"dead": {"url_env": "TC_DEAD", "severities": ["warning", "critical"]},
                           "ok": {"url_env": "TC_OK", "severities": ["warning", "critical"]}},
              "retry_attempts": 2, "retry_backoff_seconds": 0.05}
    eng = await open_with_alerts(tmp_path, alerts, {"TC_DEAD": dead.url(), "TC_OK": ok.url()})
    try:
        for i in range(3):
            eng.alerts.publish("critical", "cancel_failed", f"cancel failed #{i}", eng.clock.now())
        await wait_for(lambda: any(a.kind == "delivery_failed" for a in eng.alerts.recent()), what="warning")
        await wait_for(lambda: any("is failing" in m for m in ok.messages()), what="warning delivered elsewhere")
        await wait_for(lambda: eng.services[0].workers["dead"].idle, what="dead channel done")
        warnings = [a for a in eng.alerts.recent() if a.kind == "delivery_failed"]
        assert len(warnings) == 1 and warnings[0].severity == "warning"
        assert warnings[0].message.startswith(f"alert channel dead (json://127.0.0.1:{dead.port}) is failing:")
        rows = await deliveries(eng, "dead")
        assert rows and all(r["result"] == "failed" for r in rows)
        assert not [r for r in rows if r["kind"] == "delivery_failed"]  # never routed to itself
        dead.start()
        eng.alerts.publish("critical", "halt", "HALTED", eng.clock.now())
        await wait_for(lambda: any(a.kind == "delivery_recovered" for a in eng.alerts.recent()), what="recovery")
    finally:
        await eng.close()


async def test_secrets_never_reach_the_journal_or_the_log(tmp_path, http_receiver):
    dead, rx = http_receiver(start=False), http_receiver()
    env = {"TC_DEAD": dead.url(auth=f"ops:{SECRET_PW}"), "TC_HOOK": rx.url(auth=f"ops:{SECRET_PW}")}
    alerts = {"channels": {"dead": {"url_env": "TC_DEAD", "severities": ["critical"]},
                           "hook": {"url_env": "TC_HOOK", "severities": ["critical", "warning"]}},
              "retry_attempts": 2, "retry_backoff_seconds": 0.05, "heartbeat": {"url_env": "TC_NOT_SET"}}
    eng = await open_with_alerts(tmp_path, alerts, env, logging={"level": "DEBUG"})
    try:
        eng.alerts.publish("critical", "halt", "HALTED", eng.clock.now())
        await wait_for(lambda: any(a.kind == "delivery_failed" for a in eng.alerts.recent()), what="failure")
        await wait_for(lambda: len(rx.received) >= 2, what="deliveries")
    finally:
        await eng.close()
    journal_text = "\n".join(r[0] for r in sqlite3.connect(tmp_path / "j.sqlite").execute("SELECT data FROM events"))
    log_text = (tmp_path / "j.log").read_text()
    for text in (journal_text, log_text):
        assert SECRET_PW not in text and SECRET_PATH not in text
        assert f"json://127.0.0.1:{dead.port}" in text  # the label: scheme and host only
    assert "TC_NOT_SET is not set" in journal_text  # the variable's name is fine to show


async def test_missing_variable_leaves_the_channel_out_and_the_engine_runs(tmp_path, http_receiver):
    rx = http_receiver()
    alerts = {"channels": {"gone": {"url_env": "TC_GONE"}, "hook": {"url_env": "TC_HOOK"}}}
    eng = await open_with_alerts(tmp_path, alerts, {"TC_HOOK": rx.url()})
    try:
        cfg_alerts = [a for a in eng.alerts.recent() if a.kind == "alert_config"]
        assert [a.message for a in cfg_alerts] == [
            "alerts.channels.gone.url_env: environment variable TC_GONE is not set; that channel is left out"]
        assert list(eng.services[0].workers) == ["hook"]
        await eng.run(duration=120)
        assert eng.counters["ticks"] > 0
    finally:
        await eng.close()


async def test_a_hanging_channel_leaves_the_trading_path_alone(tmp_path, http_receiver):
    async def timed_run(name: str, alerts: dict, env: dict) -> tuple[float, Engine]:
        eng = await open_with_alerts(tmp_path / name, alerts, env)
        eng.preroll()
        eng.alerts.publish("critical", "halt", "a delivery hangs from the first tick", eng.clock.now())
        t0 = time.perf_counter()
        await eng.run(duration=3600)
        return time.perf_counter() - t0, eng

    base, eng0 = await timed_run("none", {}, {})
    await eng0.close()
    hang = http_receiver()
    hang.mode = "hang"
    alerts = {"channels": {"hang": {"url_env": "TC_HANG", "severities": ["info", "warning", "critical"],
                                    "timeout_seconds": 10, "rate_limit_per_minute": 600}}}
    hung, eng = await timed_run("hang", alerts, {"TC_HANG": hang.url()})
    try:
        assert hang.hits >= 1 and eng.services[0].workers["hang"].endpoint.busy  # it really is stuck
        assert hung < base * 1.5 + 0.5, f"run took {hung:.2f}s with a hanging channel vs {base:.2f}s without"
    finally:
        t0 = time.perf_counter()
        await eng.close()
        # A critical message is in the hung attempt: close gives it the critical grace, not the hang.
        assert time.perf_counter() - t0 < notify.CRITICAL_GRACE_SECONDS + 2.0
