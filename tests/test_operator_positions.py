"""A position the operator opened by hand is the operator's: the strategy's exit signals leave it
alone (its stop, the operator, close-all or a halt close it), while the strategy still exits what
it opened itself. Whose it is survives a restart (checkpoint and journal)."""
from __future__ import annotations

from decimal import Decimal as D

from conftest import ANY_READINESS, LOOSE_RISK, run_until
from engine.models import OrderPurpose, Side, Signal
from engine.operator import ManualOrderSpec


def signal(q, side: Side, reason: str) -> Signal:
    price = (q.bid + q.ask) / 2
    stop = price * (D("0.95") if side is Side.BUY else D("1.05"))
    return Signal(q.symbol, side, 0.5, 0.9, stop, price, reason, "ema_trend", q.ts)


def enter_once(symbols: set[str]):
    """A scripted strategy: one entry signal for each of `symbols`, nothing else."""
    entered: set[str] = set()

    def on_quote(q, pos):
        if pos == 0 and q.symbol in symbols and q.symbol not in entered:
            entered.add(q.symbol)
            return signal(q, Side.BUY, "scripted entry")
        return None

    return on_quote


def exit_signals(once: set[str] = frozenset()):
    """A scripted strategy: an exit signal on every quote of every symbol held, but only one for
    the symbols in `once` (so the test can count the exits it asked for)."""
    sent: set[str] = set()

    def on_quote(q, pos):
        if pos > 0 and q.symbol not in sent:
            if q.symbol in once:
                sent.add(q.symbol)
            return signal(q, Side.SELL, "scripted exit")
        return None

    return on_quote


def profile(make_profile, **risk):
    return make_profile(approval={"required": False}, risk={**LOOSE_RISK, **ANY_READINESS, **risk},
                        orders={"limit_timeout_seconds": 7200})


def strategy_exits(eng, symbol: str) -> list:
    return [o for o in eng.orders.orders.values()
            if o.symbol == symbol and o.purpose is OrderPurpose.EXIT]


async def test_strategy_exits_its_own_position_but_not_the_operators(make_profile, open_engine):
    eng = await open_engine(profile(make_profile), seed=5)
    eng.strategy.on_quote = lambda q, pos: None
    await eng.run(duration=30)
    assert await eng.submit_manual(ManualOrderSpec("BTC/USD", "buy", risk_usd=D(20))) is None
    await run_until(eng, lambda: "BTC/USD" in eng.portfolio.positions and eng.orders.stop_order("BTC/USD"), step=2)
    assert eng.opened_by_operator("BTC/USD")

    eng.strategy.on_quote = enter_once({"ETH/USD"})
    await run_until(eng, lambda: "ETH/USD" in eng.portfolio.positions and eng.orders.stop_order("ETH/USD"), step=2)
    assert not eng.opened_by_operator("ETH/USD")
    opened = eng.portfolio.positions["ETH/USD"].opening_order

    # Exit signals on both: the strategy's own position goes, the operator's stays.
    eng.strategy.on_quote = exit_signals(once={"ETH/USD"})
    await run_until(eng, lambda: "ETH/USD" not in eng.portfolio.positions, step=2)
    await eng.run(duration=120)
    assert [o.reason for o in strategy_exits(eng, "ETH/USD")] == ["scripted exit"]
    assert "BTC/USD" in eng.portfolio.positions and eng.orders.stop_order("BTC/USD") is not None
    assert strategy_exits(eng, "BTC/USD") == []
    (entry,) = await eng.journal.rows(kinds=["fill"], ref=opened)
    assert D(entry.data["position_after"]) > 0

    # The operator still closes their own position.
    assert await eng.close_position("BTC/USD", "done with it") is None
    await run_until(eng, lambda: "BTC/USD" not in eng.portfolio.positions, step=2)


async def test_an_operator_add_on_leaves_a_strategy_position_the_strategys(make_profile, open_engine):
    # The strategy's entry spends the per-trade cap at its 5 % stop; an add is one trade with what
    # is held, so it fits only with a tighter stop, which the whole position then keeps.
    eng = await open_engine(profile(make_profile, risk_per_trade_pct="0.2", stop_loss_min_pct="2"), seed=5)
    eng.strategy.on_quote = lambda q, pos: None
    await eng.run(duration=30)
    eng.strategy.on_quote = enter_once({"ETH/USD"})
    await run_until(eng, lambda: "ETH/USD" in eng.portfolio.positions and eng.orders.stop_order("ETH/USD"), step=2)
    eng.strategy.on_quote = lambda q, pos: None
    held = eng.portfolio.positions["ETH/USD"].quantity
    tighter = (eng.quotes["ETH/USD"].ask * D("0.97")).quantize(D("0.01"))
    assert await eng.submit_manual(ManualOrderSpec("ETH/USD", "buy", quantity=D("0.01"), stop_price=tighter)) is None
    await run_until(eng, lambda: eng.portfolio.positions["ETH/USD"].quantity > held, step=2)
    assert eng.portfolio.positions["ETH/USD"].stop_price == tighter
    assert not eng.opened_by_operator("ETH/USD")
    eng.strategy.on_quote = exit_signals(once={"ETH/USD"})
    await run_until(eng, lambda: "ETH/USD" not in eng.portfolio.positions, step=2)


async def test_whose_position_survives_a_restart(make_profile, open_engine):
    # A far stop: the market after the restart starts elsewhere, and must not stop it out.
    prof = profile(make_profile, stop_loss_max_pct="60")
    eng = await open_engine(prof, seed=5)
    eng.strategy.on_quote = lambda q, pos: None
    await eng.run(duration=30)
    stop = (eng.quotes["SOL/USD"].ask / 2).quantize(D("0.01"))
    assert await eng.submit_manual(ManualOrderSpec("SOL/USD", "buy", risk_usd=D(20), stop_price=stop)) is None
    await run_until(eng, lambda: "SOL/USD" in eng.portfolio.positions and eng.orders.stop_order("SOL/USD"), step=2)
    opener = eng.portfolio.positions["SOL/USD"].opening_order
    await eng.close()  # journals a checkpoint holding the position and who opened it

    again = await open_engine(prof, seed=6)
    pos = again.portfolio.positions["SOL/USD"]
    assert pos.opening_order == opener and again.opened_by_operator("SOL/USD")
    again.strategy.on_quote = exit_signals()
    await again.run(duration=120)
    assert "SOL/USD" in again.portfolio.positions and strategy_exits(again, "SOL/USD") == []


async def test_an_exit_signal_never_becomes_an_entry_when_the_stop_closes_the_position_first(make_profile,
                                                                                               open_engine):
    """The strategy is asked after the batch's fills: when a stop closes a position in the same
    batch as the strategy's exit signal, the strategy sees it flat and the engine never turns that
    exit into a short entry."""
    eng = await open_engine(profile(make_profile), seed=5)
    eng.strategy.on_quote = lambda q, pos: None
    await eng.run(duration=30)
    assert await eng.submit_manual(ManualOrderSpec("BTC/USD", "buy", risk_usd=D(20))) is None
    await run_until(eng, lambda: "BTC/USD" in eng.portfolio.positions and eng.orders.stop_order("BTC/USD"), step=2)
    bid = eng.quotes["BTC/USD"].bid
    assert await eng.tighten_stop("BTC/USD", (bid * D("0.9995")).quantize(D("0.01"))) is None
    # An exit signal on every quote while held: the operator's position ignores them, and the
    # quote that trips the stop must not leave a signal behind that reads as a new short.
    eng.strategy.on_quote = exit_signals()
    await run_until(eng, lambda: "BTC/USD" not in eng.portfolio.positions, step=2, limit=4 * 3600)
    await eng.run(duration=60)
    stops = [o for o in eng.orders.orders.values() if o.symbol == "BTC/USD" and o.purpose is OrderPurpose.STOP
             and o.filled_qty > 0]
    assert stops, "the position was closed by its stop"
    shorts = [o for o in eng.orders.orders.values() if o.purpose is OrderPurpose.ENTRY and o.side is Side.SELL]
    assert shorts == [] and "BTC/USD" not in eng.portfolio.positions


def refuse_cancels(eng, cids: set[str]) -> list[str]:
    """The venue answers no to cancelling these orders (a stop it says is triggering, a request
    that failed after its retries); every other cancel goes through. Returns the refused asks."""
    refused: list[str] = []
    real = eng.broker.cancel

    async def cancel(cid: str) -> bool:
        if cid in cids:
            refused.append(cid)
            return False
        return await real(cid)

    eng.broker.cancel = cancel
    return refused


async def strategy_holding_eth(make_profile, open_engine):
    """An engine whose strategy has opened ETH/USD, its protective stop working."""
    eng = await open_engine(profile(make_profile), seed=5)
    eng.strategy.on_quote = lambda q, pos: None
    await eng.run(duration=30)  # prices and volume for the gate's market checks
    eng.strategy.on_quote = enter_once({"ETH/USD"})
    await run_until(eng, lambda: "ETH/USD" in eng.portfolio.positions and eng.orders.stop_order("ETH/USD"), step=2)
    return eng


async def test_an_exit_is_never_sent_beside_a_stop_the_venue_would_not_cancel(make_profile, open_engine):
    eng = await strategy_holding_eth(make_profile, open_engine)
    held = eng.portfolio.positions["ETH/USD"].quantity
    stop = eng.orders.stop_order("ETH/USD").client_order_id
    refused = refuse_cancels(eng, {stop})

    # The strategy asks to exit on every quote: not one exit reaches the venue, the stop stays,
    # and the feed hears of it once, not once per quote.
    eng.strategy.on_quote = exit_signals()
    await eng.run(duration=30)
    assert len(refused) > 1  # asked again on later quotes
    assert eng.portfolio.positions["ETH/USD"].quantity == held
    assert eng.orders.stop_order("ETH/USD").client_order_id == stop and stop in eng.orders.working
    exits = strategy_exits(eng, "ETH/USD")
    assert exits and all(o.status.value == "cancelled" for o in exits)
    assert [await eng.broker.fetch_order(o.client_order_id) for o in exits] == [None] * len(exits)
    # Its intent journaled (and committed) before the stop was asked to come off; its end, not sent.
    rows = await eng.journal.rows(kinds=["order"], ref=exits[0].client_order_id)
    assert [r.data["status"] for r in rows] == ["submitted", "cancelled"] and stop in rows[-1].data["reason"]
    held_alerts = [a for a in eng.alerts.recent(200) if a.kind == "exit_held"]
    assert len(held_alerts) == 1 and held_alerts[0].severity == "warning" and stop in held_alerts[0].message

    # Close-all meets the same refusal: the operator is told at once, loudly.
    await eng.close_all("operator")
    assert eng.portfolio.positions["ETH/USD"].quantity == held
    assert [a.severity for a in eng.alerts.recent(200) if a.kind == "exit_held"][0] == "critical"

    # Once the venue lets the stop go, the next exit flattens the position.
    refused_more = refuse_cancels(eng, set())
    await run_until(eng, lambda: "ETH/USD" not in eng.portfolio.positions, step=2)
    assert refused_more == []


async def test_a_stop_move_the_venue_half_refuses_says_two_stops_are_working(make_profile, open_engine):
    eng = await strategy_holding_eth(make_profile, open_engine)
    eng.strategy.on_quote = lambda q, pos: None
    old = eng.orders.stop_order("ETH/USD").client_order_id
    refuse_cancels(eng, {old})
    bid = eng.quotes["ETH/USD"].bid
    assert await eng.tighten_stop("ETH/USD", (bid * D("0.97")).quantize(D("0.01"))) is None
    await eng.run(duration=2)
    new = eng.orders.stop_order("ETH/USD").client_order_id
    assert new != old and {old, new} <= set(eng.orders.working)
    (alert,) = [a for a in eng.alerts.unacknowledged() if a.kind == "stop_not_replaced"]
    assert old in alert.message and "two stops" in alert.message


async def test_a_manual_limit_completed_by_its_market_fallback_stays_the_operators(make_profile, open_engine):
    from datetime import timedelta

    from engine.models import Quote

    eng = await open_engine(make_profile(approval={"required": False}, risk={**LOOSE_RISK, **ANY_READINESS},
                                         orders={"limit_timeout_seconds": 30}, paper={"latency_ms": 0}), seed=5)
    eng.strategy.on_quote = lambda q, pos: None
    await eng.run(duration=30)
    q = eng.quotes["BTC/USD"]

    async def quotes(n: int) -> None:
        for _ in range(n):
            eng.clock.set(eng.clock.now() + timedelta(seconds=10))
            await eng.on_batch([Quote("BTC/USD", eng.clock.now(), q.bid, q.ask, D(100), D(100), q.mid, D(100000))])

    below = (q.bid * D("0.999")).quantize(D("0.01"))  # never reached: the fallback buys it all
    assert await eng.submit_manual(ManualOrderSpec("BTC/USD", "buy", quantity=D("0.002"), type="limit",
                                                   limit_price=below)) is None
    await quotes(5)
    pos = eng.portfolio.positions["BTC/USD"]
    assert eng.orders.orders[pos.opening_order].parent_id is None  # the operator's own order
    assert eng.opened_by_operator("BTC/USD")
    eng.strategy.on_quote = exit_signals()
    await quotes(3)
    assert eng.orders.position_qty("BTC/USD") == D("0.002")  # the strategy's exit left it alone

    # A restart before the next checkpoint replays the fill, and whose it is with it.
    await eng.journal.flush()
    eng2 = await open_engine(eng.profile, seed=5)
    assert eng2.opened_by_operator("BTC/USD")


async def test_adding_to_a_position_by_hand_never_takes_its_loss_at_the_stop_past_one_trade_cap(make_profile, open_engine):
    """Each add sized by the profile's risk per trade spends the whole cap: the second is refused
    by single_trade_loss, naming the position's loss at the stop, and the position stays within it."""
    eng = await open_engine(profile(make_profile, min_edge=0.999, min_confidence=0.999, max_position_pct=60,
                                    max_symbol_exposure_pct=60, cash_reserve_pct=0))
    eng.preroll()
    cap = eng.portfolio.equity * eng.profile.risk.risk_per_trade_pct / 100
    assert await eng.submit_manual(ManualOrderSpec("ETH/USD", "buy")) is None
    await run_until(eng, lambda: "ETH/USD" in eng.portfolio.positions, step=1, limit=30)
    first = eng.portfolio.positions["ETH/USD"].quantity
    second = eng.preview(ManualOrderSpec("ETH/USD", "buy"))
    assert not second.approved and second.decision.failed == "single_trade_loss"
    refusal = await eng.submit_manual(ManualOrderSpec("ETH/USD", "buy"))
    assert refusal and "single_trade_loss" in refusal
    await eng.run(duration=5)
    pos = eng.portfolio.positions["ETH/USD"]
    # Sized to the cap at the quote; the fill's spread and slippage ride on top, as fees do.
    assert pos.quantity == first and (pos.avg_price - pos.stop_price) * pos.quantity <= cap * D("1.01")
    assert [o.purpose for o in eng.orders.orders.values() if o.symbol == "ETH/USD" and o.filled_qty] == [OrderPurpose.ENTRY]
