"""Checks on the engine's and the venue's state: the latch, reduce-only, venue health."""
from __future__ import annotations

from decimal import Decimal

from ..models import OrderPurpose, Side
from .gate import Outcome, OrderRequest, PreTradeCheck, RiskContext, TradingState

ALL_PURPOSES = frozenset(OrderPurpose)
EXITS = frozenset({OrderPurpose.EXIT, OrderPurpose.STOP})
# Module constants: an enum member read through its class costs a lookup on every order.
ENTRY, BUY, SELL = OrderPurpose.ENTRY, Side.BUY, Side.SELL
ACTIVE, REDUCE_ONLY = TradingState.ACTIVE, TradingState.REDUCE_ONLY
ZERO = Decimal(0)  # Decimals compare faster with a Decimal than with an int


class TradingStateCheck(PreTradeCheck):
    """The halt latch and reduce-only mode. Operator exits still pass a halt: close-all must work."""

    name = "trading_state"
    applies_to = ALL_PURPOSES

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        state = ctx.trading_state
        if state is ACTIVE:
            ok = True
        elif state is REDUCE_ONLY:
            ok = req.purpose is not ENTRY
        else:
            ok = req.purpose in EXITS and req.source in ("operator", "system")
        if state is ACTIVE:
            return (ok, "state {state.value}, {purpose.value} from {source}",
                    ("state", "purpose", "source"), (state, req.purpose, req.source))
        # Not active: the record says what holds it (a breaker, the latch, reconciliation), or a
        # refusal read "state reduce_only" long after the loss behind it had partly come back.
        return (ok, "state {state.value} ({why}), {purpose.value} from {source}",
                ("state", "why", "purpose", "source"), (state, ctx.state_reason or "no reason recorded",
                                                        req.purpose, req.source))


class ReducesPositionCheck(PreTradeCheck):
    """An exit or stop may only shrink the position it belongs to, never open or flip one."""

    name = "reduces_position"
    applies_to = EXITS

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        pos = ctx.position_qty
        opposite = (pos > ZERO and req.side is SELL) or (pos < ZERO and req.side is BUY)
        ok = opposite and req.quantity <= abs(pos)
        return (ok, "{side.value} {quantity} against position {position}",
                ("side", "quantity", "position"), (req.side, req.quantity, pos))


class VenueHealthCheck(PreTradeCheck):
    """Connected, account not blocked, and the venue is the environment the profile's mode says."""

    name = "venue_health"

    def judge(self, req: OrderRequest, ctx: RiskContext) -> Outcome:
        env_ok = ctx.venue_environment == ctx.mode
        ok = ctx.venue_connected and not ctx.account_blocked and env_ok
        return (
            ok, "connected {connected}, blocked {blocked}, venue {env} for mode {mode}",
            ("connected", "blocked", "env", "mode"), (ctx.venue_connected, ctx.account_blocked, ctx.venue_environment, ctx.mode),
        )
