"""The venue's market clock (Alpaca GET /v2/clock) feeds the trading-hours check.

Unit: what a reading says at a given time (open until its close, closed until its open, nothing
once it is too old or the market should have opened unconfirmed). The check: the venue clock
overrules the calendar both ways (a Saturday the venue says is open, a weekday it says is
closed), the entry cut-off still applies, and without a usable reading the calendar decides and
says so. End to end: an Alpaca profile through `Engine.open` against the emulator, on a Saturday
of the engine's clock: entries follow the venue's clock, a closed market refuses them, and when
the clock endpoint fails the calendar takes over.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal as D
from zoneinfo import ZoneInfo

from emulators.alpaca import AlpacaEmulator
from test_venues_session import Script, grant, set_keys, start, until, venue_profile

from engine.clock import SimClock
from engine.engine import Engine
from engine.market_clock import VenueMarketClock
from engine.models import OrderPurpose, Side
from engine.profile import MarketHoursConfig
from engine.risk.gate import OrderRequest, RiskContext, TradingState
from engine.risk.hours import TradingHoursCheck

KEY, SECRET = "clkKEYtest0123456789ab", "clkSECRETtest0123456789ab"
NY = ZoneInfo("America/New_York")
REQ = OrderRequest("AAPL", Side.BUY, D(1), D(100), D(92), OrderPurpose.ENTRY, "strategy")


def ny(local: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=NY).astimezone(timezone.utc)


def ctx(now: datetime) -> RiskContext:
    return RiskContext(now=now, trading_state=TradingState.ACTIVE, equity=D(10000), cash=D(10000),
                       day_start_equity=D(10000), pnl_today=D(0), open_positions=0, position_qty=D(0),
                       gross_exposure=D(0), trades_today=0, trades_last_hour=0, seconds_since_last_trade=None)


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def clock_with(answers: list, interval: float = 60) -> tuple[VenueMarketClock, Mono]:
    mono = Mono()

    async def read() -> dict:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    return VenueMarketClock(read, interval, monotonic=mono), mono


OPEN_SAT = {"is_open": True, "next_open": "2026-11-30T14:30:00Z", "next_close": ny("2026-11-28 16:00").isoformat()}


async def test_a_reading_holds_until_its_transition_and_for_three_intervals_at_most():
    mc, mono = clock_with([OPEN_SAT, RuntimeError("HTTP 500"), RuntimeError("HTTP 500")])
    assert mc.state(ny("2026-11-28 12:00")) is None  # nothing read yet
    assert await mc.refresh()
    assert mc.state(ny("2026-11-28 12:00")) == (True, ny("2026-11-28 16:00"))
    assert mc.state(ny("2026-11-28 16:00")) == (False, None)  # past the announced close: closed
    assert not await mc.refresh()  # a failed read keeps the last reading...
    mono.t += 170
    assert mc.state(ny("2026-11-28 12:00")) == (True, ny("2026-11-28 16:00"))
    assert not await mc.refresh()
    mono.t += 11  # ...for three intervals (180 s), then it is too old to trust
    assert mc.state(ny("2026-11-28 12:00")) is None
    assert mc.failures == 2 and "HTTP 500" in mc.last_error

    closed, _ = clock_with([{"is_open": False, "next_open": ny("2026-11-30 09:30").isoformat(),
                             "next_close": ny("2026-11-30 16:00").isoformat()}])
    assert await closed.refresh()
    assert closed.state(ny("2026-11-28 12:00")) == (False, ny("2026-11-30 09:30"))
    assert closed.state(ny("2026-11-30 09:30")) is None  # due to open, not confirmed: the calendar decides


async def test_the_check_follows_the_venue_clock_over_the_calendar_both_ways():
    check = TradingHoursCheck(MarketHoursConfig(calendar="XNYS"))
    # Saturday: the calendar is closed, the venue says open until 16:00 (15 min cut-off).
    mc, _ = clock_with([OPEN_SAT])
    check.venue_clock = mc
    assert not check.evaluate(REQ, ctx(ny("2026-11-28 12:00"))).passed  # no reading yet: the calendar
    assert "calendar: venue clock unavailable" in check.evaluate(REQ, ctx(ny("2026-11-28 12:00"))).detail
    await mc.refresh()
    res = check.evaluate(REQ, ctx(ny("2026-11-28 12:00")))
    assert res.passed and "venue clock" in res.detail and res.values["end"] == "15:45"
    assert not check.evaluate(REQ, ctx(ny("2026-11-28 15:45:01"))).passed  # the cut-off still applies
    # A weekday the calendar calls open, the venue calls closed (an unscheduled close).
    mc2, _ = clock_with([{"is_open": False, "next_open": ny("2026-11-25 09:30").isoformat(),
                          "next_close": ny("2026-11-25 16:00").isoformat()}])
    await mc2.refresh()
    check.venue_clock = mc2
    res = check.evaluate(REQ, ctx(ny("2026-11-24 11:00")))
    assert not res.passed and res.values["next_open"] == "Wed 09:30"
    assert TradingHoursCheck(MarketHoursConfig(calendar="XNYS")).evaluate(REQ, ctx(ny("2026-11-24 11:00"))).passed
    # Extended hours are the calendar's: the venue clock describes the regular session only.
    ext = TradingHoursCheck(MarketHoursConfig(calendar="XNYS", allow_extended_hours=True))
    ext.venue_clock = mc2
    assert ext.evaluate(REQ, ctx(ny("2026-11-24 07:00"))).passed


def alpaca_profile(tmp_path, url: str, calendar: str = "XNYS", every: float = 0.2):
    return venue_profile(tmp_path, "alpaca", url, market_hours={"calendar": calendar, "venue_clock_seconds": every},
                         venue={"timeouts": {"retries": 0, "poll_seconds": 0.05, "request_seconds": 2,
                                             "backoff_seconds": 0.01, "backoff_max_seconds": 0.05}},
                         breakers={"api_failure_limit": 1000})


def hours(eng) -> tuple[bool, str]:
    check = next(c for c in eng.gate.checks if c.name == "trading_hours")
    res = check.evaluate(REQ, ctx(eng.clock.now()))
    return res.passed, res.detail


async def test_an_alpaca_session_judges_hours_by_the_venue_clock(tmp_path, monkeypatch):
    saturday = ny("2026-11-28 12:00")
    emu = AlpacaEmulator({KEY: SECRET})
    emu.next_close = ny("2026-11-28 16:00")
    await emu.start()
    set_keys(monkeypatch, "alpaca", KEY, SECRET)
    profile = alpaca_profile(tmp_path, emu.url)
    await grant(profile)
    eng = await Engine.open(profile, clock=SimClock(saturday))
    runner = None
    try:
        assert emu.count("GET", "/v2/clock") == 1  # read once at start, before any decision
        ok, detail = hours(eng)
        assert ok and "venue clock" in detail
        # A real entry on the venue's word: the gate passes it on a calendar Saturday and it fills.
        eng.strategy = Script("AAPL")
        runner = asyncio.create_task(eng.run())
        await until(lambda: "AAPL" in eng.portfolio.positions, "an entry on a Saturday the venue says is open")
        decision = next(r for r in await eng.journal.rows(kinds=["decision"]) if r.data["purpose"] == "entry")
        hours_check = next(c for c in decision.data["checks"] if c["name"] == "trading_hours")
        assert hours_check["passed"] and hours_check["values"]["end"] == "15:45"
        # Refreshed at its bounded rate while the loop runs: the venue closes the market.
        emu.is_open = False
        emu.next_open = ny("2026-11-30 09:30")
        await until(lambda: not hours(eng)[0], "closed by the venue clock")
        assert "market closed (venue clock), next open Mon 09:30" in hours(eng)[1]
        reads = emu.count("GET", "/v2/clock")
        await asyncio.sleep(0.5)
        assert emu.count("GET", "/v2/clock") - reads <= 4  # bounded: about one read per 0.2 s
        # The clock endpoint fails: the last reading is kept for three intervals, then the calendar.
        emu.is_open = True
        emu.fault("GET", "/v2/clock", "500", times=10_000)
        await until(lambda: "calendar: venue clock unavailable" in hours(eng)[1], "the calendar takes over")
        assert hours(eng)[1].startswith("2026-11-28: market closed (weekend or holiday)")
        assert eng.market_clock.failures >= 1
    finally:
        eng.stop()
        if runner is not None:
            await asyncio.wait_for(runner, 5)
        await eng.close()
        await emu.stop()
    # The clock's read task ended with the loop.
    assert eng.market_clock._task is None


async def test_no_venue_clock_for_a_24_7_profile_or_when_switched_off(tmp_path, monkeypatch):
    emu = await AlpacaEmulator({KEY: SECRET}).start()
    set_keys(monkeypatch, "alpaca", KEY, SECRET)
    try:
        eng = await start(alpaca_profile(tmp_path, emu.url, calendar="24/7"))
        assert eng.market_clock is None and emu.count("GET", "/v2/clock") == 0
        await eng.close()
        eng = await start(alpaca_profile(tmp_path, emu.url, every=0))
        assert eng.market_clock is None and emu.count("GET", "/v2/clock") == 0
        await eng.close()
    finally:
        await emu.stop()
