"""Benchmark: a halt at a real-protocol venue: 200 open entry orders at the loopback Binance spot
emulator, cancelled by `CcxtBroker.cancel_entries()` (the real ccxt client, one DELETE per order,
`venue.timeouts.halt_concurrency` in flight at once), while the positions' stop orders stay.

The emulator runs in its own process (the venue's CPU is not ours). Each repetition
connects a fresh broker (ccxt's request budget is per client), places N resting buy limits and a
few protective stops, then times

    t0; failed = await broker.cancel_entries(); t1

and checks that every entry is cancelled at the venue and every stop is still open. The figure is
t1 - t0, p50 over the repetitions after a warm-up repetition that is not counted.

    python bench/venue_halt.py [--orders 200] [--repeats 5] [--concurrency 25]

Last line: `venue_halt: X ms (target <= 150 ms)`.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

TARGET_MS = 150.0
CPU: list[float] = []  # client CPU ms per measured halt
KEY, SECRET = "benchKEY0123456789", "benchSECRET0123456789"


def _serve(conn) -> None:
    """The venue process: the emulator until the bench says stop."""
    from emulators.binance import BinanceEmulator

    async def run() -> None:
        emu = await BinanceEmulator({KEY: SECRET}, balances={"USDT": 10_000_000, "BTC": 100, "ETH": 1000}).start()
        conn.send(emu.url)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # any message: stop
        await emu.stop()

    asyncio.run(run())


class Venue:
    """The emulator in its own process: the venue's CPU is not the client's."""

    def __init__(self) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child,), daemon=True)

    def start(self) -> "Venue":
        self.proc.start()
        if not self.conn.poll(20):
            raise SystemExit("venue emulator did not start")
        self.url = self.conn.recv()
        return self

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(10)


async def one_round(venue: Venue, n: int, concurrency: int, rnd: int) -> float:
    from engine.brokers.ccxt_broker import CcxtBroker
    from engine.brokers.keys import load_keys
    from engine.clock import WallClock
    from engine.models import Order, OrderPurpose, OrderType, Side
    from engine.venue_config import VenueSection

    clock = WallClock()
    v = VenueSection(name="binance", base_url=venue.url,
                     timeouts={"poll_seconds": 0, "request_seconds": 5, "halt_concurrency": concurrency})
    keys = load_keys(v, "testnet", {"BINANCE_TESTNET_API_KEY": KEY, "BINANCE_TESTNET_API_SECRET": SECRET})
    broker = CcxtBroker(v, "testnet", keys, clock, ["BTC/USDT", "ETH/USDT"])
    await broker.connect()
    try:
        stops = []
        for i, sym in enumerate(("BTC/USDT", "ETH/USDT")):
            cid = f"tcb-{rnd}-s{i}"
            stop = Decimal("30000") if sym == "BTC/USDT" else Decimal("2000")
            await broker.submit(Order(cid, sym, Side.SELL, OrderType.STOP, Decimal("1"), OrderPurpose.STOP,
                                      clock.now(), stop_price=stop))
            stops.append(cid)
        entries = []
        for i in range(n):
            sym = "BTC/USDT" if i % 2 == 0 else "ETH/USDT"
            price = Decimal("30000") + i if sym == "BTC/USDT" else Decimal("1800") + i
            cid = f"tcb-{rnd}-{i}"
            await broker.submit(Order(cid, sym, Side.BUY, OrderType.LIMIT, Decimal("0.01"), OrderPurpose.ENTRY,
                                      clock.now(), limit_price=price))
            entries.append(cid)
        broker.drain_events()
        opened = {o.client_order_id for o in await broker.open_orders()}
        assert opened == set(entries + stops), "setup: not every order is resting"
        t0, c0 = time.perf_counter(), time.process_time()
        failed = await broker.cancel_entries()
        t1, c1 = time.perf_counter(), time.process_time()
        CPU.append((c1 - c0) * 1000)
        assert failed == [], f"not cancelled: {failed[:5]}"
        left = {o.client_order_id for o in await broker.open_orders()}  # the venue's own view
        assert left == set(stops), f"after the halt the venue holds {sorted(left)[:5]}, expected the stops only"
        for c in stops:  # leave the venue clean for the next round
            await broker.cancel(c)
        return (t1 - t0) * 1000
    finally:
        await broker.close()


async def main_async(args: argparse.Namespace) -> float:
    venue = Venue().start()
    try:
        for w in range(args.warmup):
            await one_round(venue, args.orders, args.concurrency, -1 - w)
        times = [await one_round(venue, args.orders, args.concurrency, r) for r in range(args.repeats)]
    finally:
        venue.stop()
    print(f"{args.repeats} repetitions x {args.orders} open entries (+2 stops) at the loopback Binance emulator, "
          f"{args.concurrency} cancels in flight")
    print(f"cancel_entries: p50 {statistics.median(times):.1f} ms, min {min(times):.1f}, max {max(times):.1f}; "
          f"per order {statistics.median(times) / args.orders * 1000:.0f} us; stops kept every time")
    print(f"client CPU during the halt: p50 {statistics.median(CPU[args.warmup:]):.1f} ms (the rest is the venue "
          f"process and the loopback)")
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=25)
    args = p.parse_args(argv)
    ms = asyncio.run(main_async(args))
    print(f"venue_halt: {ms:.1f} ms (target <= {TARGET_MS:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
