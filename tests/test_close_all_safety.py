"""Close-all when things go wrong: a journal that cannot commit, two closers at once, the engine
closing in the middle of an exit, an entry the venue will not cancel. Whatever happens, a position
is never left at the venue with neither its stop nor its exit, one position gets one exit, and
nothing says "flat" while an entry still works.

Paper venue, quotes pushed by hand, the venue's answers held back with events (never timers).
"""
from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import timedelta
from decimal import Decimal as D

import pytest

import engine.commands as commands
from conftest import build_profile
from test_exit_races import RISK, Quiet
from engine.engine import Engine, paper_store_path
from engine.manual import ManualOrderSpec
from engine.models import OrderPurpose, OrderType, Quote
from engine.strategy.base import Strategy

BTC, ETH = "BTC/USD", "ETH/USD"
SPINS = 200  # event-loop turns given to a racing task (a bound, not a clock)


@pytest.fixture
async def engine(tmp_path):
    """`await engine(positions)`: a paper engine on BTC and ETH, warmed, quiet, holding the given
    long positions, each with its stop."""
    opened: list[Engine] = []

    async def make(positions: dict[str, str]) -> Engine:
        prof = build_profile(tmp_path, symbols=[BTC, ETH], sizing={"max_order_usd": 3000}, risk=RISK,
                             control={"socket": False}, paper={"latency_ms": 0})
        eng = await Engine.open(prof, seed=1)
        opened.append(eng)
        eng.strategy = Quiet()
        eng.preroll()
        await eng.run(duration=5)
        for symbol, qty in positions.items():
            spec = ManualOrderSpec(symbol, "buy", quantity=D(qty), type="market")
            assert await eng.submit_manual(spec) is None
        await eng.run(duration=2)
        assert all(eng.orders.stop_order(s) is not None for s in positions)
        return eng

    yield make
    for eng in opened:
        await eng.close()


async def push(eng: Engine, symbol: str) -> None:
    q = eng.quotes[symbol]
    eng.clock.set(eng.clock.now() + timedelta(seconds=1))
    await eng.on_batch([Quote(symbol, eng.clock.now(), q.bid, q.ask, D(1000), D(1000), (q.bid + q.ask) / 2,
                              D(100000))])


async def venue_stops(eng: Engine) -> dict[str, str]:
    return {o.symbol: o.client_order_id for o in await eng.broker.open_orders() if o.type is OrderType.STOP}


def exits_in(eng: Engine, symbol: str) -> list:
    return [o for o in eng.orders.orders.values() if o.purpose is OrderPurpose.EXIT and o.symbol == symbol]


# -- finding 1: a journal that cannot commit ------------------------------------------------------
async def test_close_all_with_a_locked_journal_takes_no_stop_off_and_tries_every_position(engine, tmp_path):
    eng = await engine({BTC: "0.02", ETH: "0.3"})
    stops = await venue_stops(eng)
    assert set(stops) == {BTC, ETH}
    other = sqlite3.connect(str(tmp_path / "j.sqlite"), timeout=0)  # another process holds the write lock
    other.execute("BEGIN IMMEDIATE")
    try:
        for source in ("console", "cli"):  # pressed twice: the second tries again, same outcome
            with pytest.raises(Exception, match="locked"):
                await eng.close_all(source)
            assert await venue_stops(eng) == stops  # every stop still at the venue
            assert await eng.broker.positions() == {BTC: D("0.02"), ETH: D("0.3")}
            # No exit that never left counts as working (it would make the next close-all skip it).
            assert not [o for o in eng.orders.working.values() if o.purpose is OrderPurpose.EXIT]
            assert not [o for o in await eng.broker.open_orders() if o.purpose is OrderPurpose.EXIT]
        told = [a for a in eng.alerts.recent(200) if a.kind == "exit_not_sent" and a.severity == "critical"]
        assert {s for s in (BTC, ETH) if any(a.message.startswith(s) for a in told)} == {BTC, ETH}
        assert all("its protective stop stays" in a.message for a in told)
    finally:
        other.rollback()
        other.close()
    # The journal commits again: close-all flattens.
    await eng.close_all("console")
    for symbol in (BTC, ETH):
        await push(eng, symbol)
    assert await eng.broker.positions() == {} and not eng.portfolio.positions


# -- finding 6: two closers at once ---------------------------------------------------------------
def slow_cancels(eng: Engine) -> None:
    """A venue whose cancel is a round trip: other tasks run while it is out."""
    real = eng.broker.cancel

    async def cancel(cid):
        for _ in range(5):
            await asyncio.sleep(0)
        return await real(cid)

    eng.broker.cancel = cancel


@pytest.mark.parametrize("second", ["close_all", "close_position"])
async def test_two_closers_at_once_send_one_exit_per_position(engine, second):
    eng = await engine({BTC: "0.02"})
    slow_cancels(eng)
    other = eng.close_all("cli") if second == "close_all" else eng.close_position(BTC, "row close")
    await asyncio.gather(eng.close_all("console"), other)
    sent = exits_in(eng, BTC)
    assert len(sent) == 1 and sent[0].quantity == D("0.02")
    await push(eng, BTC)
    assert await eng.broker.positions() == {}
    rows = [r for r in await eng.journal.rows(kinds=["order"]) if r.data["purpose"] == "exit"]
    assert {r.ref for r in rows} == {sent[0].client_order_id}


# -- finding 2: the engine closing in the middle of an exit ---------------------------------------
async def test_closing_the_engine_waits_for_an_exit_under_way_and_starts_no_other(engine, tmp_path):
    eng = await engine({BTC: "0.02", ETH: "0.3"})
    stops = {s: eng.orders.stop_order(s).client_order_id for s in (BTC, ETH)}
    real_submit, real_close = eng.broker.submit, eng.broker.close
    sending, answer = asyncio.Event(), asyncio.Event()
    venue_closed_while_sending: list[bool] = []

    async def submit(order):
        if order.purpose is OrderPurpose.EXIT:
            sending.set()  # the stop is off: the exit is on its way
            await answer.wait()
        return await real_submit(order)

    async def close():
        venue_closed_while_sending.append(sending.is_set() and not answer.is_set())
        answer.set()  # never hang: the venue answers once it is being closed
        return await real_close()

    eng.broker.submit, eng.broker.close = submit, close
    closing_all = asyncio.create_task(eng.close_all("cli"))
    await asyncio.wait_for(sending.wait(), 30)  # a bound: BTC's exit is out
    closer = asyncio.create_task(eng.close())  # SIGTERM's runner: settle(), then close()
    for _ in range(SPINS):
        await asyncio.sleep(0)
    answer.set()
    await closer
    await asyncio.gather(closing_all, return_exceptions=True)
    assert venue_closed_while_sending == [False]
    with sqlite3.connect(paper_store_path(tmp_path / "j.sqlite")) as db:
        held = {s: D(q) for s, q in db.execute("SELECT * FROM positions") if D(q) != 0}
        status = dict(db.execute("SELECT client_order_id, status FROM orders"))
    # BTC's exit went out before the venue closed; ETH's step never started: its stop stays.
    assert BTC not in held and held == {ETH: D("0.3")}
    assert status[stops[ETH]] == "submitted" and status[stops[BTC]] == "cancelled"


# -- finding 4: an entry the venue will not cancel ------------------------------------------------
async def resting_entry_the_venue_keeps(eng: Engine) -> str:
    below = (eng.quotes[ETH].bid * D("0.985")).quantize(D("0.01"))
    spec = ManualOrderSpec(ETH, "buy", quantity=D("0.1"), type="limit", limit_price=below)
    assert await eng.submit_manual(spec) is None
    (entry,) = [c for c, o in eng.orders.working.items() if o.purpose is OrderPurpose.ENTRY]
    real = eng.broker.cancel

    async def cancel(cid):
        return False if cid == entry else await real(cid)

    eng.broker.cancel = cancel
    return entry


async def test_close_all_then_quit_stays_while_an_entry_still_works(engine, monkeypatch):
    from console.app import TradeConsoleApp
    from console.modals import ErrorModal, QuitModal
    from test_console_keys import until

    monkeypatch.setattr(commands, "CANCEL_BACKOFF_START", 0.001)
    eng = await engine({})
    entry = await resting_entry_the_venue_keeps(eng)
    app = TradeConsoleApp(eng, start_engine=False)
    async with app.run_test(size=(110, 32)) as pilot:
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitModal))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ErrorModal), timeout=30)
        assert entry in app.screen.message and "still working" in app.screen.message
        assert not app._exiting
    assert entry in {o.client_order_id for o in await eng.broker.open_orders()}


async def test_cli_close_all_does_not_say_flat_while_an_entry_still_works(tmp_path, monkeypatch, capsys):
    from console.cli import main
    from engine.config_loader import load_profile
    from engine.control.service import start_control
    from test_control_cli import write_profile

    monkeypatch.setattr(commands, "CANCEL_BACKOFF_START", 0.001)
    p = str(write_profile(tmp_path, risk=RISK, paper={"latency_ms": 0}, orders={"limit_timeout_seconds": 7200}))
    eng = await Engine.open(load_profile(p), seed=1)
    svc = None
    try:
        eng.strategy = Quiet()
        eng.preroll()
        eng.speed = 0
        await eng.run(duration=5)
        entry = await resting_entry_the_venue_keeps(eng)
        svc = await start_control(eng)
        code = await asyncio.to_thread(main, ["close-all", "--yes", "--wait", "0", "--profile", p])
        out = capsys.readouterr().out
        assert code == 1, out
        assert "flat: no open positions" not in out and "NOT flat" in out and entry in out
        assert entry in {o.client_order_id for o in await eng.broker.open_orders()}
    finally:
        if svc is not None:
            await svc.stop()
        await eng.close()



# -- the strategy's exits inside a batch: one commit for their decisions before any stop comes off --
class ExitWhenArmed(Strategy):
    """Buys its symbols while flat and not armed; sells them (exits) once armed."""

    name = "exit_when_armed"

    def __init__(self, symbols=(BTC,)) -> None:
        self.armed = False
        self.symbols = symbols

    def on_quote(self, quote, position_qty):
        from engine.models import Side, Signal

        if quote.symbol not in self.symbols:
            return None
        if position_qty == 0 and not self.armed:
            return Signal(quote.symbol, Side.BUY, 1.0, 1.0, (quote.ask * D("0.92")).quantize(D("0.01")), quote.ask,
                          "test entry", self.name, quote.ts)
        if position_qty != 0 and self.armed:
            return Signal(quote.symbol, Side.SELL, 1.0, 1.0, (quote.bid * D("1.08")).quantize(D("0.01")),
                          quote.bid, "test exit", self.name, quote.ts)
        return None


async def strategy_holding(tmp_path, symbols) -> tuple[Engine, ExitWhenArmed]:
    prof = build_profile(tmp_path, symbols=[BTC, ETH], sizing={"max_order_usd": 3000}, risk=RISK,
                         control={"socket": False}, paper={"latency_ms": 0})
    eng = await Engine.open(prof, seed=1)
    strategy = eng.strategy = ExitWhenArmed(symbols)
    eng.preroll()
    await eng.run(duration=5)
    for _ in range(3):
        if all(eng.orders.position_qty(s) for s in symbols):
            break
        await push_all(eng, symbols)
    assert all(eng.orders.stop_order(s) is not None for s in symbols)
    return eng, strategy


async def push_all(eng: Engine, symbols) -> None:
    eng.clock.set(eng.clock.now() + timedelta(seconds=1))
    await eng.on_batch([Quote(s, eng.clock.now(), eng.quotes[s].bid, eng.quotes[s].ask, D(1000), D(1000),
                              (eng.quotes[s].bid + eng.quotes[s].ask) / 2, D(100000)) for s in symbols])


def working_exits(eng: Engine) -> list[str]:
    return sorted(o.symbol for o in eng.orders.working.values() if o.purpose is OrderPurpose.EXIT)


async def test_a_journal_that_locks_while_a_batched_exits_stop_comes_off_leaves_no_position_bare(tmp_path):
    """The batch's commit succeeds, then another process takes the journal's write lock while the
    stop's cancel is out: the exit, committed already, still goes right after its stop."""
    eng, strategy = await strategy_holding(tmp_path, (BTC,))
    try:
        other = sqlite3.connect(str(tmp_path / "j.sqlite"), timeout=0)
        real_cancel = eng.broker.cancel

        async def cancel(cid):
            if eng.orders.orders[cid].type is OrderType.STOP:
                other.execute("BEGIN IMMEDIATE")
            return await real_cancel(cid)

        eng.broker.cancel = cancel
        strategy.armed = True
        try:
            with contextlib.suppress(Exception):  # the batch's own later commit may fail: the exit has left
                await push_all(eng, (BTC,))
            assert await eng.broker.positions() == {} and await venue_stops(eng) == {}
        finally:
            other.rollback()
            other.close()
            eng.broker.cancel = real_cancel
    finally:
        await eng.close()


async def test_a_stop_cancel_that_fails_mid_batch_leaves_every_position_closed_or_covered(tmp_path):
    """Two exits in one batch; the venue call for ETH's stop cancel raises. BTC's exit has gone;
    ETH keeps its stop and no exit of its counts as working, so close-all flattens it after."""
    eng, strategy = await strategy_holding(tmp_path, (BTC, ETH))
    try:
        real_cancel = eng.broker.cancel

        async def cancel(cid):
            o = eng.orders.orders[cid]
            if o.type is OrderType.STOP and o.symbol == ETH:
                raise ConnectionError("venue timed out")
            return await real_cancel(cid)

        eng.broker.cancel = cancel
        strategy.armed = True
        with pytest.raises(ConnectionError):
            await push_all(eng, (BTC, ETH))
        assert list(await eng.broker.positions()) == [ETH] and list(await venue_stops(eng)) == [ETH]
        assert ETH not in working_exits(eng) and eng.exits_under_way() == []
        eng.broker.cancel = real_cancel
        strategy.armed = False
        strategy.symbols = ()
        await eng.close_all("console")
        await push_all(eng, (BTC, ETH))
        assert await eng.broker.positions() == {} and await venue_stops(eng) == {}
    finally:
        await eng.close()


async def test_a_strategy_exit_in_a_batch_with_a_locked_journal_takes_no_stop_off(tmp_path):
    prof = build_profile(tmp_path, symbols=[BTC, ETH], sizing={"max_order_usd": 3000}, risk=RISK,
                         control={"socket": False}, paper={"latency_ms": 0})
    eng = await Engine.open(prof, seed=1)
    try:
        strategy = eng.strategy = ExitWhenArmed()
        eng.preroll()
        await eng.run(duration=5)
        assert eng.orders.stop_order(BTC) is not None and eng.orders.position_qty(BTC) > 0
        stops, held = await venue_stops(eng), await eng.broker.positions()
        strategy.armed = True
        other = sqlite3.connect(str(tmp_path / "j.sqlite"), timeout=0)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(Exception, match="locked"):
                await push(eng, BTC)
            assert await venue_stops(eng) == stops and await eng.broker.positions() == held
            assert not [o for o in eng.orders.working.values() if o.purpose is OrderPurpose.EXIT]
            assert eng.exits_under_way() == []  # no guard left held by the batch that failed
        finally:
            other.rollback()
            other.close()
        await push(eng, BTC)  # the journal commits again: the exit goes, its stop comes off
        await push(eng, BTC)
        assert await eng.broker.positions() == {} and BTC not in eng.portfolio.positions
        assert await venue_stops(eng) == {}
        assert len([o for o in exits_in(eng, BTC) if o.status.value == "filled"]) == 1
    finally:
        await eng.close()
