"""A restart's protective stops: what a position held after the restart is protected by.

A mixin of `Engine` through `RestartWiring` (engine/restart.py): the stop a holding adopted from
the venue gets, a stop the venue turned out not to have retired at once, and a position left with
no stop working given its stop back.
"""
from __future__ import annotations

import logging
from decimal import Decimal

from .models import Order, OrderPurpose, OrderStatus, Side

log = logging.getLogger("tradeconsole.engine")

HUNDRED = Decimal(100)
STOP_STEP = Decimal("0.00000001")  # the venue rounds to its own tick; finer than any of them


def dead_stop(d, o: Order | None) -> bool:
    """A journal stop the venue reports it does not have, or ended with nothing filled: no
    protection, whatever the operator answers about it later."""
    if o is None or o.purpose is not OrderPurpose.STOP:
        return False
    return d.kind == "unknown_to_venue" or (d.kind == "closed_while_down" and "book" not in d.actions)


class RestartStops:
    async def _retire_dead_stops(self, diffs) -> list[str]:
        """Stops the venue does not have stop counting as working, at once: counted, the position
        stayed bare until someone answered, while status showed it protected. The difference stays
        listed; its answer (mark closed) finds the order no longer working and places nothing, and
        the replacement protect_bare_positions places is the position's stop from then on."""
        retired = []
        for d in diffs:
            o = self.orders.working.get(d.client_order_id) if d.client_order_id else None
            if not dead_stop(d, o):
                continue
            cid = o.client_order_id
            if d.kind == "unknown_to_venue":
                # The venue said it has no such order; cancelled by id all the same, so one that
                # lands late is not left working beside its replacement (both firing would flip).
                try:
                    await self.broker.cancel(cid)
                except Exception as exc:  # noqa: BLE001 - the venue just said it has none
                    log.warning("restart: cancel of dead stop %s failed: %s", cid, exc)
                await self.orders.process_events()
            if cid in self.orders.working:
                self.orders.untrack(cid)
                o.status = OrderStatus.CANCELLED
                o.reason = f"not working at the venue at restart ({d.kind.replace('_', ' ')}); replaced"
                self.orders.record(o)
            pos = self.portfolio.positions.get(o.symbol)
            if pos is not None and pos.stop_order_id == cid:
                pos.stop_order_id = None  # its stop_price stays: the stop the journal meant
            retired.append(cid)
        return retired

    async def protect_bare_positions(self) -> None:
        """Every position held with no stop working and no exit on its way gets its stop back,
        with an alert. A kill between an exit's taking the stop off and the exit's reaching the
        venue left the position bare; the answer to that difference (mark the exit closed)
        placed nothing, and only a passive NO STOP cell said so. A holding whose quantity is
        still in question waits for its answer (adopting it places its stop)."""
        in_question = {d.symbol for d in self.reconciliation if d.kind == "quantity_mismatch" and not d.resolved}
        for symbol, pos in list(self.portfolio.positions.items()):
            if (symbol in in_question or pos.quantity == 0 or self.orders.stop_order(symbol) is not None
                    or self.orders.has_working(symbol, OrderPurpose.EXIT)):
                continue
            known = (pos.stop_price, f"its stop {pos.stop_price} from the journal") if pos.stop_price else None
            plan = self._adopted_stop_plan(symbol, known)
            if plan is None:
                continue
            stop, why, past = plan
            pos.stop_price = stop
            await self.orders.ensure_stop(symbol)  # gated and journaled; a refusal raises stop_refused
            placed = self.orders.stop_order(symbol)
            if placed is not None and placed.stop_price == stop:
                self.alerts.publish("critical" if past else "warning", "stop_restored",
                                    f"{symbol}: held {pos.quantity} with no stop working at the venue; protective "
                                    f"stop {stop} placed ({why})", self.clock.now(),
                                    client_order_id=placed.client_order_id)

    # -- the protective stop of what is adopted from the venue ---------------------------------
    def _mark(self, symbol: str, long: bool) -> Decimal | None:
        """The price a stop on this holding would trigger against, or None when there is none."""
        q = self.quotes.get(symbol)
        if q is not None:
            return q.bid if long else q.ask
        pos = self.portfolio.positions.get(symbol)
        return pos.last_price if pos is not None and pos.last_price > 0 else None

    def _default_stop(self, ref: Decimal, long: bool) -> Decimal:
        frac = self.profile.risk.stop_loss_default_pct / HUNDRED
        return (ref * (1 - frac) if long else ref * (1 + frac)).quantize(STOP_STEP)

    def _working_stop(self, symbol: str) -> str | None:
        pos = self.portfolio.positions.get(symbol)
        if pos is not None and pos.stop_order_id in self.orders.working:
            return pos.stop_order_id
        return next((o.client_order_id for o in self.orders.working.values()
                     if o.symbol == symbol and o.purpose is OrderPurpose.STOP), None)

    def _known_stop(self, symbol: str, qty: Decimal) -> tuple[Decimal, str] | None:
        """The stop the journal meant for this holding, if it knows one (read before adopting)."""
        if qty == 0:
            return None
        long = qty > 0
        pos = self.portfolio.positions.get(symbol)
        if pos is not None and pos.stop_price is not None and (pos.quantity > 0) == long:
            return pos.stop_price, f"the position's stop {pos.stop_price} from the journal"
        # A stop or an entry journaled before the restart: the entry's protective stop is the one
        # its fill would have placed, had the engine been up to hear it.
        named = {x.client_order_id for x in self.reconciliation if x.symbol == symbol and x.client_order_id}
        cands = [o for o in self.orders.orders.values() if o.symbol == symbol
                 and (o.client_order_id in self.orders.working or o.client_order_id in named)]
        stops = [(o.stop_price, f"the journal's working stop {o.client_order_id}") for o in cands
                 if o.purpose is OrderPurpose.STOP and o.stop_price is not None
                 and o.client_order_id in self.orders.working and (o.side is Side.SELL) == long]
        stops += [(o.protective_stop, f"the protective stop of entry {o.client_order_id} from the journal")
                  for o in cands if o.purpose is OrderPurpose.ENTRY and o.protective_stop is not None
                  and (o.side is Side.BUY) == long]
        if not stops:
            return None
        # Several: the tightest bounds the loss most.
        return max(stops) if long else min(stops)

    def _adopted_stop_plan(self, symbol: str, known: tuple[Decimal, str] | None) -> tuple[Decimal, str, bool] | None:
        """(stop, why, past): where the adopted position's stop goes. `past`: the market has
        already gone through the stop it should have had (a stop there would fire at once, or
        the venue refuse it), so it is placed the default distance from the market instead."""
        pos = self.portfolio.positions.get(symbol)
        if pos is None:
            return None  # flat, or dust: nothing to protect
        long = pos.quantity > 0
        pct = self.profile.risk.stop_loss_default_pct
        if known is not None:
            stop, why = known
        else:
            stop = self._default_stop(pos.avg_price, long)
            why = f"no stop known: stop_loss_default_pct {pct} % from the average price {pos.avg_price}"
        mark = self._mark(symbol, long)
        if mark is None or not (mark <= stop if long else mark >= stop):
            return stop, why, False
        return (self._default_stop(mark, long),
                f"the market ({mark}) is already past {stop} ({why}): placed {pct} % from the market instead", True)

    async def _protect_adopted(self, symbol: str, old_stop: str | None, stop: Decimal, why: str, past: bool) -> None:
        pos = self.portfolio.positions[symbol]
        pos.stop_price = stop
        if old_stop in self.orders.working:
            pos.stop_order_id = old_stop  # so ensure_stop resizes it: new stop first, then the old goes
        if self.orders.has_working(symbol, OrderPurpose.EXIT):
            self.alerts.publish("critical", "adopted_stop",
                                f"{symbol}: adopted {pos.quantity} from the venue; an exit is working, so no stop "
                                f"was placed (it would be {stop}: {why})", self.clock.now())
            return
        await self.orders.ensure_stop(symbol)  # gated and journaled like every stop
        working = self.orders.stop_order(symbol)
        if working is None or working.stop_price != stop or working.remaining != abs(pos.quantity):
            return  # refused: ensure_stop has raised the critical stop_refused alert
        what = f"{symbol}: adopted {pos.quantity} from the venue; protective stop {stop} placed ({why})"
        if past:
            what += "; close it by hand if it should be out already"
        self.alerts.publish("critical" if past else "warning", "adopted_stop", what, self.clock.now(),
                            client_order_id=working.client_order_id)

    def _arm_adopted_entry(self, vo: Order) -> str | None:
        """An entry found working at the venue carries no protective stop (the venue does not know
        it): give it the default one, so its fill places a stop like any entry's. Only an order
        that adds to the engine's holding: one that reduces it is an exit, and a stop on the far
        side would close the rest at once."""
        if vo.purpose is not OrderPurpose.ENTRY or vo.protective_stop is not None:
            return None
        held = self.orders.position_qty(vo.symbol)
        long = vo.side is Side.BUY
        if held != 0 and (held > 0) != long:
            return None
        ref = vo.limit_price if vo.limit_price is not None else self._mark(vo.symbol, not long)
        if ref is None:
            return f"no price for {vo.symbol} yet: adopt it once its quotes arrive (its stop is set from them)"
        vo.protective_stop = self._default_stop(ref, long)
        return None
