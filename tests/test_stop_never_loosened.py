"""A position's stop is never loosened past what the gate judged.

Two paths used to do it unchecked: adding to a position by hand moved the whole position's stop
to the add's own (the held part's loss at the stop grew past the caps), and the operator's
move-stop let a stop go as far as stop_loss_max_pct even where the loss at it broke
max_single_trade_loss_usd.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from engine.manual import ManualOrderSpec
from engine.models import Quote
from engine.strategy.base import Strategy


class Quiet(Strategy):
    name = "quiet"

    def on_quote(self, quote, position_qty):
        return None


def loss_at_stop(pos) -> D:
    return abs(pos.avg_price - pos.stop_price) * abs(pos.quantity)


async def engine_with(make_profile, open_engine):
    prof = make_profile(symbols=["BTC/USD", "ETH/USD"],
                        risk={"min_edge": 0, "min_confidence": 0, "allowed_readiness": ["ready", "forming", "not_ready"],
                              "min_seconds_between_trades": 0, "max_single_trade_loss_usd": 100,
                              "max_position_pct": 20, "max_symbol_exposure_pct": 20},
                        sizing={"max_order_usd": 2000})
    eng = await open_engine(prof, seed=1)
    eng.strategy = Quiet()
    eng.preroll()
    await eng.run(duration=5)
    return eng


async def buy(eng, symbol: str, usd: str) -> None:
    q = eng.quotes[symbol]
    assert await eng.submit_manual(ManualOrderSpec(symbol, "buy", quantity=(D(usd) / q.ask).quantize(D("0.000001")),
                                                   type="market")) is None
    await eng.run(duration=5)


async def quote_at(eng, symbol: str, factor: D, times: int = 1) -> Quote:
    base = eng.quotes[symbol]
    for _ in range(times):
        eng.clock.set(eng.clock.now() + timedelta(seconds=1))
        await eng.on_batch([Quote(symbol, eng.clock.now(), (base.bid * factor).quantize(D("0.01")),
                                  (base.ask * factor).quantize(D("0.01")), base.bid_size, base.ask_size,
                                  (base.last * factor).quantize(D("0.01")), base.volume)])
    return eng.quotes[symbol]


async def test_an_add_keeps_the_positions_tighter_stop(make_profile, open_engine):
    eng = await engine_with(make_profile, open_engine)
    await buy(eng, "BTC/USD", "1100")
    pos = eng.portfolio.positions["BTC/USD"]
    held_stop = pos.stop_price
    assert loss_at_stop(pos) < 100
    # The market falls 6 % and holds there (a gap, not a spike), then a small add at the new price:
    # its own default stop is 8 % below the new price, far looser than the held one.
    q = await quote_at(eng, "BTC/USD", D("0.94"), times=5)
    assert held_stop < q.bid
    await buy(eng, "BTC/USD", "100")
    pos = eng.portfolio.positions["BTC/USD"]
    assert pos.stop_price == held_stop
    assert eng.orders.stop_order("BTC/USD").stop_price == held_stop
    assert eng.orders.stop_order("BTC/USD").quantity == pos.quantity  # one stop, for the whole position
    assert loss_at_stop(pos) < 100


async def test_an_add_with_a_tighter_stop_tightens_the_whole_position(make_profile, open_engine):
    eng = await engine_with(make_profile, open_engine)
    await buy(eng, "BTC/USD", "900")
    held_stop = eng.portfolio.positions["BTC/USD"].stop_price
    q = await quote_at(eng, "BTC/USD", D("1.05"), times=5)  # up 5 %: the add's stop sits above the held one
    await buy(eng, "BTC/USD", "100")
    pos = eng.portfolio.positions["BTC/USD"]
    assert pos.stop_price > held_stop
    assert pos.stop_price < q.bid
    assert eng.orders.stop_order("BTC/USD").stop_price == pos.stop_price


async def test_move_stop_refuses_a_loosening_past_the_single_trade_loss_cap(make_profile, open_engine):
    eng = await engine_with(make_profile, open_engine)
    await buy(eng, "ETH/USD", "900")
    pos = eng.portfolio.positions["ETH/USD"]
    old = pos.stop_price
    qty, avg = abs(pos.quantity), pos.avg_price
    fee = eng._fee_rate
    # The loss at a stop S (the gate's rule): (avg - S) x qty + (avg + S) x qty x fee. Solve for the
    # stop whose loss is the $100 cap, then step a cent either side of it.
    at_cap = ((avg * qty * (1 + fee) - D(100)) / (qty * (1 - fee))).quantize(D("0.01"))
    assert (avg - at_cap) / avg * 100 < eng.profile.risk.stop_loss_max_pct  # inside the % band: the cap decides
    refusal = await eng.tighten_stop("ETH/USD", at_cap - D("0.01"))
    assert refusal is not None and "loss at stop" in refusal and "cap 100.00" in refusal
    assert pos.stop_price == old and eng.orders.stop_order("ETH/USD").stop_price == old
    assert await eng.tighten_stop("ETH/USD", at_cap + D("0.01")) is None
    assert pos.stop_price == at_cap + D("0.01")
    assert loss_at_stop(pos) <= 100
    (last,) = [r for r in await eng.journal.rows(["operator"]) if r.data["action"] == "tighten_stop"][-1:]
    assert last.data["refusal"] is None
    refused = [r for r in await eng.journal.rows(["operator"]) if r.data.get("refusal")]
    assert refused and "loss at stop" in refused[0].data["refusal"]
