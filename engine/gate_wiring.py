"""The engine's side of the risk gate and the breakers: the request and context each decision
reads, its journal row, and the breakers' transitions into trading states.

A mixin of `Engine` (engine/engine.py). The checks themselves live in engine/risk/; this is
where the engine's state is gathered for them, once per decision and without copying.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Mapping

from .models import Order, OrderPurpose, Side
from .money import ZERO
from .risk.breakers import BreakerState, is_rise
from .risk.gate import Decision, OrderRequest, RiskContext, TradingState

ONE_DAY = timedelta(days=1)
# Module constants: an enum member read through its class costs a lookup on every order.
ENTRY, BUY = OrderPurpose.ENTRY, Side.BUY


class GateWiring:
    def _request(self, order: Order, source: str) -> OrderRequest:
        sig = self._signals.get(order.parent_id or order.client_order_id)
        symbol, side, purpose = order.symbol, order.side, order.purpose
        price = order.limit_price
        if price is None:
            q = self.quotes.get(symbol)
            if q is not None:
                price = q.ask if side is BUY else q.bid
            else:
                price = order.stop_price or ZERO
        # Positional: keyword calls cost microseconds on the gate's budget.
        return OrderRequest(
            symbol, side, order.quantity, price,
            order.protective_stop if purpose is ENTRY else order.stop_price, purpose, source,
            sig.edge if sig else 1.0, sig.confidence if sig else 1.0, sig.strategy if sig else "",
            self.strategy.readiness(symbol), order.parent_id is not None)

    def _blank_context(self) -> RiskContext:
        return RiskContext(
            now=self.clock.now(), trading_state=self.state, equity=ZERO, cash=ZERO, day_start_equity=ZERO,
            pnl_today=ZERO, open_positions=0, position_qty=ZERO, gross_exposure=ZERO, trades_today=0,
            trades_last_hour=0, seconds_since_last_trade=None, mode=self.profile.mode)

    def _context(self, req: OrderRequest) -> RiskContext:
        """Refill the engine's context record for this decision.

        One record per purpose, refilled in place: the gate reads it synchronously and keeps
        nothing of it (check values are copied), and building a 26-field object per order cost
        more than all the checks' arithmetic."""
        now = self.clock.now()
        p = self.portfolio
        if req.purpose is not ENTRY:
            # Exits and stops are judged only by the trading state and the position they
            # reduce (engine/risk/checks_state.py); the account-wide numbers are not read.
            c = self._exit_ctx
            c.now = now
            c.trading_state = self.state
            c.state_reason = self.halt_reason
            c.cash = p.cash
            c.open_positions = len(p.positions)
            c.position_qty = self.orders.position_qty(req.symbol)
            return c
        log_ = self.trades
        if not log_.fresh(now, p.day_started):
            if p.day_started is None or now - p.day_started >= ONE_DAY:
                p.roll(now)  # a command between batches may be the first to see a new day
            log_.refresh(now, p.day_started, p.week_started)
        symbol = req.symbol
        c = self._entry_ctx
        c.now = now
        c.trading_state = self.state
        c.state_reason = self.halt_reason
        c.equity = eq = p.equity
        c.cash = p.cash
        c.day_start_equity = p.day_start_equity
        c.pnl_today = eq - p.day_start_equity  # = p.pnl_today, without summing equity again
        c.open_positions = len(p.positions)
        held = p.positions.get(symbol)
        c.position_qty = ZERO if held is None else held.quantity
        c.position_avg = ZERO if held is None else held.avg_price
        c.position_stop = None if held is None else held.stop_price
        c.gross_exposure = p.gross_exposure
        c.trades_today = log_.trades_today
        c.trades_last_hour = log_.trades_last_hour
        entries = log_.entries
        c.seconds_since_last_trade = (now - entries[-1]).total_seconds() if entries else None
        c.week_start_equity = p.week_start_equity
        c.pnl_week = eq - p.week_start_equity
        c.symbol_exposure = p.exposure.get(symbol, ZERO)
        c.exposure_by_symbol = p.exposure
        c.new_positions_today = log_.opened_today
        c.new_positions_week = log_.opened_week
        w = self.market.watch(symbol)
        if w is None:
            c.quote = c.mid = c.quote_age_seconds = c.last_good_price = c.recent_volume = None
        else:
            c.quote = q = w.quote
            c.mid = w.mid if w.mid is not None else w.halve()
            c.quote_age_seconds = (now - q.ts).total_seconds()
            c.last_good_price = w.good
            c.recent_volume = w.volume_sum if w.volumes else None
        c.venue_connected = self.broker.connected
        c.venue_environment = self.broker_environment
        working = self.orders.working_entries
        c.working_entries = len(working)
        if working:
            self._count_working_entries(c, symbol, working)
        return c

    def _count_working_entries(self, c: RiskContext, symbol: str, working: Mapping[str, Order]) -> None:
        """Entries sent and not yet filled take their room now: counted as the positions, the
        exposure and the cash they will take. Left out, a limit entry resting for its timeout
        (or any order the venue has not filled yet) was invisible to the next decision, and
        entries on several symbols at once each passed the open-position, capital and reserve
        limits that together they broke."""
        held = self.portfolio.positions
        by_symbol = dict(c.exposure_by_symbol)
        total = buys = ZERO
        opening: set[str] = set()
        here = ZERO
        for o in working.values():
            rest = o.quantity - o.filled_qty  # the filled part is in the portfolio already
            if rest <= ZERO:
                continue
            price = o.limit_price
            if price is None:
                q = self.quotes.get(o.symbol)
                price = (q.ask if o.side is BUY else q.bid) if q is not None else (o.stop_price or ZERO)
            value = rest * price
            total += value
            by_symbol[o.symbol] = by_symbol.get(o.symbol, ZERO) + value
            if o.side is BUY:
                buys += value
            if o.symbol not in held:
                opening.add(o.symbol)
            if o.symbol == symbol:
                here += rest if o.side is BUY else -rest
        c.gross_exposure += total
        c.exposure_by_symbol = by_symbol
        c.symbol_exposure = by_symbol.get(symbol, ZERO)
        # The request's own symbol, when an entry of it is working, is in `opening` and its
        # quantity (so the check adds no second +1 for it).
        c.open_positions += len(opening)
        c.position_qty += here
        c.cash -= buys * (1 + self._fee_rate)

    def _entry_room(self, symbol: str, side: Side) -> Decimal:
        """Quantity an entry may still add in `symbol` at today's price under the position cap."""
        q = self.quotes.get(symbol)
        if q is None:
            return ZERO
        price = q.ask if side is BUY else q.bid
        p = self.portfolio
        cap = min(p.equity * self.profile.risk.max_position_pct / 100, self.profile.sizing.max_order_usd)
        held = abs(self.orders.position_qty(symbol)) * price
        room = (cap - held) / price if price > 0 else ZERO
        return max(ZERO, room.quantize(Decimal("0.000001"), rounding=ROUND_DOWN))

    def _authorize(self, order: Order, source: str) -> Decision:
        req = self._request(order, source)
        decision = self.gate.evaluate(req, self._context(req))
        self._journal_decision(order, req, decision, "")
        return decision

    def _journal_decision(self, order: Order, req: OrderRequest, d: Decision, sizing: str) -> None:
        self.journal.append("decision", self.clock.now(), order.client_order_id, {
            "approved": d.approved, "failed": d.failed, "purpose": req.purpose, "source": req.source,
            "symbol": req.symbol, "side": req.side, "quantity": req.quantity, "price": req.price,
            "stop": req.stop_price, "edge": req.edge, "confidence": req.confidence, "sizing": sizing,
            "checks": d.checks_as_dicts()})

    # -- breakers -----------------------------------------------------------------------------
    def _evaluate_breakers(self, now: datetime) -> None:
        for b in self.breakers:
            t = b.evaluate()
            if t is None:
                continue
            self.journal.append("breaker", now, b.name, {"old": t.old, "new": t.new, "value": b.value, "limit": b.limit})
            if not is_rise(t):
                if t.old is BreakerState.TRIPPED:
                    self._apply_breaker_state()  # an auto-reset breaker cleared itself
                continue
            if b.unit == "latch":
                continue  # the halt itself already alerted and latched
            sev = "critical" if t.new in (BreakerState.CRITICAL, BreakerState.TRIPPED) else "warning"
            self.alerts.publish(sev, "breaker", f"{b.name} {t.new.value}: {b.text().strip()}", now, breaker=b.name)
            if t.new is BreakerState.TRIPPED:
                self.trips += 1  # a re-arm asked for before this trip must not reset it
                if b.action == "halt":
                    self.halt(f"breaker:{b.name}", f"{b.name} tripped")
                else:
                    self._apply_breaker_state()

    def _show_latch(self) -> None:
        """The manual-halt light follows the latch at once: read with the other breakers (on a
        fill, a move, an idle interval) it lit seconds after the header said HALTED."""
        now = self.clock.now()
        for b in self.breakers:
            if b.unit != "latch":
                continue
            t = b.evaluate()
            if t is not None:
                self.journal.append("breaker", now, b.name, {"old": t.old, "new": t.new, "value": b.value,
                                                             "limit": b.limit})

    def _apply_breaker_state(self) -> None:
        """The trading state below the latch: reduce-only while a blocking breaker is tripped or a
        reconciliation difference is unanswered (restart.py), else active. Every path that lifts a
        restriction (day roll, an auto-reset breaker clearing, re-arm, an answered difference) comes
        through here, so none can lift one that another still holds; the reasons are shown as the
        state's reason (`halt_reason`, which the header and status print)."""
        if self.state is TradingState.HALTED:
            return
        why = [f"{b.name} tripped" for b in self.breakers if b.state is BreakerState.TRIPPED and b.action == "block"]
        held = self.reconcile_hold()
        if held:
            why.append(held)
        self.state = TradingState.REDUCE_ONLY if why else TradingState.ACTIVE
        self.halt_reason = "; ".join(why)

    def new_period(self, period: str) -> None:
        """A new venue day (or week, which is also a new day) resets the breakers tied to it."""
        resets = {"day"} if period == "day" else {"day", "week"}
        for b in self.breakers:
            if b.reset_on in resets and b.state is not BreakerState.ARMED:
                old = b.state
                b.reset()
                self.journal.append("breaker", self.clock.now(), b.name, {"old": old, "new": b.state, "reset": period})
        self._apply_breaker_state()
