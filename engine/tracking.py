"""What the gate needs to remember between orders: the market's recent state per symbol, and
when trades and new positions happened."""
from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal

from .models import Quote

HUNDRED = Decimal(100)
VOLUME_WINDOW = 60.0  # seconds of traded volume the liquidity check compares against
GAP_CONFIRM_QUOTES = 3  # a new level that holds this many quotes is a gap, not a spike


class _SymbolWatch:
    __slots__ = ("quote", "good", "away", "volumes", "volume_sum")

    def __init__(self) -> None:
        self.quote: Quote | None = None
        self.good: Decimal | None = None
        self.away = 0
        self.volumes: deque[tuple[float, Decimal]] = deque()
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
        mid = (q.bid + q.ask) / 2
        if w.good is None or (w.good > 0 and abs(mid - w.good) <= w.good * self.max_jump):
            w.good = mid if mid > 0 else w.good
            w.away = 0
        else:
            # A spike reverts within a tick; a level that holds is a gap and becomes the reference.
            w.away += 1
            if w.away >= GAP_CONFIRM_QUOTES and mid > 0:
                w.good = mid
                w.away = 0
        if q.volume:
            t = q.ts.timestamp()
            w.volumes.append((t, q.volume))
            w.volume_sum += q.volume
            cutoff = t - VOLUME_WINDOW
            while w.volumes and w.volumes[0][0] < cutoff:
                w.volume_sum -= w.volumes.popleft()[1]

    def quote(self, symbol: str) -> Quote | None:
        w = self._s.get(symbol)
        return None if w is None else w.quote

    def last_good(self, symbol: str) -> Decimal | None:
        w = self._s.get(symbol)
        return None if w is None else w.good

    def recent_volume(self, symbol: str) -> Decimal | None:
        w = self._s.get(symbol)
        return None if w is None or not w.volumes else w.volume_sum


class TradeLog:
    """Entry times (for throttles) and position-opening times (for new-position limits)."""

    def __init__(self) -> None:
        self.entries: deque[datetime] = deque()
        self.opens: deque[datetime] = deque()

    def record_entry(self, now: datetime, opens_position: bool) -> None:
        self.entries.append(now)
        if opens_position:
            self.opens.append(now)

    def prune(self, now: datetime) -> None:
        horizon = now - timedelta(days=8)
        for d in (self.entries, self.opens):
            while d and d[0] < horizon:
                d.popleft()

    @staticmethod
    def count_since(times: deque[datetime], since: datetime) -> int:
        n = 0
        for t in reversed(times):
            if t < since:
                break
            n += 1
        return n
