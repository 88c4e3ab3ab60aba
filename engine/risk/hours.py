"""Trading hours from a maintained exchange calendar (holidays and early closes included).

Crypto profiles ("24/7") never import the calendar package: it costs most of a second at start.
Session times are looked up once per venue day and cached, so the check stays cheap per order.

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
            sess = s.session(local.date())
        except CalendarError as exc:
            return (False, "{why}", ("why",), (str(exc),))
        if sess is None:
            return (False, "{day}: market closed (weekend or holiday)" + self._calendar_note(),
                    ("day",), (local.date().isoformat(),))
        open_, close = sess
        last_entry = close - self.cutoff
        if self.cfg.allow_extended_hours:
            start = datetime.combine(local.date(), EXTENDED_OPEN, s.tz)
            end = datetime.combine(local.date(), EXTENDED_CLOSE, s.tz) - self.cutoff
        else:
            start, end = open_, last_entry
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
