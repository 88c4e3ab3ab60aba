"""An unacknowledged critical alert is never lost to the bounded feed: the alert bus holds it apart
from its 200-alert ring until the operator acknowledges it, and the console's alert feed shows it
pinned on top the whole time, however many alerts come after it."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from conftest import ANY_READINESS, LOOSE_RISK
from console.app import TradeConsoleApp
from engine.alerts import AlertBus

T0 = datetime(2026, 1, 5, 14, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("after", [199, 200, 201, 1000])
def test_a_critical_outlives_the_ring_until_acknowledged(after):
    bus = AlertBus(maxlen=200)
    crit = bus.publish("critical", "stop_refused", "BTC/USD: protective stop refused", T0)
    for n in range(after):
        bus.publish("info", "noise", f"noise {n}", T0)
    in_ring = any(a.seq == crit.seq for a in bus.recent(200))
    assert in_ring == (after < 200)  # the ring itself does drop it at 200
    assert [a.seq for a in bus.unacknowledged()] == [crit.seq]
    assert bus.get(crit.seq) is crit
    assert bus.acknowledge(crit.seq) is crit and crit.acknowledged
    assert bus.unacknowledged() == []
    assert (bus.get(crit.seq) is None) == (after >= 200)  # once seen, it ages out with the ring
    assert bus.acknowledge(10_000) is None


def test_only_criticals_are_held_and_newest_comes_first():
    bus = AlertBus(maxlen=3)
    first = bus.publish("critical", "halt", "HALTED", T0)
    bus.publish("warning", "breaker", "daily_loss warning", T0)
    second = bus.publish("critical", "cancel_failed", "cancel failed", T0)
    for n in range(5):
        bus.publish("info", "noise", f"noise {n}", T0)
    assert [a.seq for a in bus.unacknowledged()] == [second.seq, first.seq]
    bus.acknowledge(second.seq)
    assert [a.seq for a in bus.unacknowledged()] == [first.seq]


async def quiet_engine(make_profile, open_engine):
    profile = make_profile(approval={"required": False}, risk={**LOOSE_RISK, **ANY_READINESS})
    eng = await open_engine(profile, seed=5)
    eng.strategy.on_quote = lambda q, pos: None
    await eng.run(duration=30)
    return eng


async def test_snapshot_keeps_a_critical_buried_under_201_alerts_between_two_snapshots(make_profile, open_engine):
    eng = await quiet_engine(make_profile, open_engine)
    eng.snapshot()  # a snapshot before, none while the burst arrives
    crit = eng.alerts.publish("critical", "stop_refused", "ETH/USD: protective stop refused", eng.clock.now())
    for n in range(201):
        eng.alerts.publish("info", "noise", f"noise {n}", eng.clock.now())
    await eng.journal.flush()
    shown = eng.snapshot().alerts
    assert [a.seq for a in shown if a.severity == "critical" and not a.acknowledged] == [crit.seq]
    assert await eng.acknowledge_alert(crit.seq) is None
    assert all(a.seq != crit.seq for a in eng.snapshot().alerts)
    (row,) = await eng.journal.rows(kinds=["operator"], ref=str(crit.seq))
    assert row.data["action"] == "acknowledge_alert" and row.data["result"] == "done"


async def test_the_alert_feed_shows_it_pinned_until_the_ack_key(make_profile, open_engine):
    eng = await quiet_engine(make_profile, open_engine)
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        eng.alerts.publish("critical", "stop_refused", "ETH/USD: protective stop refused", eng.clock.now())
        for n in range(250):
            eng.alerts.publish("info", "noise", f"noise {n}", eng.clock.now())
        await eng.journal.flush()
        app.refresh_snapshot()
        await pilot.pause()
        first = app.alerts.lines()[0].plain
        assert first.startswith("!") and "stop_refused" in first
        assert "1 to acknowledge" in app.alerts.border_title
        await pilot.press("k")
        deadline = time.monotonic() + 8
        while app.alerts.needs_ack():
            assert time.monotonic() < deadline, "the acknowledgement never reached the feed"
            await pilot.pause(0.02)
        assert all("stop_refused" not in line.plain for line in app.alerts.lines())
        assert "to acknowledge" not in app.alerts.border_title


async def test_a_long_alert_cut_in_the_feed_reads_in_full_on_the_alerts_screen(make_profile, open_engine):
    from console.screens import AlertsScreen

    eng = await quiet_engine(make_profile, open_engine)
    reason = "daily loss limit hit: " + "the venue answered with a long explanation " * 6 + "END-OF-REASON"
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        eng.alerts.publish("critical", "halt", f"HALTED by breaker: {reason}", eng.clock.now())
        await eng.journal.flush()
        app.refresh_snapshot()
        await pilot.pause()
        assert len(app.alerts.lines()[0].plain) > 3 * app.alerts.size.width  # far past the pane's edge
        await pilot.press("e")
        deadline = time.monotonic() + 8
        while not isinstance(app.screen, AlertsScreen) or "END-OF-REASON" not in str(app.screen.body.content):
            assert time.monotonic() < deadline, "the alerts screen never showed the whole alert"
            await pilot.pause(0.02)
        text = str(app.screen.body.content)
        assert "HALTED by breaker: daily loss limit hit" in text and "to acknowledge" in text
        await pilot.press("f12")  # the halt key reaches through the screen
        assert eng.state.value == "halted"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, AlertsScreen)


# -- across restarts -----------------------------------------------------------------------------
async def _reopen(eng, make_profile, open_engine):
    await eng.close()
    return await open_engine(make_profile(risk=LOOSE_RISK), seed=4)


async def test_an_unacknowledged_critical_is_pinned_again_after_a_restart_and_not_sent_twice(
        make_profile, open_engine):
    eng = await quiet_engine(make_profile, open_engine)
    raised = eng.alerts.publish("critical", "stop_refused", "ETH/USD: protective stop refused", eng.clock.now(),
                                symbol="ETH/USD")
    eng.alerts.publish("critical", "exit_unfilled", "BTC/USD: exit not filled", eng.clock.now())
    eng.alerts.publish("warning", "noise", "a warning is not held", eng.clock.now())
    assert await eng.acknowledge_alert(eng.alerts.unacknowledged()[0].seq) is None  # the BTC one
    again = await _reopen(eng, make_profile, open_engine)
    (held,) = again.pinned_alerts()
    assert (held.kind, held.message, held.ts, held.data) == (
        "stop_refused", "ETH/USD: protective stop refused", raised.ts, {"symbol": "ETH/USD"})
    assert [a.seq for a in again.snapshot().alerts if a.severity == "critical" and not a.acknowledged] == [held.seq]
    # Restored, not raised again: no new alert row for outbound channels to resend.
    assert len(await again.journal.rows(kinds=["alert"], ref="stop_refused")) == 1
    (restored,) = await again.journal.rows(kinds=["alert_restored"])
    assert restored.data["seq"] == held.seq


async def test_acknowledged_after_the_restart_it_stays_gone_at_the_next(make_profile, open_engine):
    eng = await quiet_engine(make_profile, open_engine)
    eng.alerts.publish("critical", "stop_refused", "ETH/USD: protective stop refused", eng.clock.now())
    second = await _reopen(eng, make_profile, open_engine)
    third = await _reopen(second, make_profile, open_engine)
    (held,) = third.pinned_alerts()  # carried through a second restart under its newest number
    assert await third.acknowledge_alert(held.seq) is None
    fourth = await _reopen(third, make_profile, open_engine)
    assert fourth.pinned_alerts() == []


async def test_a_critical_raised_after_the_last_checkpoint_survives_a_crash(make_profile, open_engine):
    eng = await quiet_engine(make_profile, open_engine)
    eng.alerts.publish("critical", "stop_refused", "SOL/USD: protective stop refused", eng.clock.now())
    await eng.journal.flush()
    # A crash: no closing checkpoint; only the journal's connection is let go.
    eng._closed = True
    await eng.broker.close()
    await eng.journal.close()
    again = await open_engine(make_profile(risk=LOOSE_RISK), seed=4)
    assert [a.message for a in again.pinned_alerts()] == ["SOL/USD: protective stop refused"]
