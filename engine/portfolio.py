"""The engine's own view of the account: positions, cash, P&L and the equity curve.

Built only from fills (never from the venue's numbers), so reconciliation can compare the two.
Day and week boundaries are in the venue's time zone.

Dust: a remainder a reducing fill leaves below every order the venue would take (a fee paid in
the bought asset truncates the sale at the venue's step) is set aside in `dust`: still valued in
equity and P&L at its mark, but no longer a position (no stop is placed for it, the gate does
not count it, close-all and the strategy do not try to sell it). The venue says what is too
small (`is_dust`, from the broker's market minimums); without it nothing is dust.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable
from zoneinfo import ZoneInfo

from .models import Fill, Position, Quote, Side
from .money import ZERO


@dataclass(slots=True)
class TradeTotals:
    """Every round trip closed on this account, across restarts, as analytics' `trade_stats`
    counts them (a net above 0 wins, below 0 loses). `closed_trades` cannot stand in: a restart
    keeps only its tail (the checkpoint's, enough for the losing streak), and the performance
    screen counted that tail, showing 50 trades of 228 and hiding most of the loss."""
    count: int = 0
    wins: int = 0
    losses: int = 0
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO  # the losing trades' nets, summed, as a positive amount
    largest_win: Decimal = ZERO
    largest_loss: Decimal = ZERO  # the most negative net (0 with no loss)

    def add(self, net: Decimal) -> None:
        self.count += 1
        if net > 0:
            self.wins += 1
            self.gross_profit += net
            self.largest_win = max(self.largest_win, net)
        elif net < 0:
            self.losses += 1
            self.gross_loss -= net
            self.largest_loss = min(self.largest_loss, net)

    def record(self) -> dict:
        return {"count": self.count, "wins": self.wins, "losses": self.losses, "gross_profit": self.gross_profit,
                "gross_loss": self.gross_loss, "largest_win": self.largest_win, "largest_loss": self.largest_loss}

    @classmethod
    def from_record(cls, d: dict) -> "TradeTotals":
        return cls(int(d["count"]), int(d["wins"]), int(d["losses"]), Decimal(d["gross_profit"]),
                   Decimal(d["gross_loss"]), Decimal(d["largest_win"]), Decimal(d["largest_loss"]))


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
        self.streak_base = 0  # closed trades before this index were acknowledged on re-arm
        # The losing streak, counted forward as trades close: (trade list, base, trades seen, streak).
        self._streak: tuple[object, int, int, int] = (None, 0, 0, 0)
        self.curve: deque[tuple[datetime, Decimal]] = deque(maxlen=curve_len)
        self._day_key: object = None
        self.day_started: datetime | None = None  # midnight of the current venue day
        self.week_started: datetime | None = None  # midnight starting the current ISO week
        self._week_key: object = None
        self.day_start_equity = starting_cash
        self.week_start_equity = starting_cash
        self._period_begun: str | None = None  # a roll's news for the engine (`roll_period`)
        # Running valuation, kept per mark and fill: the gate reads equity and exposure on every
        # order, and summing every position each time is the most expensive thing it would do.
        self._value = ZERO  # sum of signed quantity x mark
        self._gross = ZERO  # sum of |quantity| x mark
        self.exposure: dict[str, Decimal] = {}  # symbol -> |quantity| x mark
        self.closed_trades: list[Decimal] = []  # net P&L of each round trip, oldest first
        self.totals = TradeTotals()  # of every round trip, where closed_trades may be a tail
        self._trade_pnl: dict[str, Decimal] = {}  # running net P&L of each open round trip
        # Remainders below the venue's minimum order, per symbol (module docstring); valued apart
        # from `_value` so the exposure figures the gate reads never carry them.
        self.dust: dict[str, Position] = {}
        self._dust_value = ZERO
        self.is_dust: Callable[[str, Decimal, Decimal], bool] | None = None  # (symbol, |qty|, price), venue-set

    # -- marks and fills ----------------------------------------------------------------------
    def mark(self, q: Quote) -> None:
        pos = self.positions.get(q.symbol)
        if pos is not None:
            self._unvalue(pos)
            # Mark at the side we would exit on: a long is worth the bid, a short costs the ask.
            pos.last_price = q.bid if pos.quantity > 0 else q.ask
            self._revalue(pos)
        if self.dust:
            d = self.dust.get(q.symbol)
            if d is not None:
                self._dust_value -= d.quantity * d.last_price
                d.last_price = q.bid if d.quantity > 0 else q.ask
                self._dust_value += d.quantity * d.last_price

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
        d = self.take_dust(symbol)  # the venue's quantity is the whole holding, dust included
        if d is not None:
            pos = self.positions.get(symbol)
        if pos is not None:
            self._unvalue(pos)
            self.cash += pos.quantity * pos.last_price  # the old holding leaves the books at its mark
            del self.positions[symbol]
        if quantity != 0:
            self.cash -= quantity * price
            held = Position(symbol, quantity, price, last_price=price)
            if price > 0 and self.is_dust is not None and self.is_dust(symbol, abs(quantity), price):
                self.restore_dust(held)  # nothing could sell it: dust, not a position to protect
            else:
                self.restore_position(held)

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
        if pos is None and f.symbol in self.dust and (self.dust[f.symbol].quantity > 0) != (f.side is Side.BUY):
            pos = self.take_dust(f.symbol)  # a sale of the dust itself (a swept pile) reduces it
        if pos is None:
            pos = self.positions[f.symbol] = Position(f.symbol, last_price=f.price, opened_at=f.ts,
                                                      opening_order=f.client_order_id)
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
                pos.opening_order = f.client_order_id
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
            self._close_trade(f.symbol, running)
            del self.positions[f.symbol]
        elif left_over(signed, pos.quantity) and self.is_dust is not None \
                and self.is_dust(f.symbol, abs(pos.quantity), f.price):
            # What is left cannot be sold: the round trip is over, the remainder is dust.
            self._close_trade(f.symbol, running)
            self._set_aside(pos, f.price)
        else:
            self._trade_pnl[f.symbol] = running
        return realized

    def credit_opening(self, symbol: str, filled: str, root: str) -> None:
        """A position opened by `filled`, the continuation of order `root` (a limit's market
        fallback), was opened by `root`: whose decision it was (the operator's or the strategy's)
        goes with the order that made it, not with the id its last part happened to fill under."""
        pos = self.positions.get(symbol)
        if pos is not None and pos.opening_order == filled:
            pos.opening_order = root

    def _close_trade(self, symbol: str, net: Decimal) -> None:
        self.closed_trades.append(net)
        self.totals.add(net)
        self._trade_pnl.pop(symbol, None)

    def open_trade_pnl(self) -> dict[str, Decimal]:
        """Running net P&L of each open round trip (for the checkpoint)."""
        return dict(self._trade_pnl)

    def restore_trade_pnl(self, pnl: dict[str, Decimal]) -> None:
        """The open round trips' running nets as a checkpoint kept them: without them a trade
        held across a restart closed with only what it made after it (its entry fee lost), on
        the screen and in the losing streak, unlike the journal's own round trip."""
        self._trade_pnl = dict(pnl)

    # -- dust ---------------------------------------------------------------------------------
    def _set_aside(self, pos: Position, price: Decimal) -> None:
        """Move a position's remainder into the symbol's dust pile. A pile that has grown past the
        venue's minimum (many round trips) is a position again: sellable, listed without a stop."""
        self._unvalue(pos)
        del self.positions[pos.symbol]
        qty, avg, opened = pos.quantity, pos.avg_price, pos.opened_at
        pile = self.dust.pop(pos.symbol, None)
        if pile is not None:
            self._dust_value -= pile.quantity * pile.last_price
            qty += pile.quantity
            avg = ZERO if qty == 0 else (pile.avg_price * pile.quantity + pos.avg_price * pos.quantity) / qty
            opened = pile.opened_at
        rest = Position(pos.symbol, qty, avg, last_price=pos.last_price, opened_at=opened)
        if qty != 0 and self.is_dust is not None and not self.is_dust(pos.symbol, abs(qty), price):
            self.restore_position(rest)
        else:
            self.restore_dust(rest)

    def restore_dust(self, d: Position) -> None:
        """Put a dust pile in place (set aside, or rebuilt from the journal), replacing the symbol's."""
        old = self.dust.pop(d.symbol, None)
        if old is not None:
            self._dust_value -= old.quantity * old.last_price
        if d.quantity != 0:
            self.dust[d.symbol] = d
            self._dust_value += d.quantity * d.last_price

    def take_dust(self, symbol: str) -> Position | None:
        """The symbol's dust pile back among the positions (a sale of it, the venue's quantity
        adopted); returns that position, or None when there was no dust."""
        d = self.dust.pop(symbol, None)
        if d is None:
            return None
        self._dust_value -= d.quantity * d.last_price
        pos = self.positions.get(symbol)
        if pos is None:
            self.restore_position(d)
            return d
        self._unvalue(pos)
        qty = pos.quantity + d.quantity
        pos.avg_price = ZERO if qty == 0 else (pos.avg_price * pos.quantity + d.avg_price * d.quantity) / qty
        pos.quantity = qty
        self._revalue(pos)
        return pos

    def dust_quantity(self, symbol: str) -> Decimal:
        d = self.dust.get(symbol)
        return ZERO if d is None else d.quantity

    # -- valuation ----------------------------------------------------------------------------
    @property
    def unrealized_pnl(self) -> Decimal:
        return sum((p.unrealized_pnl for p in self.positions.values()), ZERO) + sum(
            (d.unrealized_pnl for d in self.dust.values()), ZERO)

    @property
    def equity(self) -> Decimal:
        return self.cash + self._value + self._dust_value

    @property
    def gross_exposure(self) -> Decimal:
        return self._gross

    def open_positions(self) -> int:
        return len(self.positions)

    def roll(self, now: datetime) -> tuple[bool, bool]:
        """Move the day/week baselines when the venue's calendar day or ISO week changes.

        Returns (new day, new week), both False on the first call of a fresh portfolio (its
        baselines are the starting cash), so limits can reset. After `resume` a roll is not a
        first call: the day the checkpoint kept is compared like any other."""
        day = now.astimezone(self.tz).date()
        if day == self._day_key:
            return False, False
        first = self._day_key is None
        week = day.isocalendar()[:2]
        new_week = not first and week != self._week_key
        self._enter_day(now)
        if not first:
            self.day_start_equity = self.equity
            if new_week:
                self.week_start_equity = self.equity
            # Kept until the engine takes it: a command's gate context may roll between batches,
            # and the day breakers must still be reset for that day (`roll_period`).
            self._period_begun = "week" if new_week or self._period_begun == "week" else "day"
        return not first, new_week

    def roll_period(self, now: datetime) -> str | None:
        """Roll, then return the period that began since the last call ("day", "week" or None),
        whoever made the roll."""
        self.roll(now)
        begun, self._period_begun = self._period_begun, None
        return begun

    def resume(self, day: datetime, day_start_equity: Decimal, week_start_equity: Decimal) -> None:
        """Baselines a checkpoint kept, for the venue day containing `day` and its week. A later
        roll into another day re-bases them, exactly as if the engine had run through."""
        self.day_start_equity = day_start_equity
        self.week_start_equity = week_start_equity
        self._enter_day(day)

    def _enter_day(self, now: datetime) -> None:
        self.day_started = self.day_start(now)
        self.week_started = self.day_started - timedelta(days=self.day_started.weekday())
        self._day_key = self.day_started.date()
        self._week_key = self._day_key.isocalendar()[:2]

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

    def acknowledge_losses(self, *, streak: bool, pause: bool) -> None:
        """The operator re-armed a tripped losing streak (count from here) or drawdown pause
        (measure from here)."""
        if streak:
            self.streak_base = len(self.closed_trades)
        if pause:
            self.pause_peak = self.equity

    def consecutive_losses(self) -> int:
        # Counted forward over the trades closed since the last call: the breakers ask after
        # every fill, and walking back over the streak grew with every losing trade (a strategy
        # that only loses made it quadratic in the session's length).
        trades = self.closed_trades
        n = len(trades)
        owner, base, seen, streak = self._streak
        if owner is not trades or base != self.streak_base or seen > n:
            # A new list (restored at start) or a re-arm: count again from the base.
            base, seen, streak = self.streak_base, self.streak_base, 0
        for i in range(max(seen, base), n):
            streak = streak + 1 if trades[i] < 0 else 0
        self._streak = (trades, base, n, streak)
        return streak

    def day_start(self, now: datetime) -> datetime:
        """Midnight of `now`'s day in the venue's time zone."""
        local = now.astimezone(self.tz)
        return local.replace(hour=0, minute=0, second=0, microsecond=0)


def left_over(signed: Decimal, after: Decimal) -> bool:
    """True when a fill of `signed` quantity reduced a position that is still on the same side
    (`after`), i.e. it left a remainder rather than opening, adding or flipping."""
    return after != 0 and (signed > 0) != (after > 0)
