"""Dust: what a fee paid in the bought asset leaves behind after a position is sold.

Unit (engine/portfolio.py): a remainder below the venue's minimum is set aside, not a position,
still valued (equity and the P&L identity hold to the unit), sold down by the rest of an exit
without flipping, returned to the positions once a pile is sellable again, taken in when the
operator adopts the venue's quantity. The venue's rules (engine/brokers/minimums.py) against the
Binance emulator's markets. End to end: a Binance session (fees in the base asset) buys, closes
all, and holds exactly the venue's dust: no stop for it, no critical alert, not counted by the
gate, shown in the snapshot, restored after a restart with no reconciliation difference.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal as D

from emulators.binance import BinanceEmulator
from test_venues_session import Script, set_keys, start, until, venue_profile

from engine.engine import Engine
from engine.models import Fill, Quote, Side
from engine.portfolio import Portfolio

KEY, SECRET = "dustKEYtest0123456789ab", "dustSECRETtest0123456789ab"
T0 = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
SYM = "BTC/USDT"


def below(symbol: str, qty: D, price: D) -> bool:
    """Binance BTC/USDT: step 0.00001, minimum notional 5."""
    return qty < D("0.00001") or qty * price < 5


def fill(side: Side, qty: str, price: str, fee: str = "0", cid: str = "o") -> Fill:
    return Fill(cid, SYM, side, D(qty), D(price), D(fee), T0, "taker")


def quote(bid: str, ask: str) -> Quote:
    return Quote(SYM, T0, D(bid), D(ask), D(1), D(1), (D(bid) + D(ask)) / 2)


def pnl_identity(p: Portfolio) -> D:
    """equity - start - (realized + unrealized - fees): zero when nothing is lost."""
    return p.equity - p.starting_cash - (p.realized_pnl + p.unrealized_pnl - p.fees)


def test_a_remainder_below_the_minimum_is_dust_valued_but_not_a_position():
    p = Portfolio(D(10000))
    p.is_dust = below
    p.apply_fill(fill(Side.BUY, "0.01997001", "50000", "1.0", "entry"))  # 0.01999 bought, fee in BTC
    p.apply_fill(fill(Side.SELL, "0.01997", "51000", "1.02", "exit"))  # the venue's step truncates the sale
    assert SYM not in p.positions and p.open_positions() == 0
    assert p.dust_quantity(SYM) == D("0.00000001")
    assert p.gross_exposure == 0 and p.exposure == {}  # the gate's exposure figures never carry it
    assert len(p.closed_trades) == 1  # the round trip is over
    assert p.closed_trades[0] == (D(51000) - D(50000)) * D("0.01997") - D("2.02")
    assert p.equity == p.cash + D("0.00000001") * D(50000)  # at its last mark, as a position is
    p.mark(quote("60000", "60001"))  # still marked: its value moves with the market
    assert p.equity == p.cash + D("0.00000001") * D(60000)
    assert pnl_identity(p) == 0


def test_the_rest_of_an_exit_sells_the_dust_down_and_never_flips():
    p = Portfolio(D(10000))
    p.is_dust = below
    p.apply_fill(fill(Side.BUY, "0.02", "50000"))
    p.apply_fill(fill(Side.SELL, "0.01996", "50000"))  # a partial fill leaves $2: below the minimum
    assert SYM not in p.positions and p.dust_quantity(SYM) == D("0.00004")
    p.apply_fill(fill(Side.SELL, "0.00004", "50000"))  # the exit's last fill
    assert SYM not in p.positions and p.dust == {}
    assert pnl_identity(p) == 0


def test_a_pile_that_grows_past_the_minimum_is_a_position_again_and_adopting_the_venue_takes_it_in():
    p = Portfolio(D(10000))
    p.is_dust = below
    for _ in range(2):  # two round trips, each leaving 0.00006 (= $3, under the $5 notional)
        p.apply_fill(fill(Side.BUY, "0.01006", "50000"))
        p.apply_fill(fill(Side.SELL, "0.01", "50000"))
    # 0.00012 = $6: sellable again, so a position (its stop is the operator's; close-all sells it)
    assert p.dust == {} and p.positions[SYM].quantity == D("0.00012")
    assert p.positions[SYM].stop_price is None
    assert pnl_identity(p) == 0
    q = Portfolio(D(10000))
    q.is_dust = below
    q.apply_fill(fill(Side.BUY, "0.01003", "50000"))
    q.apply_fill(fill(Side.SELL, "0.01", "50000"))
    q.apply_fill(fill(Side.BUY, "0.5", "50000"))
    assert q.positions[SYM].quantity == D("0.5") and q.dust_quantity(SYM) == D("0.00003")
    q.adopt_quantity(SYM, D("0.50003"), quote("50000", "50000"))  # the venue's whole holding
    assert q.positions[SYM].quantity == D("0.50003") and q.dust == {}
    q.adopt_quantity(SYM, D("0.00002"), quote("50000", "50000"))  # the venue holds only dust: so do we
    assert SYM not in q.positions and q.dust_quantity(SYM) == D("0.00002")


def test_without_the_venues_rule_nothing_is_dust():
    p = Portfolio(D(10000))
    p.apply_fill(fill(Side.BUY, "0.01997001", "50000"))
    p.apply_fill(fill(Side.SELL, "0.01997", "50000"))
    assert p.positions[SYM].quantity == D("0.00000001") and p.dust == {}


async def test_the_venues_minimums_decide_what_is_dust():
    from engine.brokers.ccxt_broker import CcxtBroker
    from engine.brokers.keys import load_keys
    from engine.clock import WallClock
    from engine.venue_config import VenueSection

    emu = await BinanceEmulator({KEY: SECRET}).start()
    v = VenueSection(name="binance", base_url=emu.url, timeouts={"poll_seconds": 0, "request_seconds": 2})
    b = CcxtBroker(v, "testnet", load_keys(v, "testnet", {"BINANCE_TESTNET_API_KEY": KEY,
                                                          "BINANCE_TESTNET_API_SECRET": SECRET}),
                   WallClock(), [SYM])
    assert not b.is_dust(SYM, D("0.00000001"), D(50000))  # no markets yet: never guessed away
    await b.connect()
    try:
        assert b.is_dust(SYM, D("0.00000079"), D(50000))  # truncates to 0 at the 0.00001 step
        assert b.is_dust(SYM, D("0.00009"), D(50000))  # $4.50: under the $5 minimum notional
        assert not b.is_dust(SYM, D("0.0001"), D(50000))  # $5: an order the venue takes
        assert not b.is_dust("DOGE/USDT", D("0.00000001"), D(1))  # a market it does not know
    finally:
        await b.close()
        await emu.stop()


async def test_close_all_at_binance_leaves_dust_the_engine_holds_without_a_stop(tmp_path, monkeypatch):
    emu = await BinanceEmulator({KEY: SECRET}).start()  # fees in the asset received, as without BNB
    set_keys(monkeypatch, "binance", KEY, SECRET)
    profile = venue_profile(tmp_path, "binance", emu.url, risk={"max_open_positions": 1})
    eng = await start(profile)
    runner = asyncio.create_task(eng.run())
    try:
        eng.strategy = Script(SYM)
        await until(lambda: SYM in eng.portfolio.positions and eng.orders.stop_order(SYM) is not None, "entry + stop")
        await eng.close_all("operator")
        await until(lambda: not eng.orders.working and SYM not in eng.portfolio.positions, "flat after close-all")
        held = emu.core.free["BTC"] + emu.core.locked["BTC"]
        p = eng.portfolio
        assert D(0) < held < D("0.00001")  # the fee truncated the sale: the venue keeps dust
        assert p.dust_quantity(SYM) == held and p.open_positions() == 0
        assert emu.core.open_orders() == []  # no stop attempted for it
        assert not [a for a in eng.alerts.recent(200) if a.severity == "critical"]
        (note,) = [a for a in eng.alerts.recent(200) if a.kind == "dust"]
        assert note.severity == "info" and SYM in note.message
        rows = await eng.journal.rows(kinds=["dust"])
        assert rows and D(rows[-1].data["quantity"]) == held
        exit_fill = [r for r in await eng.journal.rows(kinds=["fill"]) if r.data["purpose"] == "exit"][-1]
        assert D(exit_fill.data["position_after"]) == 0  # the round trip closed in the record
        d = p.dust[SYM]
        assert p.equity == p.cash + d.quantity * d.last_price and pnl_identity(p) == 0
        (view,) = eng.snapshot().dust
        assert view.symbol == SYM and view.quantity == held and eng.snapshot().positions == ()
        from engine.headless import summary_lines

        assert any(line.startswith("dust") and f"{SYM} {held:f}" in line for line in summary_lines(eng, 0))
        from console.cli_control import status_lines
        from engine.control.server import status_reply

        reply = status_reply(eng)
        assert reply["positions"] == [] and [(x["symbol"], x["quantity"]) for x in reply["dust"]] == [(SYM, held)]
        assert any(line.startswith("dust") and f"{SYM} {held}" in line and "no stop" in line
                   for line in status_lines(reply))
        assert f"held as dust ({held:f} in all" in note.message
        # The gate does not count it: with one position allowed, a new entry elsewhere passes.
        eng.strategy = Script("ETH/USDT")
        await until(lambda: "ETH/USDT" in eng.portfolio.positions, "a new entry under max_open_positions 1")
        entry = [r for r in await eng.journal.rows(kinds=["decision"])
                 if r.data["symbol"] == "ETH/USDT" and r.data["purpose"] == "entry"][-1]
        count = next(c for c in entry.data["checks"] if c["name"] == "max_open_positions")
        assert count["passed"]
        await until(lambda: eng.orders.stop_order("ETH/USDT") is not None, "its stop")
        eng.stop()
        await asyncio.wait_for(runner, 5)
    finally:
        eng.stop()
        await eng.close()
    # A restart rebuilds the dust (checkpoints list positions only; the journal's dust row has
    # it) and reconciles with no difference.
    eng = await Engine.open(profile)
    try:
        assert eng.reconciliation == []
        assert eng.portfolio.dust_quantity(SYM) == held
        assert eng.portfolio.positions["ETH/USDT"].quantity == emu.core.free["ETH"] + emu.core.locked["ETH"]
    finally:
        await eng.close()
        await emu.stop()


async def test_the_positions_pane_names_the_dust_under_the_table():
    from textual.app import App, ComposeResult

    from console.widgets.positions import PositionsPane
    from engine.snapshot import DustView, EngineSnapshot

    class Host(App):
        def compose(self) -> ComposeResult:
            yield PositionsPane()

    def snap(dust: tuple = ()) -> EngineSnapshot:
        return EngineSnapshot(T0, "testnet", "t", "binance", "active", "", True, D(100), D(100), D(0), D(0), D(0),
                              D(0), D(0), (), (), (), (), (), (), dust=dust)

    async with Host().run_test(size=(100, 12)) as pilot:
        pane = pilot.app.query_one(PositionsPane)
        pane.show(snap((DustView(SYM, D("0.00000079"), D(50000), D("0.0395")),)))
        await pilot.pause()
        assert pane.border_title == "Positions (0)" and pane.table.row_keys == []
        assert pane.border_subtitle == "dust: BTC/USDT 0.00000079 (~0.04)"
        pane.show(snap())  # the dust sold or adopted: the line goes
        await pilot.pause()
        assert pane.border_subtitle == ""


async def test_a_fee_paid_in_a_third_asset_is_on_the_fill_row_and_said_once(tmp_path, monkeypatch):
    # Binance with "pay fees in BNB": the fee leaves the BNB balance, so the trade's own assets
    # move in full, and the engine, with no BNB price, books no fee but must not hide it.
    emu = await BinanceEmulator({KEY: SECRET}, fee_in="BNB",
                                balances={"USDT": 100000, "BTC": 0, "ETH": 0, "BNB": 10}).start()
    set_keys(monkeypatch, "binance", KEY, SECRET)
    eng = await start(venue_profile(tmp_path, "binance", emu.url))
    runner = asyncio.create_task(eng.run())
    try:
        eng.strategy = Script(SYM)
        await until(lambda: SYM in eng.portfolio.positions and eng.orders.stop_order(SYM) is not None, "entry + stop")
        await eng.close_all("operator")
        await until(lambda: SYM not in eng.portfolio.positions and not eng.orders.working, "flat after close-all")
        fills = await eng.journal.rows(kinds=["fill"])
        assert len(fills) >= 2  # the entry and the exit, each charged in BNB
        for r in fills:
            amount, asset = r.data["unbooked_fee"].split()
            assert asset == "BNB" and D(amount) > 0 and D(r.data["fee"]) == 0
        charged = sum(D(r.data["unbooked_fee"].split()[0]) for r in fills)
        assert D(10) - emu.core.free["BNB"] == charged  # every BNB the venue took is on a row
        assert eng.portfolio.dust == {} and emu.core.free["BTC"] == 0  # nothing shaved off the base
        (said,) = [a for a in eng.alerts.recent(200) if a.kind == "unbooked_fee"]
        assert said.severity == "warning" and "BNB" in said.message and "not in P&L" in said.message
        eng.stop()
        await asyncio.wait_for(runner, 5)
    finally:
        eng.stop()
        await eng.close()
        await emu.stop()
