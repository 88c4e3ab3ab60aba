"""Trading hours from a maintained exchange calendar (holidays and early closes included).

Crypto profiles ("24/7") never import the calendar package: it costs most of a second at start.
Session times are looked up once per venue day and cached, so the check stays cheap per order.

Extended hours run 04:00-20:00 local, but the calendar knows no after-hours session: on a day
whose regular close comes early (XNYS 13:00 the day after Thanksgiving and on Christmas Eve), the
after-hours session ends as much earlier as the close does (17:00), and the entry cutoff counts
back from that end. A fixed 20:00 let entries in until 19:45 on a session that had ended.

A venue with its own market clock (Alpaca) sets `venue_clock` (engine/market_clock.py): regular
hours are then judged by the venue's last reading, the calendar when it cannot tell.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ..profile import MarketHoursConfig
from .gate import Outcome, OrderRequest, PreTradeCheck, RiskContext

if TYPE_CHECKING:
    from ..market_clock import VenueMarketClock

EXTENDED_OPEN = time(4, 0)
EXTENDED_CLOSE = time(20, 0)


class CalendarError(Exception):
    pass


class ExchangeSessions:
    """Session open/close per day for one exchange, from exchange_calendars."""

    def __init__(self, code: str) -> None:
        import exchange_calendars as xc  # lazy: see module docstring

        try:
            self._cal = xc.get_calendar(code)
        except Exception as exc:  # the package raises its own InvalidCalendarName
            raise CalendarError(f"market_hours.calendar: unknown exchange calendar {code!r}") from exc
        self.tz = ZoneInfo(str(self._cal.tz))
        self._cache: dict[date, tuple[datetime, datetime] | None] = {}
        self._extended: dict[date, tuple[datetime, datetime] | None] = {}

    def session(self, day: date) -> tuple[datetime, datetime] | None:
        """(open, close) in UTC for a trading day, None for a holiday or weekend."""
        if day in self._cache:
            return self._cache[day]
        import pandas as pd

        ts = pd.Timestamp(day)
        if ts < self._cal.first_session or ts > self._cal.last_session:
            raise CalendarError(f"{day} is outside the calendar's range")
        out = None
        if self._cal.is_session(ts):
            out = (self._cal.session_open(ts).to_pydatetime(), self._cal.session_close(ts).to_pydatetime())
        self._cache[day] = out
        return out

    def extended(self, day: date) -> tuple[datetime, datetime] | None:
        """(pre-market open, after-hours close) for a trading day, None for a holiday or weekend."""
        if day in self._extended:
            return self._extended[day]
        sess = self.session(day)
        out = None
        if sess is not None:
            end = datetime.combine(day, EXTENDED_CLOSE, self.tz)
            early = datetime.combine(day, self._usual_close(day), self.tz) - sess[1]
            if early > timedelta(0):
                end -= early
            out = (datetime.combine(day, EXTENDED_OPEN, self.tz), end)
        self._extended[day] = out
        return out

    def _usual_close(self, day: date) -> time:
        # close_times: (in force from, local close) pairs in order, the first from None.
        usual = self._cal.close_times[0][1]
        for since, at in self._cal.close_times:
            if since is None or since.date() <= day:
                usual = at
        return usual


class TradingHoursCheck(PreTradeCheck):
    name = "trading_hours"

    def __init__(self, cfg: MarketHoursConfig, sessions: ExchangeSessions | None = None) -> None:
        self.cfg = cfg
        self.always = cfg.calendar == "24/7"
        self._sessions = sessions
        self.cutoff = timedelta(minutes=cfg.entry_cutoff_minutes)
        self.venue_clock: VenueMarketClock | None = None  # set by the venue wiring (module docstring)

    @property
    def sessions(self) -> ExchangeSessions:
        if self._sessions is None:
            self._sessions = ExchangeSessions(self.cfg.calendar)
        return self._sessions

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        if self.always:
            return (True, "24/7 market", (), ())
        s = self.sessions
        local = ctx.now.astimezone(s.tz)
        if self.venue_clock is not None and not self.cfg.allow_extended_hours:
            state = self.venue_clock.state(ctx.now)
            if state is not None:
                return self._by_venue_clock(ctx.now, local, state, s.tz)
        try:
            sess = s.extended(local.date()) if self.cfg.allow_extended_hours else s.session(local.date())
        except CalendarError as exc:
            return (False, "{why}", ("why",), (str(exc),))
        if sess is None:
            return (False, "{day}: market closed (weekend or holiday)" + self._calendar_note(),
                    ("day",), (local.date().isoformat(),))
        start, end = sess[0], sess[1] - self.cutoff
        ok = start <= ctx.now <= end
        return (ok, "{now} local, entries {start}-{end}" + self._calendar_note(),
                ("now", "start", "end"), (local.strftime("%H:%M"), start.astimezone(s.tz).strftime("%H:%M"), end.astimezone(s.tz).strftime("%H:%M")))

    def _by_venue_clock(self, now: datetime, local: datetime, state: tuple, tz: ZoneInfo) -> Outcome:
        is_open, when = state
        if not is_open:
            nxt = when.astimezone(tz).strftime("%a %H:%M") if when is not None else "not announced"
            return (False, "market closed (venue clock), next open {next_open}", ("next_open",), (nxt,))
        end = when - self.cutoff
        return (now <= end, "{now} local, entries until {end} (venue clock)", ("now", "end"),
                (local.strftime("%H:%M"), end.astimezone(tz).strftime("%H:%M")))

    def _calendar_note(self) -> str:
        """Said when a venue clock exists but could not be used, so the record shows the fallback."""
        used = self.venue_clock is not None and not self.cfg.allow_extended_hours
        return " (calendar: venue clock unavailable)" if used else ""
