"""What a restart that found the journal and the venue disagree must keep safe until the operator
has answered every difference: no path but the answers lifts reduce-only (not the venue's
midnight, not a stale-data breaker clearing, not a re-arm), and a position taken over from the
venue gets a protective stop at once, with an alert saying which and why.

The venue's side of the story is written into the paper venue's own file between sessions, as a
fill or a holding the engine never heard of would leave it.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest

from conftest import build_profile
from engine.clock import SimClock
from engine.engine import Engine, paper_store_path
from engine.models import OrderPurpose, OrderStatus, Side, Signal
from engine.risk.breakers import BreakerState
from engine.risk.gate import TradingState
from engine.strategy.base import Strategy

OPEN = {"min_edge": 0, "min_confidence": 0, "allowed_readiness": ["ready", "forming", "not_ready"],
        "min_seconds_between_trades": 0}
FAST = {"timeframes": [10], "warmup_bars": 1}


class Buy(Strategy):
    """Enters long on every flat symbol it is given, stop 8 % under the ask."""

    name = "buy"

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = symbols

    def on_quote(self, quote, position_qty):
        if quote.symbol in self.symbols and position_qty == 0:
            return Signal(quote.symbol, Side.BUY, 1.0, 1.0, (quote.ask * D("0.92")).quantize(D("0.01")),
                          quote.ask, "test", self.name, quote.ts)
        return None


class Quiet(Strategy):
    name = "quiet"

    def on_quote(self, quote, position_qty):
        return None


def venue(tmp: Path) -> sqlite3.Connection:
    return sqlite3.connect(paper_store_path(tmp / "j.sqlite"))


async def entries_sent(eng: Engine) -> set[str]:
    return {r.ref for r in await eng.journal.rows(["order"])
            if r.data["purpose"] == "entry" and r.data["status"] == "submitted"}


async def warm(eng: Engine, strategy: Strategy) -> None:
    """Quotes in (a stop is placed from them), nothing traded."""
    eng.strategy = strategy
    eng.preroll()
    await eng.run(duration=2)


# -- reduce-only holds until the last difference is answered ----------------------------------
MIDNIGHT = datetime(2026, 1, 6, tzinfo=timezone.utc)  # the paper venue's day ends at UTC midnight


async def _restarted_with_differences(tmp: Path) -> tuple[Engine, set[str]]:
    """A restart ten minutes before the venue's midnight that finds two differences; the
    strategy wants to enter on ETH and SOL. Returns the engine and the entries sent so far."""
    prof = build_profile(tmp, symbols=["BTC/USD", "ETH/USD", "SOL/USD"], risk=OPEN,
                         sizing={"max_order_usd": 300}, strategy=FAST)
    eng = await Engine.open(prof, seed=1, clock=SimClock(MIDNIGHT - timedelta(minutes=10)))
    eng.strategy = Quiet()
    await eng.run(duration=30)
    await eng.close()
    # While it was down: 0.01 BTC the journal never heard of, and a few dollars of cash moved (a
    # bigger sum, once adopted, would trip the day's loss breakers and keep it reduce-only anyway).
    db = venue(tmp)
    db.execute("INSERT OR REPLACE INTO positions(symbol, quantity) VALUES ('BTC/USD', '0.01')")
    # (Nothing traded, so the venue had written no account yet: this is its whole file.)
    db.execute("INSERT OR REPLACE INTO account(key, value) VALUES ('cash', ?), ('fill_seq', '0')",
               (str(prof.paper.starting_cash - 5),))
    db.commit()
    db.close()

    eng = await Engine.open(prof, seed=2)
    assert {d.kind for d in eng.reconciliation} == {"quantity_mismatch", "balance_mismatch"}
    assert eng.state is TradingState.REDUCE_ONLY
    eng.strategy = Buy(["ETH/USD", "SOL/USD"])
    eng.preroll()
    return eng, await entries_sent(eng)


async def test_reduce_only_holds_past_the_venues_midnight_while_a_difference_is_open(tmp_path):
    eng, before = await _restarted_with_differences(tmp_path)
    try:
        assert eng.clock.now() < MIDNIGHT
        while eng.clock.now() < MIDNIGHT + timedelta(minutes=1):
            await eng.run(duration=30)
        assert eng.portfolio.day_started == MIDNIGHT  # the day rolled...
        assert eng.state is TradingState.REDUCE_ONLY  # ...and lifted nothing
        assert await entries_sent(eng) == before
        assert "2 reconciliation differences" in eng.snapshot().halt_reason  # the header and status show it
    finally:
        await eng.close()


async def test_a_stale_data_breaker_clearing_does_not_lift_it(tmp_path):
    eng, before = await _restarted_with_differences(tmp_path)
    try:
        stale = next(b for b in eng.breakers if b.name == "stale_data")
        measure = stale.measure
        stale.measure = lambda: (D(60), D(30))
        await eng.run(duration=10)  # the timed breakers are read every few seconds
        assert stale.state is BreakerState.TRIPPED
        both = eng.halt_reason
        stale.measure = measure
        await eng.run(duration=10)
        (*_, cleared) = [r for r in await eng.journal.rows(["breaker"]) if r.ref == "stale_data"]
        assert cleared.data["old"] == "tripped" and stale.state is not BreakerState.TRIPPED
        assert eng.state is TradingState.REDUCE_ONLY
        await eng.run(duration=30)
        assert await entries_sent(eng) == before
        # The reason shown names what holds it, and only that.
        assert "stale_data tripped" in both and "reconciliation" in both
        assert "stale_data" not in eng.halt_reason and "reconciliation" in eng.halt_reason
    finally:
        await eng.close()


async def test_rearm_does_not_lift_it_and_the_last_answer_does(tmp_path):
    eng, before = await _restarted_with_differences(tmp_path)
    try:
        # Nothing a re-arm could lift: refused, saying what would.
        refusal = eng.rearm_refusal()
        assert refusal == ("nothing to re-arm: reduce-only while 2 reconciliation differences between journal and "
                           "venue are unanswered (the console's dialog, or `tradeconsole reconcile`); a re-arm does not lift that")
        assert await eng.rearm("try", trips_seen=eng.trips) == refusal
        # A halt on top: the re-arm lifts the halt only, and its alert says what still holds.
        await eng.halt("operator", "coffee")
        assert await eng.rearm("back", trips_seen=eng.trips) is None
        assert eng.state is TradingState.REDUCE_ONLY and "reconciliation" in eng.snapshot().halt_reason
        (*_, rearm) = [a for a in eng.snapshot().alerts if a.kind == "rearm"]
        assert rearm.message.startswith("re-armed: back; still reduce-only while 2 reconciliation differences")
        await eng.run(duration=30)
        assert await entries_sent(eng) == before

        # The first answer leaves one open; the last lifts reduce-only, and entries go again.
        kinds = [d.kind for d in eng.reconciliation]
        assert await eng.resolve_difference(kinds.index("balance_mismatch"), "adopt") is None
        assert eng.state is TradingState.REDUCE_ONLY and "1 reconciliation difference " in eng.halt_reason
        assert await eng.resolve_difference(kinds.index("quantity_mismatch"), "adopt") is None
        assert eng.state is TradingState.ACTIVE and eng.halt_reason == ""
        assert any(a.kind == "reconciliation" and a.message.endswith("answered: trading active")
                   for a in eng.snapshot().alerts)
        await eng.run(duration=30)
        assert await entries_sent(eng) - before
    finally:
        await eng.close()


# -- an adopted position gets a stop ------------------------------------------------------------
async def _entry_filled_while_down(tmp: Path, *, stop_above_market: bool = False):
    """Session 1 leaves a resting limit entry; the venue fills it while the engine is down."""
    prof = build_profile(tmp, symbols=["BTC/USD", "ETH/USD"], risk=OPEN, strategy=FAST, sizing={"max_order_usd": 500},
                         orders={"limit_offset_bps": 150, "limit_timeout_seconds": 3600})
    eng = await Engine.open(prof, seed=1)
    eng.strategy = Buy(["ETH/USD"])
    eng.preroll()
    await eng.run(duration=3)
    (entry,) = [o for o in eng.orders.working.values() if o.purpose is OrderPurpose.ENTRY]
    assert entry.protective_stop is not None and entry.limit_price is not None
    await eng.close()
    db = venue(tmp)
    db.execute("UPDATE orders SET status='filled', filled_qty=?, avg_fill_price=? WHERE client_order_id=?",
               (str(entry.quantity), str(entry.limit_price), entry.client_order_id))
    db.execute("INSERT OR REPLACE INTO positions(symbol, quantity) VALUES (?, ?)", (entry.symbol, str(entry.quantity)))
    cash = D(dict(db.execute("SELECT key, value FROM account"))["cash"]) - entry.quantity * entry.limit_price
    db.execute("UPDATE account SET value=? WHERE key='cash'", (str(cash),))
    db.commit()
    db.close()
    if stop_above_market:
        # As if the market fell through the entry's stop while the engine was down.
        j = sqlite3.connect(tmp / "j.sqlite")
        for seq, kind, data in j.execute("SELECT seq, kind, data FROM events WHERE kind IN ('order', 'checkpoint')"):
            row = json.loads(data)
            for o in row.get("open_orders", [row]):
                if o.get("client_order_id") == entry.client_order_id:
                    o["protective_stop"] = "999999"
            j.execute("UPDATE events SET data = ? WHERE seq = ?", (json.dumps(row), seq))
        j.commit()
        j.close()
    return prof, entry


async def _resolve_all(eng: Engine, adopt_first: bool) -> None:
    """Mark the fill made while down closed and adopt the venue's quantity. Tried the other way
    round, the adopt waits for the fill's answer (its P&L and fees would be lost): refused."""
    kinds = [d.kind for d in eng.reconciliation]
    if adopt_first:
        refusal = await eng.resolve_difference(kinds.index("quantity_mismatch"), "adopt")
        assert refusal is not None and "first" in refusal and eng.reconciliation[kinds.index("quantity_mismatch")].resolved is None
    for i in sorted(range(len(kinds)), key=lambda i: kinds[i] != "closed_while_down"):
        d = eng.reconciliation[i]
        assert await eng.resolve_difference(i, "mark_closed" if d.kind == "closed_while_down" else "adopt") is None


def _the_stop(eng: Engine, symbol: str):
    (stop,) = [o for o in eng.orders.working.values() if o.symbol == symbol and o.purpose is OrderPurpose.STOP]
    return stop


@pytest.mark.parametrize("adopt_first", [True, False], ids=["adopt-refused-until-the-fill-is-answered", "mark-closed-then-adopt"])
async def test_a_fill_while_down_adopted_gets_the_entrys_protective_stop(tmp_path, adopt_first):
    prof, entry = await _entry_filled_while_down(tmp_path)
    eng = await Engine.open(prof, seed=2)
    try:
        assert {d.kind for d in eng.reconciliation} >= {"quantity_mismatch", "closed_while_down"}
        await warm(eng, Quiet())
        await _resolve_all(eng, adopt_first)
        pos = eng.portfolio.positions[entry.symbol]
        assert pos.quantity == entry.quantity
        stop = _the_stop(eng, entry.symbol)
        assert (stop.side, stop.quantity, stop.stop_price) == (Side.SELL, entry.quantity, entry.protective_stop)
        assert stop.status is OrderStatus.SUBMITTED and pos.stop_order_id == stop.client_order_id
        # ... and at the venue
        assert stop.client_order_id in {o.client_order_id for o in await eng.broker.open_orders()}
        # journaled: the answer with the stop it chose, the gate's decision, the stop order
        (adopt,) = [r for r in await eng.journal.rows(["reconcile"]) if r.data["kind"] == "quantity_mismatch"]
        assert D(adopt.data["stop"]) == entry.protective_stop and entry.client_order_id in adopt.data["stop_basis"]
        (decision,) = await eng.journal.rows(["decision"], ref=stop.client_order_id)
        assert decision.data["approved"] and decision.data["purpose"] == "stop"
        assert [r.data["status"] for r in await eng.journal.rows(["order"], ref=stop.client_order_id)] == ["submitted"]
        (alert,) = [a for a in eng.snapshot().alerts if a.kind == "adopted_stop"]
        assert alert.severity == "warning" and str(entry.protective_stop) in alert.message
        assert f"entry {entry.client_order_id}" in alert.message
        (row,) = [r for r in eng.snapshot().positions if r.symbol == entry.symbol]
        assert row.stop_price == entry.protective_stop and row.stop_order_id == stop.client_order_id
        assert row.loss_at_stop is not None
        assert eng.state is TradingState.ACTIVE
        # It works as a stop: it is the one working order in the symbol after the engine runs on.
        await eng.run(duration=60)
        assert _the_stop(eng, entry.symbol).client_order_id == stop.client_order_id
    finally:
        await eng.close()


async def test_a_stop_the_market_has_passed_is_placed_from_the_market_with_a_critical_alert(tmp_path):
    prof, entry = await _entry_filled_while_down(tmp_path, stop_above_market=True)
    eng = await Engine.open(prof, seed=2)
    try:
        await warm(eng, Quiet())
        await _resolve_all(eng, True)
        bid = eng.quotes[entry.symbol].bid
        stop = _the_stop(eng, entry.symbol)
        assert stop.stop_price == (bid * (1 - prof.risk.stop_loss_default_pct / 100)).quantize(D("0.00000001"))
        assert stop.stop_price < bid
        (alert,) = [a for a in eng.snapshot().alerts if a.kind == "adopted_stop"]
        assert alert.severity == "critical" and "already past 999999" in alert.message
    finally:
        await eng.close()


async def test_a_holding_the_journal_never_knew_gets_the_default_stop_once_priced(tmp_path):
    prof = build_profile(tmp_path, symbols=["BTC/USD", "ETH/USD"], risk=OPEN, strategy=FAST)
    eng = await Engine.open(prof, seed=1)
    eng.strategy = Quiet()
    await eng.run(duration=10)
    await eng.close()
    db = venue(tmp_path)
    db.execute("INSERT OR REPLACE INTO positions(symbol, quantity) VALUES ('BTC/USD', '0.01')")
    db.execute("INSERT OR REPLACE INTO account(key, value) VALUES ('cash', ?), ('fill_seq', '0')",
               (str(prof.paper.starting_cash),))
    db.commit()
    db.close()

    eng = await Engine.open(prof, seed=2)
    try:
        (d,) = eng.reconciliation
        # No quote yet: no price to book it at or to place a stop from; it stays open.
        assert "no price for BTC/USD" in await eng.resolve_difference(0, "adopt")
        assert d.resolved is None and eng.state is TradingState.REDUCE_ONLY
        await warm(eng, Quiet())
        assert await eng.resolve_difference(0, "adopt") is None
        pos = eng.portfolio.positions["BTC/USD"]
        expected = (pos.avg_price * (1 - prof.risk.stop_loss_default_pct / 100)).quantize(D("0.00000001"))
        stop = _the_stop(eng, "BTC/USD")
        assert (stop.side, stop.quantity, stop.stop_price) == (Side.SELL, D("0.01"), expected)
        assert pos.stop_price == expected
        (alert,) = [a for a in eng.snapshot().alerts if a.kind == "adopted_stop"]
        assert alert.severity == "warning" and "no stop known" in alert.message and str(expected) in alert.message
        (row,) = await eng.journal.rows(["reconcile"])
        assert D(row.data["stop"]) == expected and "stop_loss_default_pct" in row.data["stop_basis"]
    finally:
        await eng.close()


async def _holding_eth(tmp: Path):
    """Session 1, still open: an ETH position bought at market, with its protective stop."""
    prof = build_profile(tmp, symbols=["BTC/USD", "ETH/USD"], risk=OPEN, strategy=FAST,
                         sizing={"max_order_usd": 500}, orders={"entry_type": "market"})
    eng = await Engine.open(prof, seed=1)
    eng.strategy = Buy(["ETH/USD"])
    eng.preroll()
    await eng.run(duration=5)
    return prof, eng


async def _venue_holds_eth(tmp: Path, eng, quantity) -> None:
    """Close `eng` and set what the paper venue holds of ETH/USD, as if traded there while down."""
    await eng.close()
    db = venue(tmp)
    db.execute("UPDATE positions SET quantity = ? WHERE symbol = 'ETH/USD'", (str(quantity),))
    db.commit()
    db.close()


async def test_adopting_more_of_a_held_position_resizes_its_stop_and_leaves_one(tmp_path):
    prof, eng = await _holding_eth(tmp_path)
    pos = eng.portfolio.positions["ETH/USD"]
    held, stop_price, old_stop = pos.quantity, pos.stop_price, pos.stop_order_id
    assert stop_price is not None and old_stop in eng.orders.working
    await _venue_holds_eth(tmp_path, eng, held * 2)

    eng = await Engine.open(prof, seed=2)
    try:
        (d,) = eng.reconciliation
        await warm(eng, Quiet())
        assert await eng.resolve_difference(0, "adopt") is None
        await eng.orders.process_events()
        stop = _the_stop(eng, "ETH/USD")
        assert (stop.quantity, stop.stop_price) == (held * 2, stop_price) and stop.client_order_id != old_stop
        assert old_stop not in {o.client_order_id for o in await eng.broker.open_orders()}
        (alert,) = [a for a in eng.snapshot().alerts if a.kind == "adopted_stop"]
        assert "the position's stop" in alert.message
    finally:
        await eng.close()


async def test_marking_a_position_closed_cancels_the_stop_it_had(tmp_path):
    # The venue shows none of what the journal holds (sold by hand elsewhere while down): marked
    # closed, its stop must go too, or, fired, it would sell what the books no longer hold.
    prof, eng = await _holding_eth(tmp_path)
    old_stop = eng.portfolio.positions["ETH/USD"].stop_order_id
    assert old_stop in eng.orders.working
    await _venue_holds_eth(tmp_path, eng, 0)

    eng = await Engine.open(prof, seed=2)
    try:
        (d,) = eng.reconciliation
        assert d.kind == "quantity_mismatch"
        await warm(eng, Quiet())
        assert await eng.resolve_difference(0, "mark_closed") is None
        assert "ETH/USD" not in eng.portfolio.positions
        assert old_stop not in eng.orders.working
        assert old_stop not in {o.client_order_id for o in await eng.broker.open_orders()}
        rows = [r for r in await eng.journal.rows(["order"]) if r.ref == old_stop]
        assert rows[-1].data["status"] == "cancelled"
        assert eng.state is TradingState.ACTIVE
    finally:
        await eng.close()


async def test_a_fill_while_down_is_booked_at_the_venues_price_with_its_stop(tmp_path):
    prof, entry = await _entry_filled_while_down(tmp_path)
    eng = await Engine.open(prof, seed=2)
    try:
        await warm(eng, Quiet())
        kinds = [d.kind for d in eng.reconciliation]
        down = kinds.index("closed_while_down")
        assert eng.reconciliation[down].actions == ("book", "mark_closed")
        assert await eng.resolve_difference(down, "book") is None
        # Booked as the fill it was: at the venue's price, journaled, with the entry's own stop.
        pos = eng.portfolio.positions[entry.symbol]
        assert (pos.quantity, pos.avg_price) == (entry.quantity, entry.limit_price)
        (fill,) = await eng.journal.rows(["fill"], ref=entry.client_order_id)
        assert D(fill.data["price"]) == entry.limit_price and D(fill.data["quantity"]) == entry.quantity
        assert eng.orders.orders[entry.client_order_id].status is OrderStatus.FILLED
        assert entry.client_order_id not in eng.orders.working
        stop = _the_stop(eng, entry.symbol)
        assert (stop.quantity, stop.stop_price) == (entry.quantity, entry.protective_stop)
        # The holding it explains is answered with it, and so is the cash, which matches again.
        assert {d.kind: d.resolved for d in eng.reconciliation} == {
            "closed_while_down": "book", "quantity_mismatch": "book", "balance_mismatch": "book"}
        assert eng.portfolio.cash == (await eng.broker.balances())[eng.broker.cash_currency]
        by = [r.data.get("by") for r in await eng.journal.rows(["reconcile"])]
        assert by.count(entry.client_order_id) == 2  # the two lines it answered say so
        assert eng.state is TradingState.ACTIVE
    finally:
        await eng.close()


async def test_a_fill_made_while_down_is_answered_before_its_quantity_is_adopted_so_it_is_never_counted_twice(tmp_path):
    prof, entry = await _entry_filled_while_down(tmp_path)
    eng = await Engine.open(prof, seed=2)
    try:
        await warm(eng, Quiet())
        kinds = [d.kind for d in eng.reconciliation]
        problem = await eng.resolve_difference(kinds.index("quantity_mismatch"), "adopt")
        assert problem is not None and f"book {entry.client_order_id} first" in problem
        assert entry.symbol not in eng.portfolio.positions  # nothing adopted
        assert await eng.resolve_difference(kinds.index("closed_while_down"), "book") is None
        assert eng.portfolio.positions[entry.symbol].quantity == entry.quantity  # booked once, with its trade
        assert len(await eng.journal.rows(["fill"], ref=entry.client_order_id)) == 1
        # The book answered the quantity too: nothing is left to adopt, nothing counted twice.
        assert await eng.resolve_difference(kinds.index("quantity_mismatch"), "adopt") == "already resolved (book)"
        assert eng.portfolio.positions[entry.symbol].quantity == entry.quantity
    finally:
        await eng.close()


async def test_a_position_left_bare_by_an_exit_that_never_reached_the_venue_gets_its_stop_back(tmp_path):
    from engine.models import Order, OrderType

    prof, eng = await _holding_eth(tmp_path)
    eng.strategy = Quiet()
    pos = eng.portfolio.positions["ETH/USD"]
    held, stop_price, old_stop = pos.quantity, pos.stop_price, pos.stop_order_id
    # An exit takes the stop off first, journals itself, and is killed before the venue hears of it.
    assert await eng.orders.cancel(old_stop, "exit replaces stop")
    await eng.orders.process_events()
    exit_ = Order(eng.orders.new_id(), "ETH/USD", Side.SELL, OrderType.MARKET, held, OrderPurpose.EXIT,
                  eng.clock.now(), status=OrderStatus.SUBMITTED, reason="strategy exit")
    eng.orders.orders[exit_.client_order_id] = exit_
    eng.orders.track(exit_)
    eng.orders._journal_order(exit_)
    await eng.close()

    eng = await Engine.open(prof, seed=2)
    try:
        (d,) = eng.reconciliation
        assert (d.kind, d.client_order_id) == ("unknown_to_venue", exit_.client_order_id)
        await warm(eng, Quiet())
        told: list[str] = []
        eng.broker.close_restored = told.append  # a venue broker stops looking the order up too
        assert await eng.resolve_difference(0, "mark_closed") is None
        assert told == [exit_.client_order_id]
        stop = _the_stop(eng, "ETH/USD")
        assert (stop.quantity, stop.stop_price) == (held, stop_price) and stop.client_order_id != old_stop
        assert stop.client_order_id in {o.client_order_id for o in await eng.broker.open_orders()}
        (alert,) = [a for a in eng.alerts.recent() if a.kind == "stop_restored"]
        assert alert.severity == "warning" and "no stop working at the venue" in alert.message
    finally:
        await eng.close()



async def test_marking_closed_a_position_the_venue_still_holds_is_refused(tmp_path):
    # The venue holds twice what the journal knew: "mark closed" would leave all of it there,
    # flat in the books, traded on by nothing and with no stop. Refused in one line; adopt works.
    prof, eng = await _holding_eth(tmp_path)
    held = eng.portfolio.positions["ETH/USD"].quantity
    await _venue_holds_eth(tmp_path, eng, held * 2)

    eng = await Engine.open(prof, seed=2)
    try:
        (d,) = eng.reconciliation
        await warm(eng, Quiet())
        refusal = await eng.resolve_difference(0, "mark_closed")
        assert refusal is not None and f"the venue holds {held * 2}" in refusal and "\n" not in refusal
        assert d.resolved is None and eng.portfolio.positions["ETH/USD"].quantity == held
        assert not [r for r in await eng.journal.rows(["reconcile"])]
        assert await eng.resolve_difference(0, "adopt") is None
        assert eng.portfolio.positions["ETH/USD"].quantity == held * 2
    finally:
        await eng.close()
