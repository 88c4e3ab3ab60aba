"""Entries sent but not filled yet count against the limits, as the positions, exposure and cash
they will take.

Before, the gate read only what was already held: a limit entry resting for its timeout, or any
order a venue had not filled yet, was invisible to the next decision, so entries on several
symbols at once each passed the open-position, capital and reserve limits they broke together.
"""
from __future__ import annotations

import asyncio
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.models import Order, OrderPurpose, OrderStatus, OrderType, Position, Side, Signal
from engine.risk.gate import Decision
from engine.strategy.base import Strategy

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD", "LTC/USD", "AVAX/USD", "LINK/USD"]
OPEN = {"min_edge": 0, "min_confidence": 0, "min_seconds_between_trades": 0, "max_trades_per_hour": 1000,
        "max_trades_per_day": 1000, "allowed_readiness": ["ready", "forming", "not_ready"]}
# Every other money limit wide open, so each test meets only the one it tightens.
WIDE = {"cash_reserve_pct": 0, "max_position_pct": 100, "max_symbol_exposure_pct": 100, "max_group_exposure_pct": 100,
        "max_total_capital_usd": 100000, "max_single_trade_loss_usd": 100000, "risk_per_trade_pct": 100}


def profile(make_profile, **risk):
    return make_profile(symbols=SYMBOLS, risk={**OPEN, **WIDE, **risk}, paper={"starting_cash": 10000},
                        sizing={"max_order_usd": 100000})


async def ready(open_engine, prof):
    eng = await open_engine(prof)
    eng.preroll()
    return eng


_n = 0


def working(eng, symbol: str, usd: str, side: Side = Side.BUY, filled: str = "0",
            kind: OrderType = OrderType.LIMIT) -> Order:
    """An entry the venue has and has not filled (or has filled `filled` of), as `send` leaves it."""
    global _n
    _n += 1
    q = eng.quotes[symbol]
    price = q.ask if side is Side.BUY else q.bid
    qty = (D(usd) / price).quantize(D("0.000001"))
    o = Order(f"w{_n}", symbol, side, kind, qty, OrderPurpose.ENTRY, eng.clock.now(),
              limit_price=price if kind is OrderType.LIMIT else None, status=OrderStatus.SUBMITTED,
              filled_qty=D(filled), protective_stop=(price * (D("0.92") if side is Side.BUY else D("1.08"))).quantize(D("0.01")))
    eng.orders.orders[o.client_order_id] = o
    eng.orders.track(o)
    return o


def hold(eng, symbol: str, qty: str) -> None:
    q = eng.quotes[symbol]
    eng.portfolio.restore_position(Position(symbol, D(qty), q.bid, last_price=q.bid, stop_price=q.bid * D("0.92")))


def decide(eng, symbol: str, usd: str, side: Side = Side.BUY) -> Decision:
    q = eng.quotes[symbol]
    price = q.ask if side is Side.BUY else q.bid
    o = Order("ask", symbol, side, OrderType.LIMIT, (D(usd) / price).quantize(D("0.000001")), OrderPurpose.ENTRY,
              eng.clock.now(), limit_price=price,
              protective_stop=(price * (D("0.92") if side is Side.BUY else D("1.08"))).quantize(D("0.01")))
    req = eng._request(o, "operator")
    return eng.gate.evaluate(req, eng._context(req))


def check(d: Decision, name: str):
    return next(c for c in d.checks if c.name == name)


async def test_working_entry_counts_as_an_open_position_at_the_boundary(make_profile, open_engine):
    eng = await ready(open_engine, profile(make_profile, max_open_positions=3))
    hold(eng, "BTC/USD", "0.001")
    working(eng, "ETH/USD", "300")
    at = decide(eng, "SOL/USD", "300")  # 1 held + 1 working + this one = 3: at the limit
    assert at.approved, at.failed
    assert check(at, "max_open_positions").values == {"after": 3, "limit": 3, "working": 1}
    working(eng, "LTC/USD", "300")
    over = decide(eng, "SOL/USD", "300")  # 4 > 3
    assert not over.approved and over.failed == "max_open_positions"
    assert check(over, "max_open_positions").values == {"after": 4, "limit": 3, "working": 2}
    # Another entry in a symbol whose entry is working opens nothing new.
    same = decide(eng, "ETH/USD", "100")
    assert check(same, "max_open_positions").passed
    assert check(same, "max_open_positions").values["after"] == 3


async def test_finished_entry_no_longer_counts(make_profile, open_engine):
    eng = await ready(open_engine, profile(make_profile, max_open_positions=1))
    o = working(eng, "ETH/USD", "300")
    assert decide(eng, "SOL/USD", "300").failed == "max_open_positions"
    o.status = OrderStatus.CANCELLED
    eng.orders.untrack(o.client_order_id)
    d = decide(eng, "SOL/USD", "300")
    assert d.approved and check(d, "max_open_positions").values == {"after": 1, "limit": 1, "working": 0}


async def test_working_buys_hold_their_cash(make_profile, open_engine):
    # No reserve, so buying power alone decides: $10,000 cash, $7,000 of buys working.
    eng = await ready(open_engine, profile(make_profile))
    working(eng, "ETH/USD", "3500")
    working(eng, "SOL/USD", "3500")
    fee = eng._fee_rate
    cash_left = check(decide(eng, "LTC/USD", "100"), "buying_power").values["cash"]
    spent = sum(o.remaining * o.limit_price for o in eng.orders.working_entries.values())
    assert cash_left == D(10000) - spent * (1 + fee)
    fits = (cash_left / (1 + fee)).quantize(D("1")) - 2  # just under what the cash left covers
    assert decide(eng, "LTC/USD", str(fits)).approved
    refused = decide(eng, "LTC/USD", str(fits + 10))
    assert refused.failed == "buying_power"
    # A short entry working takes no cash, but its exposure counts.
    working(eng, "AVAX/USD", "1000", side=Side.SELL)
    assert check(decide(eng, "LTC/USD", "100"), "buying_power").values["cash"] == cash_left


async def test_cash_reserve_counts_working_buys(make_profile, open_engine):
    eng = await ready(open_engine, profile(make_profile, cash_reserve_pct=25))
    working(eng, "ETH/USD", "3000")
    working(eng, "SOL/USD", "3000")
    # $10,000 - $6,000 working (and its fees) leaves under $4,000; the reserve is $2,500.
    assert decide(eng, "LTC/USD", "1400").approved
    assert decide(eng, "LTC/USD", "1600").failed == "cash_reserve"


async def test_exposure_counts_only_what_is_left_to_fill(make_profile, open_engine):
    eng = await ready(open_engine, profile(make_profile, max_total_capital_usd=5000))
    o = working(eng, "ETH/USD", "4000")
    price = o.limit_price
    assert decide(eng, "SOL/USD", "1100").failed == "total_capital"  # 4,000 + 1,100 > 5,000
    # Three quarters filled: that part is a position now (held), the rest still working.
    filled = (o.quantity * 3 / 4).quantize(D("0.000001"))
    o.filled_qty = filled
    hold(eng, "ETH/USD", str(filled))
    d = decide(eng, "SOL/USD", "500")
    after = check(d, "total_capital").values["after"]
    held = eng.portfolio.gross_exposure
    assert after == held + (o.quantity - filled) * price + d_notional(eng, "SOL/USD", "500")
    assert d.approved


def d_notional(eng, symbol: str, usd: str) -> D:
    price = eng.quotes[symbol].ask
    return (D(usd) / price).quantize(D("0.000001")) * price


async def test_symbol_and_group_concentration_count_the_working_entry(make_profile, open_engine):
    eng = await ready(open_engine, profile(make_profile, max_symbol_exposure_pct=30, max_group_exposure_pct=50,
                                           correlated_groups={"majors": ["BTC/USD", "ETH/USD", "SOL/USD"]}))
    working(eng, "ETH/USD", "2500", kind=OrderType.MARKET)  # priced at the touch
    assert check(decide(eng, "ETH/USD", "400"), "symbol_concentration").passed  # 2,900 <= 3,000
    assert decide(eng, "ETH/USD", "600").failed == "symbol_concentration"  # 3,100 > 3,000
    working(eng, "BTC/USD", "2000")
    assert decide(eng, "SOL/USD", "600").failed == "group_concentration"  # 2,500 + 2,000 + 600 > 5,000


class BuyEverything(Strategy):
    name = "buy_everything"

    def on_quote(self, quote, position_qty):
        if position_qty == 0:
            return Signal(quote.symbol, Side.BUY, 1.0, 1.0, (quote.ask * D("0.92")).quantize(D("0.01")),
                          quote.ask, "test", self.name, quote.ts)
        return None


async def test_entries_in_flight_on_many_symbols_never_exceed_max_open_positions(make_profile, open_engine):
    # Orders reach the paper venue 3 s after they are sent: every symbol signals in that time.
    prof = make_profile(symbols=SYMBOLS, risk={**OPEN, "max_open_positions": 2}, paper={"latency_ms": 3000},
                        sizing={"max_order_usd": 300})
    eng = await open_engine(prof)
    eng.strategy = BuyEverything()
    eng.preroll()
    most = 0
    for _ in range(40):
        await eng.run(duration=1)
        taken = set(eng.portfolio.positions) | {o.symbol for o in eng.orders.working.values()
                                                 if o.purpose is OrderPurpose.ENTRY}
        most = max(most, len(taken))
    assert len(eng.portfolio.positions) == 2
    assert most == 2
    refused = [r for r in await eng.journal.rows(["decision"])
               if r.data["purpose"] == "entry" and not r.data["approved"]]
    assert refused and {r.data["failed"] for r in refused} == {"max_open_positions"}


class RandomTrader(Strategy):
    """Enters either way and exits at random, from its own seeded generator: a stream of signals
    the gate has to keep inside the limits however they fall."""

    name = "random_trader"

    def __init__(self, seed: int, rate: float) -> None:
        import random

        self.rng = random.Random(seed)
        self.rate = rate

    def on_quote(self, quote, position_qty):
        if self.rng.random() > self.rate:
            return None
        side = self.rng.choice([Side.BUY, Side.SELL]) if position_qty == 0 else (
            Side.SELL if position_qty > 0 else Side.BUY)
        price = quote.ask if side is Side.BUY else quote.bid
        stop = price * (D("0.92") if side is Side.BUY else D("1.08"))
        return Signal(quote.symbol, side, 1.0, 1.0, stop.quantize(D("0.01")), price, "random", self.name, quote.ts)


@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), latency=st.sampled_from([0, 400, 3000]),
       entry=st.sampled_from(["limit", "market"]), max_open=st.integers(1, 3),
       reserve=st.sampled_from([0, 40, 80]), rate=st.sampled_from([0.2, 0.6]))
def test_random_streams_never_hold_more_positions_or_spend_more_cash_than_allowed(
        make_profile, seed, latency, entry, max_open, reserve, rate):
    async def run() -> None:
        from engine.engine import Engine

        prof = make_profile(f"r{seed}-{latency}-{entry}-{max_open}-{reserve}-{rate}".replace(".", "_"),
                            symbols=SYMBOLS, risk={**OPEN, **WIDE, "max_open_positions": max_open,
                                                   "cash_reserve_pct": reserve},
                            paper={"starting_cash": 10000, "latency_ms": latency}, orders={"entry_type": entry},
                            sizing={"max_order_usd": 3000}, feed={"seed": seed})
        eng = await Engine.open(prof)
        try:
            eng.strategy = RandomTrader(seed, rate)
            eng.preroll()
            for _ in range(30):
                await eng.run(duration=2)
                taken = set(eng.portfolio.positions) | {o.symbol for o in eng.orders.working.values()
                                                         if o.purpose is OrderPurpose.ENTRY}
                assert len(taken) <= max_open, sorted(taken)
                # Buys never spend cash past the reserve they were decided against (shorts add
                # cash, so this holds for the account's cash as a whole).
                assert eng.portfolio.cash >= 0
            approved = [r for r in await eng.journal.rows(["decision"])
                        if r.data["purpose"] == "entry" and r.data["approved"]]
            assert approved  # the stream did trade
        finally:
            await eng.close()

    asyncio.run(run())
