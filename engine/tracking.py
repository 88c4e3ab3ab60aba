"""What the gate needs to remember between orders: the market's recent state per symbol, and
when trades and new positions happened."""
from __future__ import annotations

from bisect import bisect_left
from collections import deque
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from .models import Quote

if TYPE_CHECKING:
    from .journal import Journal

HUNDRED = Decimal(100)
VOLUME_WINDOW = timedelta(seconds=60)  # traded volume the liquidity check compares against
ONE_HOUR = timedelta(hours=1)
ONE_DAY = timedelta(days=1)
ONE_TICK = timedelta(microseconds=1)  # datetime's resolution
GAP_CONFIRM_QUOTES = 3  # a new level that holds this many quotes is a gap, not a spike


class _SymbolWatch:
    __slots__ = ("quote", "twice_mid", "mid", "good", "twice_good", "lo", "hi", "away", "volumes", "volume_sum")

    def __init__(self) -> None:
        self.quote: Quote | None = None
        self.twice_mid = Decimal(0)  # bid + ask of `quote`
        self.mid: Decimal | None = None  # its half, once someone asked
        self.good: Decimal | None = None
        self.twice_good = Decimal(0)
        self.lo = self.hi = Decimal(0)
        self.away = 0
        self.volumes: deque[tuple[datetime, Decimal]] = deque()
        self.volume_sum = Decimal(0)

    def halve(self) -> Decimal:
        """The mid, halved once per quote whoever asks (the gate, on every order in the symbol),
        and not at all when it is the accepted reference price."""
        self.mid = self.good if self.twice_mid == self.twice_good else self.twice_mid / 2
        return self.mid


class MarketWatch:
    def __init__(self, max_jump_pct: Decimal) -> None:
        self.max_jump = max_jump_pct / HUNDRED
        self._s: dict[str, _SymbolWatch] = {}
        self.last_quote_at: datetime | None = None

    def update(self, q: Quote) -> bool:
        """Take a quote; True when its mid is a price to value positions at: within the jump
        band of the last good one, or a new level that has held (a gap), never a lone spike."""
        w = self._s.get(q.symbol)
        if w is None:
            w = self._s[q.symbol] = _SymbolWatch()
        w.quote = q
        self.last_quote_at = q.ts
        twice_mid = q.bid + q.ask
        w.twice_mid = twice_mid
        w.mid = None
        sane = twice_mid > 0
        if w.good is None or w.lo <= twice_mid <= w.hi:
            if sane and twice_mid != w.twice_good:
                self._accept(w, twice_mid)
            w.away = 0
        else:
            # A spike reverts within a tick; a level that holds is a gap and becomes the reference.
            w.away += 1
            if w.away >= GAP_CONFIRM_QUOTES and sane:
                self._accept(w, twice_mid)
                w.away = 0
            else:
                sane = False
        vol = q.volume
        if vol:
            t = q.ts
            w.volumes.append((t, vol))
            w.volume_sum += vol
            cutoff = t - VOLUME_WINDOW
            vols = w.volumes
            while vols[0][0] < cutoff:
                w.volume_sum -= vols.popleft()[1]
        return sane

    def _accept(self, w: "_SymbolWatch", twice_mid: Decimal) -> None:
        # Compared in doubled prices so the hot path never divides.
        w.twice_good = twice_mid
        w.good = twice_mid / 2
        band = twice_mid * self.max_jump
        w.lo = twice_mid - band
        w.hi = twice_mid + band

    def quote(self, symbol: str) -> Quote | None:
        w = self._s.get(symbol)
        return None if w is None else w.quote

    def watch(self, symbol: str) -> _SymbolWatch | None:
        """What is kept of the symbol, once it has had a quote (the gate reads it directly)."""
        return self._s.get(symbol)

    def mid(self, symbol: str) -> Decimal | None:
        w = self._s.get(symbol)
        if w is None or w.quote is None:
            return None
        return w.halve() if w.mid is None else w.mid

    def last_good(self, symbol: str) -> Decimal | None:
        w = self._s.get(symbol)
        return None if w is None else w.good

    def recent_volume(self, symbol: str) -> Decimal | None:
        w = self._s.get(symbol)
        return None if w is None or not w.volumes else w.volume_sum


class TradeLog:
    """Entry times (for throttles) and position-opening times (for new-position limits).

    The gate asks four counts per order. They change only when an entry is recorded, the venue
    day rolls, or a trade leaves the last hour, so `refresh` recounts (by bisection) only then
    and an order in between pays for two time comparisons."""

    def __init__(self, journal: Journal | None = None) -> None:
        # Each entry is journaled as it is counted (an `entry` row): a restart counts it again
        # from there (recovery.restore_trades), reading only those rows.
        self.journal = journal
        self.entries: list[datetime] = []
        self.opens: list[datetime] = []
        self._next_prune: datetime | None = None
        # The counts as of `counted_at`, valid for the day that started at `day_from` until `due`.
        self.trades_today = self.trades_last_hour = self.opened_today = self.opened_week = 0
        self.counted_at: datetime | None = None
        self.due: datetime | None = None
        self.day_from: datetime | None = None

    def record_entry(self, now: datetime, opens_position: bool) -> None:
        self.entries.append(now)
        if opens_position:
            self.opens.append(now)
        self.due = None
        if self.journal is not None:
            self.journal.append("entry", now, None, {"opens_position": opens_position})

    def restore(self, entries: list[datetime], opens: list[datetime]) -> None:
        """Entries and position openings from before a restart (journal order, oldest first)."""
        self.entries[:0] = entries
        self.opens[:0] = opens
        self.due = self._next_prune = None

    def fresh(self, now: datetime, day_start: datetime | None) -> bool:
        """Whether the counts of the last `refresh` still hold at `now` for this venue day."""
        due = self.due
        # `counted_at <= now` too: a clock set back would bring aged-out trades back in the hour.
        return due is not None and self.counted_at <= now < due and day_start is self.day_from

    def refresh(self, now: datetime, day_start: datetime, week_start: datetime) -> None:
        """Recount for `now`, and work out when a count could next change by time alone."""
        self.prune(now)
        entries, opens = self.entries, self.opens
        since = bisect_left(entries, now - ONE_HOUR)
        self.trades_last_hour = len(entries) - since
        # The bounds in the clock's own zone, as the entries are: comparing datetimes of two zones
        # asks both for their offset at every step of a bisection (~20x slower with a ZoneInfo).
        day, week = day_start.astimezone(now.tzinfo), week_start.astimezone(now.tzinfo)
        self.trades_today = self.count_since(entries, day)
        self.opened_today = self.count_since(opens, day)
        self.opened_week = self.count_since(opens, week)
        # The portfolio's day roll is tried again from 24 h after the day's start (its own test).
        due = day_start.astimezone(timezone.utc) + ONE_DAY
        if self._next_prune < due:
            due = self._next_prune
        if since < len(entries):  # the oldest trade in the hour leaves it one tick after its hour
            due = min(due, entries[since] + ONE_HOUR + ONE_TICK)
        self.counted_at, self.due, self.day_from = now, due, day_start

    def prune(self, now: datetime) -> None:
        # Counts reach back a week at most; trimming hourly keeps the lists short without paying
        # for date arithmetic on every order.
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + ONE_HOUR
        self.due = None
        horizon = now - timedelta(days=8)
        for d in (self.entries, self.opens):
            if d and d[0] < horizon:
                del d[: bisect_left(d, horizon)]

    @staticmethod
    def count_since(times: list[datetime], since: datetime) -> int:
        return len(times) - bisect_left(times, since)
