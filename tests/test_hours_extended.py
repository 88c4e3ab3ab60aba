"""Extended hours on early-close days: the after-hours session ends as much earlier as the
regular close does (XNYS closes 13:00 on 2026-11-27 and 2026-12-24, after-hours end 17:00 ET), and
the entry cutoff counts back from that end. Ordinary days keep 04:00-20:00."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from engine.models import OrderPurpose, Side
from engine.profile import MarketHoursConfig
from engine.risk.gate import OrderRequest, RiskContext, TradingState
from engine.risk.hours import ExchangeSessions, TradingHoursCheck

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
REQ = OrderRequest("AAPL", Side.BUY, D(1), D(100), D(92), OrderPurpose.ENTRY, "strategy")


def at(local: str, tz: ZoneInfo = NY) -> RiskContext:
    now = datetime.fromisoformat(local).replace(tzinfo=tz).astimezone(timezone.utc)
    return RiskContext(now=now, trading_state=TradingState.ACTIVE, equity=D(10000), cash=D(10000),
                       day_start_equity=D(10000), pnl_today=D(0), open_positions=0, position_qty=D(0),
                       gross_exposure=D(0), trades_today=0, trades_last_hour=0, seconds_since_last_trade=None)


def extended(calendar: str = "XNYS", cutoff: int = 15) -> TradingHoursCheck:
    return TradingHoursCheck(MarketHoursConfig(calendar=calendar, allow_extended_hours=True,
                                               entry_cutoff_minutes=cutoff))


XNYS_EXT = extended()


@pytest.mark.parametrize("local,ok", [
    ("2026-11-27 04:00:00", True),  # pre-market opens as usual on a half day
    ("2026-11-27 12:50:00", True),  # after the 13:00 close is not yet the cutoff
    ("2026-11-27 16:45:00", True),  # the last entry: after-hours end 17:00 less 15 min
    ("2026-11-27 16:45:01", False),
    ("2026-11-27 17:30:00", False),
    ("2026-11-27 19:40:00", False),  # was allowed against a 20:00 end that day does not have
    ("2026-12-24 16:45:00", True),
    ("2026-12-24 16:45:01", False),
    ("2026-12-24 18:00:00", False),
])
def test_extended_hours_end_early_on_an_early_close_day(local, ok):
    res = XNYS_EXT.evaluate(REQ, at(local))
    assert res.passed is ok, res.detail


def test_the_record_shows_the_early_end():
    assert XNYS_EXT.evaluate(REQ, at("2026-11-27 17:30:00")).detail == "17:30 local, entries 04:00-16:45"


@pytest.mark.parametrize("local,ok", [
    ("2026-11-24 19:45:00", True),  # an ordinary day: 20:00 less 15 min
    ("2026-11-24 19:45:01", False),
    ("2026-11-25 19:45:00", True),  # the day before Thanksgiving closes at the usual time
    ("2026-11-26 12:00:00", False),  # Thanksgiving: closed
])
def test_ordinary_days_keep_the_full_extended_session(local, ok):
    assert XNYS_EXT.evaluate(REQ, at(local)).passed is ok


def test_the_cutoff_counts_back_from_the_early_end():
    check = extended(cutoff=60)
    assert check.evaluate(REQ, at("2026-11-27 16:00:00")).passed
    assert not check.evaluate(REQ, at("2026-11-27 16:00:01")).passed
    assert extended(cutoff=0).evaluate(REQ, at("2026-11-27 17:00:00")).passed
    assert not extended(cutoff=0).evaluate(REQ, at("2026-11-27 17:00:01")).passed


def test_another_exchange_shortens_by_its_own_early_close():
    # XLON closes 16:30 as a rule and 12:30 on Christmas Eve: four hours early.
    lon = extended("XLON", cutoff=0)
    assert lon.evaluate(REQ, at("2026-12-23 20:00:00", LONDON)).passed
    assert lon.evaluate(REQ, at("2026-12-24 16:00:00", LONDON)).passed
    assert not lon.evaluate(REQ, at("2026-12-24 16:00:01", LONDON)).passed


class _CountingCalendar:
    """exchange_calendars' calendar, counting the look-ups the hot path would make."""

    def __init__(self, cal) -> None:
        self._cal, self.calls = cal, 0

    def __getattr__(self, name):
        self.calls += 1
        return getattr(self._cal, name)


def test_the_window_is_looked_up_once_per_session_day():
    sessions = ExchangeSessions("XNYS")
    spy = sessions._cal = _CountingCalendar(sessions._cal)
    check = TradingHoursCheck(MarketHoursConfig(calendar="XNYS", allow_extended_hours=True), sessions)
    check.evaluate(REQ, at("2026-11-27 08:00:00"))
    first = spy.calls
    for minute in range(0, 60 * 8, 7):
        check.evaluate(REQ, at(f"2026-11-27 {8 + minute // 60:02d}:{minute % 60:02d}:00"))
    assert first > 0 and spy.calls == first
