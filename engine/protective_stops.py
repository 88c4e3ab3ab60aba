"""The protective stop every position carries: placed after an entry fills, resized with the
position, replaced new-first (never bare), and never loosened by an add.

A mixin of `OrderManager` (engine/orders.py): it reads the portfolio and sends through the
manager's own gated `send`.
"""
from __future__ import annotations

from decimal import Decimal

from .models import Order, OrderPurpose, OrderStatus, OrderType, Position, Side


def refused_for_balance(reason: str) -> bool:
    """A refusal for what the account holds: the one a second stop meets beside a first that locks
    the asset. Every venue says it in this word (Binance -2010 "insufficient balance", Bybit
    170131, Alpaca "insufficient qty available", the paper venue's own)."""
    return "insufficient" in reason.lower()


class ProtectiveStops:
    def stop_order(self, symbol: str) -> Order | None:
        pos = self.portfolio.positions.get(symbol)
        if pos is None or pos.stop_order_id is None:
            return None
        return self.working.get(pos.stop_order_id)

    async def ensure_stop(self, symbol: str, qty: Decimal | None = None) -> Order | None:
        """Make the working stop match the position: same size (or `qty`), at the position's stop
        price. Returns the stop it sent, if it sent one."""
        pos = self.portfolio.positions.get(symbol)
        if pos is None or pos.stop_price is None:
            return None
        current = self.stop_order(symbol)
        qty = abs(pos.quantity) if qty is None else qty
        if current is not None and current.remaining == qty and current.stop_price == pos.stop_price:
            return None
        if self.has_working(symbol, OrderPurpose.EXIT):
            return None  # an exit is flattening it; a stop now could flip the position
        stop = Order(self.new_id(), symbol, Side.SELL if pos.quantity > 0 else Side.BUY, OrderType.STOP,
                     qty, OrderPurpose.STOP, self.clock.now(), stop_price=pos.stop_price,
                     reason="protective stop")
        if current is not None:
            # The new stop goes first and the old one only once the venue has taken the new one
            # (`_replaced`): never bare, and a refused replacement leaves the old one in charge.
            self._replacing[stop.client_order_id] = current
        # A replacement hears the answers the venue gives as it takes the order (paper, a refusal)
        # at once, so the old stop goes in the same breath as before, or stays.
        if await self.send(stop, "system", then=self.process_events if current is not None else None):
            if stop.client_order_id in self.working:  # not refused already
                pos.stop_order_id = stop.client_order_id
            return stop
        self._replacing.pop(stop.client_order_id, None)
        self.alerts.publish("critical", "stop_refused",
                            f"{symbol}: protective stop refused ({stop.reason}); position has no stop",
                            self.clock.now())
        return None

    async def _replaced(self, new: Order, status: OrderStatus, why: str = "") -> None:
        """The venue's answer to a replacement stop: taken (working, or already trading), so the
        old stop goes; or refused, so the old one stays the position's stop."""
        old = self._replacing.pop(new.client_order_id)
        pos = self.portfolio.positions.get(new.symbol)
        if status.is_terminal and new.filled_qty == 0 and status is not OrderStatus.FILLED:
            if pos is not None and pos.stop_order_id == new.client_order_id and old.client_order_id in self.working:
                pos.stop_order_id = old.client_order_id
            if (status is OrderStatus.REJECTED and pos is not None and old.client_order_id in self.working
                    and old.remaining < abs(pos.quantity)):
                if refused_for_balance(why):
                    await self._resize_old_first(old, abs(pos.quantity), why)
                else:
                    # Refused for another reason (a filter, a price rule): it would refuse again with
                    # the old stop gone, and the position would be bare where now it is covered in part.
                    self._say_partial(old, abs(pos.quantity), f"the venue refused a stop for all of it ({why})")
            return
        if old.client_order_id in self.working and not await self.cancel(old.client_order_id, "stop replaced"):
            self.alerts.publish("critical", "stop_not_replaced",
                                f"{new.symbol}: two stops working: the venue did not cancel the old stop "
                                f"{old.client_order_id}; if both fire the position flips. Cancel it by hand",
                                self.clock.now(), client_order_id=old.client_order_id)

    async def _resize_old_first(self, old: Order, qty: Decimal, why: str) -> None:
        """The venue refused a larger stop while the old one works: a spot venue locks what a
        resting sell stop covers (Alpaca holds the shares), so a second stop for the whole
        position never fits beside the first. Kept, the old stop would leave the rest of the
        position bare for good; a moment bare while it comes off is the lesser risk."""
        symbol, now = old.symbol, self.clock.now()
        self.alerts.publish("warning", "stop_resized_old_first",
                            f"{symbol}: the venue refused a stop for {qty} beside the old one for {old.remaining} "
                            f"({why}); taking the old stop off first, then placing one for the whole position",
                            now, client_order_id=old.client_order_id)
        if not await self.cancel(old.client_order_id, "stop resized: the old one first"):
            self._say_partial(old, qty, "the venue refused a larger stop and did not cancel the old one")
            return
        await self.process_events()  # the old stop's end, so the next one is not another replacement
        if old.client_order_id in self.working:
            return  # still working at the venue (filling?): its events decide what comes next
        whole = await self.ensure_stop(symbol)
        if whole is not None and not whole.status.is_terminal:
            self._old_first[whole.client_order_id] = old.remaining

    async def _whole_stop_ended(self, whole: Order, status: OrderStatus, why: str) -> None:
        """The whole-position stop placed once the old one came off has ended. Refused for the
        balance as well (the venue holds less than the books: a fee taken in the asset, coins moved
        out), the position would stay bare; the old size fitted before, so it goes back on."""
        old_qty = self._old_first.pop(whole.client_order_id)
        pos = self.portfolio.positions.get(whole.symbol)
        if (status is not OrderStatus.REJECTED or not refused_for_balance(why) or pos is None
                or self.has_working(whole.symbol, OrderPurpose.STOP)):
            return
        again = await self.ensure_stop(whole.symbol, qty=min(old_qty, abs(pos.quantity)))
        if again is not None:
            self.alerts.publish("critical", "stop_partial",
                                f"{whole.symbol}: the stop covers {again.quantity} of {abs(pos.quantity)}: the venue "
                                f"refused a stop for all of it even with the old one off ({why}), so one for the "
                                "old size is placed again. Close the rest or move the stop",
                                self.clock.now(), client_order_id=again.client_order_id)

    def _say_partial(self, old: Order, qty: Decimal, why: str) -> None:
        self.alerts.publish("critical", "stop_partial",
                            f"{old.symbol}: the stop covers {old.remaining} of {qty}: {why}. Close the rest or move "
                            "the stop", self.clock.now(), client_order_id=old.client_order_id)

    async def cancel_orphans(self, symbol: str, why: str) -> None:
        """Cancel the stops and exits still working in a symbol that is flat: fired, a stop sells
        what the books no longer hold (a short on margin), and an exit opens a position the other
        way. Orders already filled in full (their status not heard yet) stay; a venue
        that keeps one raises a critical alert. The cancels' own events are read by the caller."""
        orphans = [cid for cid, o in self.working.items()
                   if o.symbol == symbol and o.purpose in (OrderPurpose.STOP, OrderPurpose.EXIT)
                   and o.remaining > 0]
        for cid in orphans:
            if not await self.cancel(cid, why):
                self.alerts.publish("critical", "orphan_stop",
                                    f"{symbol}: flat ({why}), but the venue did not cancel {cid}; if it fires it "
                                    f"trades what the books no longer hold. Cancel it by hand",
                                    self.clock.now(), client_order_id=cid)

    @staticmethod
    def _stop_after_entry(pos: Position, entry_stop: Decimal) -> Decimal:
        """The stop a position keeps after an entry fill: the tighter of the one it had and the
        entry's own. An add judged at its own stop must not loosen the stop of what was already
        held: taken whole, it moved the held part's loss at the stop past the caps unchecked."""
        held = pos.stop_price
        if held is None:
            return entry_stop
        return max(held, entry_stop) if pos.quantity > 0 else min(held, entry_stop)
