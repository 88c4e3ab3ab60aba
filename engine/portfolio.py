"""The engine's own view of the account: positions, cash, P&L and the equity curve.

Built only from fills (never from the venue's numbers), so reconciliation can compare the two.
Day and week boundaries are in the venue's time zone.
"""
from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from .models import Fill, Position, Quote, Side
from .money import ZERO


class Portfolio:
    def __init__(self, starting_cash: Decimal, tz: str = "UTC", curve_len: int = 240) -> None:
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self.positions: dict[str, Position] = {}
        self.realized_pnl = ZERO
        self.fees = ZERO
        self.tz = ZoneInfo(tz)
        self.peak_equity = starting_cash
        # The drawdown pause measures from a peak the operator may re-base on re-arm; the
        # drawdown stop always measures from the all-time peak.
        self.pause_peak = starting_cash
        self._streak_base = 0  # closed trades before this index were acknowledged on re-arm
        self.curve: deque[tuple[datetime, Decimal]] = deque(maxlen=curve_len)
        self._day_key: object = None
        self.day_started: datetime | None = None  # midnight of the current venue day
        self.week_started: datetime | None = None  # midnight starting the current ISO week
        self._week_key: object = None
        self.day_start_equity = starting_cash
        self.week_start_equity = starting_cash
        # Running valuation, kept per mark and fill: the gate reads equity and exposure on every
        # order, and summing every position each time is the most expensive thing it would do.
        self._value = ZERO  # sum of signed quantity x mark
        self._gross = ZERO  # sum of |quantity| x mark
        self.exposure: dict[str, Decimal] = {}  # symbol -> |quantity| x mark
        self.closed_trades: list[Decimal] = []  # net P&L of each round trip, oldest first
        self._trade_pnl: dict[str, Decimal] = {}  # running net P&L of each open round trip

    # -- marks and fills ----------------------------------------------------------------------
    def mark(self, q: Quote) -> None:
        pos = self.positions.get(q.symbol)
        if pos is not None:
            self._unvalue(pos)
            # Mark at the side we would exit on: a long is worth the bid, a short costs the ask.
            pos.last_price = q.bid if pos.quantity > 0 else q.ask
            self._revalue(pos)

    def _unvalue(self, pos: Position) -> None:
        self._value -= pos.quantity * pos.last_price
        self._gross -= self.exposure.pop(pos.symbol, ZERO)

    def _revalue(self, pos: Position) -> None:
        if pos.quantity == 0:
            return
        self._value += pos.quantity * pos.last_price
        mv = abs(pos.quantity) * pos.last_price
        self.exposure[pos.symbol] = mv
        self._gross += mv

    def adopt_quantity(self, symbol: str, quantity: Decimal, quote: Quote | None) -> None:
        """The operator took the venue's quantity as the truth (reconciliation): set it, at the
        current price, without inventing a trade."""
        pos = self.positions.get(symbol)
        price = (quote.bid + quote.ask) / 2 if quote is not None else (pos.last_price if pos else ZERO)
        if pos is not None:
            self._unvalue(pos)
            self.cash += pos.quantity * pos.last_price  # the old holding leaves the books at its mark
            del self.positions[symbol]
        if quantity != 0:
            self.cash -= quantity * price
            self.restore_position(Position(symbol, quantity, price, last_price=price))

    def restore_position(self, pos: Position) -> None:
        """Put a position in place (recovery, tests, benchmarks), keeping the valuation right."""
        old = self.positions.get(pos.symbol)
        if old is not None:
            self._unvalue(old)
        self.positions[pos.symbol] = pos
        self._revalue(pos)

    def apply_fill(self, f: Fill) -> Decimal:
        """Apply one fill; returns the realized P&L it booked (before fees)."""
        pos = self.positions.get(f.symbol)
        if pos is None:
            pos = self.positions[f.symbol] = Position(f.symbol, last_price=f.price, opened_at=f.ts)
        signed = f.quantity if f.side is Side.BUY else -f.quantity
        realized = ZERO
        self._unvalue(pos)
        if pos.quantity == 0 or (pos.quantity > 0) == (signed > 0):
            new_qty = pos.quantity + signed
            pos.avg_price = (pos.avg_price * abs(pos.quantity) + f.price * f.quantity) / abs(new_qty)
            pos.quantity = new_qty
            if pos.opened_at is None:
                pos.opened_at = f.ts
        else:
            closing = min(abs(signed), abs(pos.quantity))
            direction = 1 if pos.quantity > 0 else -1
            realized = (f.price - pos.avg_price) * closing * direction
            pos.quantity += signed
            if pos.quantity != 0 and (pos.quantity > 0) != (direction > 0):
                # flipped through zero: the rest opens a new position at the fill price
                pos.avg_price = f.price
            elif pos.quantity == 0:
                pos.avg_price = ZERO
        self.cash -= signed * f.price + f.fee
        self.fees += f.fee
        pos.fees += f.fee
        pos.realized_pnl += realized
        self.realized_pnl += realized
        if pos.last_price == 0:
            pos.last_price = f.price
        self._revalue(pos)
        running = self._trade_pnl.get(f.symbol, ZERO) + realized - f.fee
        if pos.quantity == 0:
            self.closed_trades.append(running)
            self._trade_pnl.pop(f.symbol, None)
            del self.positions[f.symbol]
        else:
            self._trade_pnl[f.symbol] = running
        return realized

    # -- valuation ----------------------------------------------------------------------------
    @property
    def unrealized_pnl(self) -> Decimal:
        return sum((p.unrealized_pnl for p in self.positions.values()), ZERO)

    @property
    def equity(self) -> Decimal:
        return self.cash + self._value

    @property
    def gross_exposure(self) -> Decimal:
        return self._gross

    def open_positions(self) -> int:
        return len(self.positions)

    def roll(self, now: datetime) -> tuple[bool, bool]:
        """Move the day/week baselines when the venue's calendar day or ISO week changes.

        Returns (new day, new week), both False on the first call, so limits can reset."""
        day = now.astimezone(self.tz).date()
        if day == self._day_key:
            return False, False
        first = self._day_key is None
        self.day_started = self.day_start(now)
        self.week_started = self.day_started - timedelta(days=self.day_started.weekday())
        week = day.isocalendar()[:2]
        new_week = not first and week != self._week_key
        if not first:
            self.day_start_equity = self.equity
            if new_week:
                self.week_start_equity = self.equity
        self._day_key = day
        self._week_key = week
        return not first, new_week

    def sample(self, now: datetime) -> Decimal:
        eq = self.equity
        if eq > self.peak_equity:
            self.peak_equity = eq
        if eq > self.pause_peak:
            self.pause_peak = eq
        self.curve.append((now, eq))
        return eq

    @property
    def pnl_today(self) -> Decimal:
        return self.equity - self.day_start_equity

    @property
    def pnl_week(self) -> Decimal:
        return self.equity - self.week_start_equity

    @property
    def drawdown_pct(self) -> Decimal:
        eq = self.equity
        peak = max(self.peak_equity, eq)
        return ZERO if peak <= 0 else (peak - eq) / peak * 100

    @property
    def pause_drawdown_pct(self) -> Decimal:
        eq = self.equity
        peak = max(self.pause_peak, eq)
        return ZERO if peak <= 0 else (peak - eq) / peak * 100

    def acknowledge_losses(self) -> None:
        """The operator has seen the losing streak (re-arm): count from here."""
        self._streak_base = len(self.closed_trades)
        self.pause_peak = self.equity

    def consecutive_losses(self) -> int:
        # Walks back only over the streak: the breakers ask after every fill, and a slice of the
        # whole trade history each time grew with every trade.
        trades = self.closed_trades
        i = len(trades) - 1
        while i >= self._streak_base and trades[i] < 0:
            i -= 1
        return len(trades) - 1 - i

    def day_start(self, now: datetime) -> datetime:
        """Midnight of `now`'s day in the venue's time zone."""
        local = now.astimezone(self.tz)
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
