"""Trading hours from the exchange calendar, the spike/gap filter, day-boundary resets in the
venue's time zone, and stage minimums."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from engine.models import OrderPurpose, Quote, Side
from engine.portfolio import Portfolio
from engine.profile import MarketHoursConfig, Profile
from engine.risk.checks import MinConfidenceCheck, MinEdgeCheck, default_checks
from engine.risk.gate import OrderRequest, RiskContext, TradingState
from engine.risk.hours import TradingHoursCheck
from engine.tracking import MarketWatch

NY = ZoneInfo("America/New_York")


def at(local: str) -> RiskContext:
    now = datetime.fromisoformat(local).replace(tzinfo=NY).astimezone(timezone.utc)
    return RiskContext(now=now, trading_state=TradingState.ACTIVE, equity=D(10000), cash=D(10000),
                       day_start_equity=D(10000), pnl_today=D(0), open_positions=0, position_qty=D(0),
                       gross_exposure=D(0), trades_today=0, trades_last_hour=0, seconds_since_last_trade=None)


REQ = OrderRequest("AAPL", Side.BUY, D(1), D(100), D(92), OrderPurpose.ENTRY, "strategy")
XNYS = TradingHoursCheck(MarketHoursConfig(calendar="XNYS"))


@pytest.mark.parametrize("local,ok", [
    ("2026-11-24 09:29:59", False),  # a minute before the open
    ("2026-11-24 09:30:00", True),  # the open
    ("2026-11-24 15:45:00", True),  # the last entry minute (close 16:00 less 15 min)
    ("2026-11-24 15:45:01", False),
    ("2026-11-26 12:00:00", False),  # Thanksgiving: closed all day
    ("2026-11-27 12:45:00", True),  # day after: early close 13:00, entries until 12:45
    ("2026-11-27 12:45:01", False),
    ("2026-11-28 12:00:00", False),  # Saturday
])
def test_equity_hours_follow_the_exchange_calendar(local, ok):
    res = XNYS.evaluate(REQ, at(local))
    assert res.passed is ok, res.detail


def test_extended_hours_only_when_allowed():
    ext = TradingHoursCheck(MarketHoursConfig(calendar="XNYS", allow_extended_hours=True))
    assert ext.evaluate(REQ, at("2026-11-24 07:00:00")).passed
    assert not XNYS.evaluate(REQ, at("2026-11-24 07:00:00")).passed
    assert not ext.evaluate(REQ, at("2026-11-24 03:59:00")).passed


def test_crypto_profile_never_imports_the_calendar():
    import subprocess
    import sys

    code = ("import sys; from engine.profile import Profile; from engine.risk.checks import default_checks; "
            "default_checks(Profile()); print('exchange_calendars' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_unknown_calendar_code_is_a_start_up_error(tmp_path):
    import os
    import subprocess
    import sys

    prof = tmp_path / "eq.yaml"
    prof.write_text("name: eq\nmarket_hours:\n  calendar: XXXX\n")
    env = dict(os.environ, TRADECONSOLE_HOME=str(tmp_path / "home"))
    res = subprocess.run([sys.executable, "-m", "console", "run", "--headless", "--duration", "1m",
                          "--profile", str(prof)], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert "market_hours.calendar" in line and "XXXX" in line


def q(mid: str, ts: datetime) -> Quote:
    m = D(mid)
    return Quote("X", ts, m - D("0.01"), m + D("0.01"), D(1), D(1), m, D(1))


def test_spike_is_ignored_and_a_lasting_gap_becomes_the_reference():
    w = MarketWatch(D(5))
    t = datetime(2026, 1, 5, tzinfo=timezone.utc)
    w.update(q("100", t))
    w.update(q("110", t + timedelta(seconds=1)))  # +10 %: a spike, the reference holds
    assert w.last_good("X") == D("100")
    w.update(q("100.5", t + timedelta(seconds=2)))
    assert w.last_good("X") == D("100.5")
    for i in range(3):  # a level that holds three quotes is a gap
        w.update(q("110", t + timedelta(seconds=3 + i)))
    assert w.last_good("X") == D("110")


def test_day_resets_follow_the_venue_time_zone():
    p = Portfolio(D(10000), "America/New_York")
    utc = timezone.utc
    assert p.roll(datetime(2026, 1, 6, 4, 59, tzinfo=utc)) == (False, False)  # first call: 23:59 NY on the 5th
    assert p.roll(datetime(2026, 1, 6, 5, 0, tzinfo=utc)) == (True, False)  # midnight in New York, not UTC
    assert p.roll(datetime(2026, 1, 12, 5, 0, tzinfo=utc)) == (True, True)  # Monday: a new ISO week


def test_stage_minimums_are_stricter_than_the_profile():
    prof = Profile(stage="micro")
    checks = {c.name: c for c in default_checks(prof)}
    assert isinstance(checks["min_edge"], MinEdgeCheck) and checks["min_edge"].minimum == 0.1
    assert isinstance(checks["min_confidence"], MinConfidenceCheck) and checks["min_confidence"].minimum == 0.75
    cap = checks["stage_cap"]
    assert (cap.max_capital, cap.max_position) == (D(500), D(10))
