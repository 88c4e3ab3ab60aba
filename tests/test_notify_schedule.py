"""The scheduled messages: the daily summary at the venue's midnight on the engine clock (so a
simulated run sends it at simulated midnight), and heartbeat pings for a dead-man's switch."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from conftest import LOOSE_RISK, build_profile
from engine.clock import SimClock
from engine.engine import Engine
from engine.money import fmt_usd
from engine.notify import service as notify
from engine.risk.breakers import BreakerState
from test_notify_support import http_receiver, wait_async, wait_for  # noqa: F401 - fixtures

# apprise imports a module Python 3.13 drops; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")


async def test_daily_summary_at_simulated_midnight_in_the_venue_zone(tmp_path, http_receiver):
    rx = http_receiver()
    alerts = {"channels": {"hook": {"url_env": "TC_HOOK", "severities": ["critical"]}},
              "routes": {"daily_summary": {"add": ["hook"]}}}
    # Paris midnight is 23:00 UTC in January; the warm-up takes the clock to 22:32.
    profile = build_profile(tmp_path, venue={"timezone": "Europe/Paris"}, risk=LOOSE_RISK, alerts=alerts)
    eng = await Engine.open(profile, clock=SimClock(datetime(2026, 1, 5, 21, 30, tzinfo=timezone.utc)), seed=3)
    svc = await notify.start(eng, environ={"TC_HOOK": rx.url()})
    eng.services.append(svc)
    try:
        eng.preroll()
        daily = next(b for b in eng.breakers if b.name == "daily_loss")
        daily.restore(BreakerState.TRIPPED)  # as if today's loss limit had been hit
        await eng.run(duration=15 * 60)
        assert not [a for a in eng.alerts.recent() if a.kind == "daily_summary"]  # 22:47 UTC: not yet
        await eng.run(duration=30 * 60)  # past 23:00 UTC
        await wait_for(lambda: len(rx.received) == 1, what="summary delivered")
        [summary] = [a for a in eng.alerts.recent() if a.kind == "daily_summary"]
        assert summary.ts == datetime(2026, 1, 5, 23, 0, tzinfo=timezone.utc)  # simulated midnight, Paris
        close = eng.portfolio.day_start_equity  # the new day's baseline is the old day's close
        pnl = close - eng.portfolio.starting_cash
        sign = "+" if pnl > 0 else ""
        assert summary.message.startswith(
            f"day 2026-01-05 closed (Europe/Paris): equity {fmt_usd(close)}, P&L {sign}{fmt_usd(pnl)} (")
        trades = len([t for t in eng.trades.entries if t < summary.ts])
        assert f"trades {trades}, breakers: daily_loss tripped; others armed" in summary.message
        assert daily.state is BreakerState.ARMED  # the engine reset it at the day roll
        assert rx.received[0]["body"]["message"].split("\n")[0] == summary.message
        assert rx.received[0]["body"]["title"] == "tradeconsole paper: INFO daily_summary"
        await eng.run(duration=20 * 60)
        await eng.journal.flush()
        assert len([a for a in eng.alerts.recent() if a.kind == "daily_summary"]) == 1  # once a day
    finally:
        await eng.close()


async def test_no_summary_when_switched_off(tmp_path):
    profile = build_profile(tmp_path, alerts={"daily_summary": False})
    eng = await Engine.open(profile, seed=3)
    try:
        assert await notify.start(eng, environ={}) is None  # nothing configured: no service at all
    finally:
        await eng.close()


async def test_heartbeat_pings_at_start_and_journals_each_ping(tmp_path, http_receiver):
    rx = http_receiver()
    profile = build_profile(tmp_path, alerts={"heartbeat": {"url_env": "TC_BEAT", "interval_seconds": 5},
                                              "daily_summary": False})
    eng = await Engine.open(profile, seed=3)
    svc = await notify.start(eng, environ={"TC_BEAT": rx.url(path="ping/uuid-1234-abcd")})
    eng.services.append(svc)
    try:
        await wait_for(lambda: len(rx.received) == 1, what="first ping")
        body = rx.received[0]["body"]
        assert body["title"] == "tradeconsole paper: alive"
        assert body["message"].startswith("tradeconsole paper alive; engine time 2026-01-05 00:00:00 UTC; trading")
        rows = await wait_async(lambda: eng.journal.rows(["delivery"]), lambda r: len(r) == 1, what="journal row")
        assert rows[0].ref == "heartbeat" and rows[0].data["result"] == "ok"
        assert "uuid-1234-abcd" not in str(rows[0].data)
    finally:
        await eng.close()


async def test_a_dead_heartbeat_url_warns_once(tmp_path, http_receiver):
    rx = http_receiver(start=False)
    profile = build_profile(tmp_path, alerts={"heartbeat": {"url_env": "TC_BEAT", "interval_seconds": 5}})
    eng = await Engine.open(profile, seed=3)
    eng.services.append(await notify.start(eng, environ={"TC_BEAT": rx.url()}))
    try:
        await wait_for(lambda: any(a.kind == "heartbeat_failed" for a in eng.alerts.recent()), what="warning")
        [warn] = [a for a in eng.alerts.recent() if a.kind == "heartbeat_failed"]
        assert warn.severity == "warning" and warn.message.startswith(f"heartbeat to json://127.0.0.1:{rx.port} failed")
    finally:
        await eng.close()
