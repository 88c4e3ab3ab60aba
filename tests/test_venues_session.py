"""A full headless session on each emulated venue (Binance and Bybit through ccxt, Alpaca through
alpaca-py), everything on 127.0.0.1: the engine opens the testnet profile through `Engine.open`
(broker from the factory, environment checked, venue feed on the wall clock), then

    venue quotes -> strategy signals -> gate -> orders -> fills -> position + protective stop
    -> halt (cancel_entries: the resting entry goes, the stop stays) -> close-all (flat)

and the journal and the emulator's own books are checked at each step. The strategy is a script
(one marketable entry, one resting entry) so the session is short and the same every time."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import ANY_READINESS, LOOSE_RISK, build_profile
from emulators.alpaca import AlpacaEmulator
from emulators.binance import BinanceEmulator
from emulators.bybit import BybitEmulator

from engine.engine import Engine
from engine.models import OrderPurpose, OrderStatus, Quote, Side, Signal
from engine.strategy.base import Strategy

KEY, SECRET = "sessKEYtest0123456789", "sessSECRETtest0123456789"
LIVE_KEY, LIVE_SECRET = "sessKEYlive0123456789", "sessSECRETlive0123456789"


@dataclass
class Venue:
    emulator: type
    symbols: tuple[str, str]  # (the one that fills, the one that rests)
    env_word: str  # TESTNET | PAPER
    cancel_all: tuple[str, str]  # the endpoint a halt must never use
    base: Callable[[Any, str], Decimal]  # what the venue holds of a symbol's asset


def _spot(emu: Any, symbol: str) -> Decimal:
    base = symbol.split("/")[0]
    return emu.core.free.get(base, Decimal(0)) + emu.core.locked.get(base, Decimal(0))


def _shares(emu: Any, symbol: str) -> Decimal:
    return emu.core.free.get(symbol, Decimal(0)) + emu.core.locked.get(symbol, Decimal(0))


VENUES = {
    "binance": Venue(BinanceEmulator, ("BTC/USDT", "ETH/USDT"), "TESTNET", ("DELETE", "/api/v3/openOrders"), _spot),
    "bybit": Venue(BybitEmulator, ("BTC/USDT", "ETH/USDT"), "TESTNET", ("POST", "/v5/order/cancel-all"), _spot),
    "alpaca": Venue(AlpacaEmulator, ("AAPL", "MSFT"), "PAPER", ("DELETE", "/v2/orders"), _shares),
}


class Script(Strategy):
    """One buy signal per planned symbol, at the first quote: priced 2 % through the ask (the
    limit, 1 % inside the signal price, still crosses: it fills) or at the ask (the limit rests
    1 % under it)."""

    name = "script"

    def __init__(self, through: str | None = None, rest: str | None = None) -> None:
        self.plan = {s: f for s, f in ((through, Decimal("1.02")), (rest, Decimal(1))) if s}

    def on_quote(self, quote: Quote, position_qty: object) -> Signal | None:
        factor = self.plan.pop(quote.symbol, None)
        if factor is None or position_qty != 0:
            return None
        price = quote.ask * factor
        stop = (quote.ask * Decimal("0.92")).quantize(Decimal("0.01"))
        return Signal(quote.symbol, Side.BUY, 0.5, 0.9, stop, price, "scripted session", self.name, quote.ts)


def venue_profile(tmp_path, name: str, url: str, mode: str = "testnet", **extra: Any):
    v = VENUES[name]
    sections: dict[str, Any] = {
        "mode": mode, "stage": "testnet" if mode == "testnet" else "micro", "symbols": list(v.symbols),
        "venue": {"name": name, "base_url": url, "timeouts": {
            "poll_seconds": 0.05, "request_seconds": 2, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05}},
        "feed": {"tick_seconds": 0.05},
        "orders": {"entry_type": "limit", "limit_offset_bps": 100},
        "sizing": {"max_order_usd": 1000},
        "risk": {**LOOSE_RISK, **ANY_READINESS, "max_book_fraction": 10},
    }
    for k, val in extra.items():
        sections[k] = {**sections.get(k, {}), **val} if isinstance(val, dict) else val
    return build_profile(tmp_path, f"{name}-{mode}", **sections)


def set_keys(monkeypatch, name: str, key: str = KEY, secret: str = SECRET, word: str | None = None) -> None:
    w = word or VENUES[name].env_word
    monkeypatch.setenv(f"{name.upper()}_{w}_API_KEY", key)
    monkeypatch.setenv(f"{name.upper()}_{w}_API_SECRET", secret)


async def grant(profile, stage: str | None = None) -> None:
    """Journal the stage as `tradeconsole promote` would: a testnet or live profile needs it."""
    from datetime import datetime, timezone

    from engine.journal import Journal
    from engine.profile import journal_path

    j = await Journal.open(journal_path(profile))
    j.append("stage", datetime.now(timezone.utc), stage or profile.stage,
             {"from": "paper", "to": stage or profile.stage, "direction": "promote"})
    await j.close()


async def start(profile) -> Engine:
    await grant(profile)
    return await Engine.open(profile)


async def until(pred: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            pytest.fail(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


def dust(eng: Engine, symbol: str) -> bool:
    pos = eng.portfolio.positions.get(symbol)
    return pos is None or abs(pos.quantity) * pos.last_price < Decimal("0.10")


async def journal(eng: Engine, kind: str) -> list:
    return await eng.journal.rows(kinds=[kind])


@pytest.mark.parametrize("name", list(VENUES))
async def test_a_full_session_on_the_emulated_venue(tmp_path, monkeypatch, name):
    v = VENUES[name]
    emu = await v.emulator({KEY: SECRET}).start()
    set_keys(monkeypatch, name)
    eng = await start(venue_profile(tmp_path, name, emu.url))
    runner: asyncio.Task | None = None
    try:
        fills_sym, rest_sym = v.symbols
        # Started from the venue: its broker, its cash, its environment, the emulator named.
        assert eng.broker.name == name and eng.broker.connected
        assert eng.portfolio.cash == eng.portfolio.starting_cash == Decimal(100000)
        assert eng.broker_environment == "testnet"
        assert eng.reconciliation == []
        snap = eng.snapshot()
        assert snap.venue == name and snap.venue_notice == f"via 127.0.0.1:{emu.port} (emulator)"
        (venue_row,) = await journal(eng, "venue")
        assert venue_row.data["endpoint"] == emu.url and venue_row.data["environment"] == "testnet"
        eng.strategy = Script(fills_sym, rest_sym)

        runner = asyncio.create_task(eng.run())
        await until(lambda: fills_sym in eng.portfolio.positions and eng.orders.stop_order(fills_sym) is not None
                    and any(o.symbol == rest_sym and o.purpose is OrderPurpose.ENTRY for o in eng.orders.working.values()),
                    "entry filled, its stop placed, the other entry resting")
        await until(lambda: len(emu.core.open_orders()) == 2, "the stop and the resting entry at the venue")
        stop = eng.orders.stop_order(fills_sym)
        (resting,) = [o for o in eng.orders.working.values() if o.purpose is OrderPurpose.ENTRY]
        held = eng.portfolio.positions[fills_sym].quantity
        assert held > 0 and held == v.base(emu, fills_sym)  # the engine's position is the venue's holding
        assert {o.cid for o in emu.core.open_orders()} == {stop.client_order_id, resting.client_order_id}
        assert emu.core.by_cid[stop.client_order_id].type == "STOP"
        assert isinstance(eng.portfolio.cash, Decimal) and eng.portfolio.cash < Decimal(100000)

        await eng.halt("operator", "session test")
        # The halt swept the entries one by one; the position's stop is still at the venue.
        assert {o.cid for o in emu.core.open_orders()} == {stop.client_order_id}
        assert resting.status is OrderStatus.CANCELLED and stop.client_order_id in eng.orders.working
        assert eng.cancels_outstanding == []
        assert emu.count(*v.cancel_all) == 0

        await eng.close_all("operator")
        await until(lambda: not eng.orders.working and dust(eng, fills_sym), "flat after close-all")
        assert emu.core.open_orders() == []
        assert emu.count(*v.cancel_all) == 0
        # A fee paid in the bought asset can leave dust below the venue's step (and far below its
        # minimum order): no position is left, and the dust the engine holds is what the venue holds.
        assert fills_sym not in eng.portfolio.positions
        assert eng.portfolio.dust_quantity(fills_sym) == v.base(emu, fills_sym)

        eng.stop()
        await asyncio.wait_for(runner, 5)
        runner = None
        # The journal holds the whole story, each order behind an approving gate decision.
        signals = [r.data["symbol"] for r in await journal(eng, "signal")]
        assert signals == [fills_sym, rest_sym] or signals == [rest_sym, fills_sym]
        approved = {r.ref for r in await journal(eng, "decision") if r.data["approved"]}
        sent = set(emu.core.by_cid)
        assert sent and sent <= approved
        last = {}
        for r in await journal(eng, "order"):
            last[r.ref] = r.data
        assert last[resting.client_order_id]["status"] == "cancelled"
        assert last[stop.client_order_id]["status"] == "cancelled"
        purposes = sorted(r.data["purpose"] for r in await journal(eng, "fill"))
        assert purposes[0] == "entry" and purposes[-1] == "exit"
        assert [r.data["source"] for r in await journal(eng, "halt")] == ["operator"]
        assert len(await journal(eng, "close_all")) == 1
    finally:
        if runner is not None:
            eng.stop()
            await asyncio.wait_for(runner, 5)
        broker = eng.broker
        await eng.close()
        await emu.stop()
    assert broker.connected is False  # closed with the engine (client, poll task)
    assert_no_secret_written(tmp_path)


def assert_no_secret_written(root: Path) -> None:
    """Journal (and its WAL), log, everything the session wrote: no key, no secret."""
    written = [f for f in root.rglob("*") if f.is_file()]
    assert any(f.suffix == ".sqlite" for f in written) and any(f.suffix == ".log" for f in written)
    for f in written:
        data = f.read_bytes()
        for secret in (KEY, SECRET, LIVE_KEY, LIVE_SECRET):
            assert secret.encode() not in data, f"{secret[:4]}... found in {f.name}"


async def test_a_restart_rebuilds_from_the_journal_and_keeps_hearing_the_stop(tmp_path, monkeypatch):
    emu = await BinanceEmulator({KEY: SECRET}).start()
    set_keys(monkeypatch, "binance")
    profile = venue_profile(tmp_path, "binance", emu.url)
    try:
        eng = await start(profile)
        eng.strategy = Script("BTC/USDT")
        runner = asyncio.create_task(eng.run())
        await until(lambda: eng.orders.stop_order("BTC/USDT") is not None
                    and len(emu.core.open_orders()) == 1, "position with its stop at the venue")
        held = eng.portfolio.positions["BTC/USDT"].quantity
        stop_id = eng.orders.stop_order("BTC/USDT").client_order_id
        eng.stop()
        await asyncio.wait_for(runner, 5)
        await eng.close()

        again = await Engine.open(profile)
        try:
            # Rebuilt from the journal, the same as the venue: nothing to reconcile, same cash basis.
            assert again.session == 2 and again.reconciliation == []
            assert again.portfolio.starting_cash == Decimal(100000)
            assert again.portfolio.positions["BTC/USDT"].quantity == held
            assert again.orders.stop_order("BTC/USDT").client_order_id == stop_id
            again.strategy = Script()
            emu.set_book("BTCUSDT", "45000", "45001")  # through the stop: the venue sells
            await again.run(duration=0.5)
            # The stop placed by the first session's broker was looked up and tracked by this one.
            assert "BTC/USDT" not in again.portfolio.positions or dust(again, "BTC/USDT")
            stop_fills = [r for r in await journal(again, "fill") if r.ref == stop_id]
            assert stop_fills and stop_fills[0].data["purpose"] == "stop"
        finally:
            await again.close()
    finally:
        await emu.stop()


async def test_a_failing_venue_counts_toward_the_api_breaker_and_the_loop_goes_on(tmp_path, monkeypatch):
    emu = await BinanceEmulator({KEY: SECRET}).start()
    set_keys(monkeypatch, "binance")
    eng = await start(venue_profile(tmp_path, "binance", emu.url, venue={"timeouts": {"retries": 0}}))
    try:
        emu.fault("GET", "/api/v3/ticker/bookTicker", "503", times=3)
        await eng.run(duration=0.6)
        assert eng.feed.failures == 3 and eng.feed.polls > 3  # failed polls were empty batches, then quotes
        assert eng.api_failures.count() >= 3  # the broker's hook feeds the engine's breaker
        assert {"BTC/USDT", "ETH/USDT"} <= set(eng.quotes)
        api = next(b for b in eng.breakers if b.name == "api_failures")
        assert api.measure()[0] >= 3  # what the API-failure breaker reads at its next evaluation
    finally:
        await eng.close()
        await emu.stop()


async def test_starts_are_refused_in_one_line_without_the_key(tmp_path, monkeypatch):
    from engine.venue_wiring import VenueStartError

    emu = await BinanceEmulator({KEY: SECRET}).start()
    try:
        profile = venue_profile(tmp_path, "binance", emu.url)
        await grant(profile)
        with pytest.raises(VenueStartError, match="BINANCE_TESTNET_API_KEY is not set"):
            await Engine.open(profile)
        # A live key at the testnet: the venue refuses it, the message says why and not the key.
        set_keys(monkeypatch, "binance", LIVE_KEY, LIVE_SECRET)
        with pytest.raises(VenueStartError) as exc:
            await Engine.open(profile)
        assert "refused the key" in str(exc.value) and LIVE_KEY not in str(exc.value)
        # A live profile needs its stage granted in its journal before it may even connect.
        for var in ("BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET"):
            monkeypatch.delenv(var)
        set_keys(monkeypatch, "binance", LIVE_KEY, LIVE_SECRET, "LIVE")
        live = venue_profile(tmp_path, "binance", emu.url, mode="live")
        before = len(emu.requests)
        with pytest.raises(VenueStartError, match="no stage is granted"):
            await Engine.open(live)
        assert len(emu.requests) == before
    finally:
        await emu.stop()


async def test_a_granted_live_stage_trades_under_its_caps(tmp_path, monkeypatch):
    emu = await BinanceEmulator({LIVE_KEY: LIVE_SECRET}, env="live").start()
    set_keys(monkeypatch, "binance", LIVE_KEY, LIVE_SECRET, "LIVE")
    live = venue_profile(tmp_path, "binance", emu.url, mode="live", stage="small")
    await grant(live, "micro")
    from engine.venue_wiring import VenueStartError

    with pytest.raises(VenueStartError, match="grants micro only"):
        await Engine.open(live)
    micro = venue_profile(tmp_path, "binance", emu.url, mode="live")
    eng = await Engine.open(micro)
    try:
        assert eng.profile.stage == "micro" and eng.broker_environment == "live"
        eng.strategy = Script("BTC/USDT", "ETH/USDT")
        await eng.run(duration=0.5)
        # The $1,000 entries are over micro's $10 position cap: refused before the venue saw them.
        refused = [r.data for r in await journal(eng, "decision") if not r.data["approved"]]
        assert refused and all(d["failed"] == "stage_cap" for d in refused)
        assert emu.count("POST", "/api/v3/order") == 0
    finally:
        await eng.close()
        await emu.stop()


async def test_the_header_says_when_the_venue_is_an_emulator():
    from dataclasses import replace

    from test_console import snap
    from textual.app import App, ComposeResult

    from console.widgets import StatusHeader

    class Host(App):
        def compose(self) -> ComposeResult:
            yield StatusHeader()

    async with Host().run_test(size=(120, 4)) as pilot:
        header = pilot.app.query_one(StatusHeader)
        header.show(replace(snap(), mode="testnet", venue="binance", venue_notice="via 127.0.0.1:8080 (emulator)"))
        await pilot.pause()
        assert "binance ⚠ via 127.0.0.1:8080 (emulator)" in header.info_text
        header.show(replace(snap(), mode="testnet", venue="binance"))
        await pilot.pause()
        assert "⚠" not in header.info_text and "via" not in header.info_text


async def test_headless_run_on_the_emulator_from_the_command_line(tmp_path):
    import os

    from conftest import cli_cmd, cli_env

    emu = await BinanceEmulator({KEY: SECRET}).start()
    try:
        profile = venue_profile(tmp_path, "binance", emu.url)
        await grant(profile)
        path = tmp_path / "tn.yaml"
        path.write_text(f"name: {profile.name}\nmode: testnet\nstage: testnet\nsymbols: [BTC/USDT, ETH/USDT]\n"
                        f"venue:\n  name: binance\n  base_url: {emu.url}\nfeed:\n  tick_seconds: 0.2\n"
                        f"journal:\n  path: {profile.journal.path}\ncontrol:\n  socket: false\n")
        env = {k: v for k, v in cli_env(tmp_path / "home").items() if not k.startswith("BINANCE_")}
        env |= {"BINANCE_TESTNET_API_KEY": KEY, "BINANCE_TESTNET_API_SECRET": SECRET}
        proc = await asyncio.create_subprocess_exec(
            *cli_cmd("run", "--headless", "--profile", str(path), "--duration", "1s"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        text = out.decode()
        assert "headless summary" in text and "(testnet)" in text
        assert emu.count("GET", "/api/v3/ticker/bookTicker") >= 3  # quotes polled for the second it ran
        assert KEY not in text + err.decode() and SECRET not in text + err.decode()
        log = Path(profile.logging.path).read_text()
        assert "venue binance connected" in log and KEY not in log and SECRET not in log
        assert os.path.exists(profile.journal.path)
    finally:
        await emu.stop()


async def test_a_restart_compares_the_quote_asset_cash_with_the_venue(tmp_path, monkeypatch):
    """Crypto spot cash is the quote asset (USDT here), not USD: money moved at the venue while
    the engine was down is a difference the operator resolves, never silently absorbed."""
    emu = await BinanceEmulator({KEY: SECRET}).start()
    set_keys(monkeypatch, "binance")
    profile = venue_profile(tmp_path, "binance", emu.url)
    try:
        eng = await start(profile)
        await eng.close()
        emu.core.free["USDT"] += Decimal("500")  # a deposit the engine never saw
        again = await Engine.open(profile)
        try:
            cash = [d for d in again.reconciliation if d.kind == "balance_mismatch"]
            assert [(d.symbol, d.journal, d.venue) for d in cash] == [("USDT", "100000.00", "100500.00")]
            await again.resolve_difference(again.reconciliation.index(cash[0]), "adopt")
            assert again.portfolio.cash == Decimal("100500")
        finally:
            await again.close()
    finally:
        await emu.stop()
