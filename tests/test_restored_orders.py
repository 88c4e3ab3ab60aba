"""Orders found working at a restart keep the rules they were sent under: a limit keeps a timeout
(counted from the restart), and a limit entry from before it is cancelled then, not chased at
market on a signal older than the restart."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from conftest import ANY_READINESS, LOOSE_RISK, build_profile
from engine.engine import Engine
from engine.manual import ManualOrderSpec
from engine.models import OrderPurpose, Quote
from engine.strategy.base import Strategy

SYMBOL = "BTC/USD"


class Quiet(Strategy):
    name = "quiet"

    def on_quote(self, quote, position_qty):
        return None


async def quotes(eng: Engine, bid: D, ask: D, n: int, secs: float, size: D = D(100)) -> None:
    for _ in range(n):
        eng.clock.set(eng.clock.now() + timedelta(seconds=secs))
        await eng.on_batch([Quote(SYMBOL, eng.clock.now(), bid, ask, size, size, (bid + ask) / 2, D(100000))])


async def started(tmp_path, timeout: int, **risk) -> tuple:
    """A warmed paper engine on one symbol with a quiet strategy, and its profile."""
    prof = build_profile(tmp_path, symbols=[SYMBOL], risk={**LOOSE_RISK, **ANY_READINESS, "min_edge": 0,
                                                           "min_confidence": 0, **risk},
                         orders={"limit_timeout_seconds": timeout}, paper={"latency_ms": 0}, control={"socket": False})
    eng = await Engine.open(prof, seed=1)
    eng.strategy = Quiet()
    eng.preroll()
    await eng.run(duration=5)
    return prof, eng


async def limit_left_working(tmp_path, timeout: int, under_bid: D) -> tuple:
    """A session that leaves a buy limit at `under_bid` x the bid working at the venue, closed."""
    prof, eng = await started(tmp_path, timeout)
    q = eng.quotes[SYMBOL]
    price = (q.bid * under_bid).quantize(D("0.01"))
    assert await eng.submit_manual(ManualOrderSpec(SYMBOL, "buy", quantity=D("0.01"), type="limit",
                                                   limit_price=price)) is None
    await quotes(eng, q.bid, q.ask, 2, 1)
    (cid,) = [c for c, o in eng.orders.working.items() if o.purpose is OrderPurpose.ENTRY]
    await eng.close()
    return prof, cid, q


async def test_a_limit_entry_working_across_a_restart_times_out_without_a_market_fallback(tmp_path):
    # 0.5 % under the bid: it rests, the market never comes down to it
    prof, cid, q = await limit_left_working(tmp_path, 30, D("0.995"))
    eng = await Engine.open(prof, seed=1)
    try:
        eng.strategy = Quiet()
        assert cid in eng.orders.working
        await quotes(eng, q.bid, q.ask, 2, 10)  # inside its timeout: still resting
        assert cid in eng.orders.working
        await quotes(eng, q.bid, q.ask, 2, 10)  # past it
        assert cid not in eng.orders.working
        assert [o.client_order_id for o in await eng.broker.open_orders()] == []
        assert eng.orders.position_qty(SYMBOL) == 0  # nothing bought at market
        assert not [o for o in eng.orders.orders.values() if o.parent_id == cid]
        (alert,) = [a for a in eng.alerts.recent() if a.kind == "fallback_skipped"]
        assert "from before the restart" in alert.message
    finally:
        await eng.close()


async def test_a_partly_filled_order_is_rebuilt_with_what_it_filled_after_a_crash(tmp_path):
    prof, eng = await started(tmp_path, 600, max_book_fraction=10)
    q = eng.quotes[SYMBOL]
    thin = D("0.005")  # the book has 0.005 at the ask: a third of the order fills on arrival
    await quotes(eng, q.bid, q.ask, 65, 1, thin)  # a checkpoint passes before the order
    assert await eng.submit_manual(ManualOrderSpec(SYMBOL, "buy", quantity=D("0.015"), type="limit",
                                                   limit_price=q.ask)) is None
    await quotes(eng, q.bid, q.ask * D("1.001"), 1, 1, thin)  # the rest rests under a higher ask
    (entry,) = [o for o in eng.orders.working.values() if o.purpose is OrderPurpose.ENTRY]
    assert entry.filled_qty == D("0.005")
    avg = entry.avg_fill_price
    # kill -9: what is committed stays, nothing of a clean close is written
    await eng.journal.flush()
    await eng.broker.persist()
    eng.broker._store.close()
    eng.broker._store = None
    eng._closed = True
    await eng.journal.close()

    eng = await Engine.open(prof, seed=1)
    try:
        again = eng.orders.working[entry.client_order_id]
        assert (again.filled_qty, again.avg_fill_price, again.remaining) == (D("0.005"), avg, D("0.01"))
    finally:
        await eng.close()
