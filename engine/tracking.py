"""What the gate needs to remember between orders: the market's recent state per symbol, and
when trades and new positions happened."""
from __future__ import annotations

from bisect import bisect_left
from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal

from .models import Quote

HUNDRED = Decimal(100)
VOLUME_WINDOW = timedelta(seconds=60)  # traded volume the liquidity check compares against
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


class MarketWatch:
    def __init__(self, max_jump_pct: Decimal) -> None:
        self.max_jump = max_jump_pct / HUNDRED
        self._s: dict[str, _SymbolWatch] = {}
        self.last_quote_at: datetime | None = None

    def update(self, q: Quote) -> None:
        w = self._s.get(q.symbol)
        if w is None:
            w = self._s[q.symbol] = _SymbolWatch()
        w.quote = q
        self.last_quote_at = q.ts
        twice_mid = q.bid + q.ask
        w.twice_mid = twice_mid
        w.mid = None
        if w.good is None or w.lo <= twice_mid <= w.hi:
            if twice_mid > 0 and twice_mid != w.twice_good:
                self._accept(w, twice_mid)
            w.away = 0
        else:
            # A spike reverts within a tick; a level that holds is a gap and becomes the reference.
            w.away += 1
            if w.away >= GAP_CONFIRM_QUOTES and twice_mid > 0:
                self._accept(w, twice_mid)
                w.away = 0
        vol = q.volume
        if vol:
            t = q.ts
            w.volumes.append((t, vol))
            w.volume_sum += vol
            cutoff = t - VOLUME_WINDOW
            vols = w.volumes
            while vols[0][0] < cutoff:
                w.volume_sum -= vols.popleft()[1]

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

    def mid(self, symbol: str) -> Decimal | None:
        """Mid of the symbol's latest quote, halved once per quote whoever asks (the gate, on
        every order in that symbol), and not at all when it is the accepted reference price."""
        w = self._s.get(symbol)
        if w is None or w.quote is None:
            return None
        if w.mid is None:
            w.mid = w.good if w.twice_mid == w.twice_good else w.twice_mid / 2
        return w.mid

    def last_good(self, symbol: str) -> Decimal | None:
        w = self._s.get(symbol)
        return None if w is None else w.good

    def recent_volume(self, symbol: str) -> Decimal | None:
        w = self._s.get(symbol)
        return None if w is None or not w.volumes else w.volume_sum


class TradeLog:
    """Entry times (for throttles) and position-opening times (for new-position limits).

    Sorted lists searched by bisection: the gate asks four counts per order, and walking the
    day's trades each time grew with every trade."""

    def __init__(self) -> None:
        self.entries: list[datetime] = []
        self.opens: list[datetime] = []
        self._next_prune: datetime | None = None

    def record_entry(self, now: datetime, opens_position: bool) -> None:
        self.entries.append(now)
        if opens_position:
            self.opens.append(now)

    def prune(self, now: datetime) -> None:
        # Counts reach back a week at most; trimming hourly keeps the lists short without paying
        # for date arithmetic on every order.
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + timedelta(hours=1)
        horizon = now - timedelta(days=8)
        for d in (self.entries, self.opens):
            if d and d[0] < horizon:
                del d[: bisect_left(d, horizon)]

    @staticmethod
    def count_since(times: list[datetime], since: datetime) -> int:
        return len(times) - bisect_left(times, since)
