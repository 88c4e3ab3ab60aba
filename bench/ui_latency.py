"""Benchmark: console key press to action, while the engine runs 5,000 ticks/s.

The engine runs in the app's own loop (as in `tradeconsole`), paced to `--rate` quotes per wall
second across `--symbols` symbols, with `--positions` open positions restored into the portfolio
(each with its protective stop at the paper venue) so every pane has real rows to update. The app
runs headless under `run_test` at `--size`; a key is delivered through the driver exactly as a
terminal's would be, about `--keys-per-second` times a second, cycling through keys that each run
one binding (log pause, alert filter, help, performance, history, order form, note, palette, pause
all, ...). For each key: the time from the key event's creation to the end of its action.

Also reported: frames the app painted per second (compositor updates rendered to terminal
bytes, as a real terminal would get them), snapshots per second, and the CPU the UI costs: process
CPU per wall second with the console, minus the same engine's alone (a run with no app first).

    python bench/ui_latency.py [--seconds 15] [--baseline 8] [--rate 5000] [--size 160x48]

Last line: `ui_latency: X ms p99 (target <= 50 ms)`.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import deque
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_MS = 50.0
KEYS = ["l", "l", "v", "v", "v", "L", "L", "L", "L", "question_mark", "escape", "m", "escape", "t", "escape",
        "P", "P", "n", "escape", "o", "escape", "colon", "escape", "k"]
CHARS = {"question_mark": "?", "colon": ":", "escape": "\x1b"}


def make_profile(tmp: Path, symbols: list[str], rate: float):
    from engine.profile import Profile

    return Profile(
        symbols=symbols,
        approval={"required": True, "timeout_seconds": 86400},
        # tick_seconds 1: one quote per symbol per simulated second, so rate/len(symbols) is the speed.
        feed={"speed": rate / len(symbols), "tick_seconds": 1},
        risk={"max_open_positions": 1000, "max_trades_per_day": 100_000, "max_trades_per_hour": 100_000,
              "min_seconds_between_trades": 0, "max_new_positions_per_day": 100_000,
              "max_new_positions_per_week": 100_000, "max_consecutive_losses": 1000},
        journal={"path": str(tmp / "bench.sqlite")},
        logging={"path": str(tmp / "bench.log")},
    )


async def restore_positions(engine, n: int) -> None:
    """`n` long positions, each about $100 at today's price, with their stops at the venue.

    They are the operator's (as if opened by hand), so the strategy's exit signals leave them be
    and all `n` stay on the screen for the whole measurement."""
    from engine.feeds.sim import spec_for
    from engine.models import Position

    quoted = list(engine.profile.symbols)
    extra = [f"P{i:02d}/USD" for i in range(max(0, n - len(quoted)))]  # held, not quoted by the feed
    for symbol in (quoted + extra)[:n]:
        q = engine.quotes.get(symbol)
        price = q.bid if q is not None else Decimal(str(spec_for(symbol).price)).quantize(Decimal("0.01"))
        qty = (Decimal(100) / price).quantize(Decimal("0.000001"))
        stop = (price * Decimal("0.92")).quantize(Decimal("0.01"))
        opener = f"bench-{symbol}"
        engine.operator_state.manual_orders.add(opener)
        pos = Position(symbol, qty, price, last_price=price, stop_price=stop, opening_order=opener)
        engine.portfolio.cash -= qty * price  # bought with the account's cash: equity unchanged
        engine.portfolio.restore_position(pos)
        await engine.orders.ensure_stop(symbol)
    await engine.journal.flush()


async def wait_trading(engine) -> None:
    while engine.trading_started is None:
        await asyncio.sleep(0.05)


async def engine_alone(args, symbols: list[str]) -> tuple[float, float]:
    """(process CPU per wall second, ticks per second) of the engine with no console."""
    from engine.engine import Engine

    with tempfile.TemporaryDirectory() as tmp:
        engine = await Engine.open(make_profile(Path(tmp), symbols, args.rate))
        task = asyncio.create_task(engine.run())
        await wait_trading(engine)
        await restore_positions(engine, args.positions)
        ticks0, cpu0, wall0 = engine.counters["ticks"], time.process_time(), time.monotonic()
        await asyncio.sleep(args.baseline)
        cpu, wall, ticks = time.process_time() - cpu0, time.monotonic() - wall0, engine.counters["ticks"] - ticks0
        engine.stop()
        await task
        await engine.close()
    return cpu / wall, ticks / wall


async def with_console(args, symbols: list[str]) -> dict:
    from rich.console import Console
    from textual import events
    from textual._compositor import CompositorUpdate

    from console.app import TradeConsoleApp
    from engine.engine import Engine

    class MeasuredApp(TradeConsoleApp):
        """The console, plus a record of when each binding's action finished and of each frame."""

        def __init__(self, engine) -> None:
            super().__init__(engine, mouse=False)
            self.done: deque[float] = deque()
            self.frames = 0
            self.frame_bytes = 0
            self.sink = Console(file=open("/dev/null", "w"), force_terminal=True, color_system="truecolor",  # noqa: SIM115
                                width=args.width, height=args.height, legacy_windows=False)

        async def run_action(self, action, default_namespace=None) -> bool:
            result = await super().run_action(action, default_namespace)
            self.done.append(time.monotonic())
            return result

        def _display(self, screen, renderable) -> None:
            # Headless skips writing to a terminal; do the encoding a terminal would cost.
            if renderable is not None and not self._batch_count:
                self.frames += 1
                if isinstance(renderable, CompositorUpdate):
                    self.frame_bytes += len(renderable.render_segments(self.sink))
            super()._display(screen, renderable)

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine = await Engine.open(make_profile(Path(tmp), symbols, args.rate))
        app = MeasuredApp(engine)
        async with app.run_test(size=(args.width, args.height)) as pilot:
            await wait_trading(engine)
            await restore_positions(engine, args.positions)
            await pilot.pause(0.5)
            interval = 1 / args.keys_per_second

            async def press(key: str) -> float | None:
                """Deliver one key as a terminal would; ms until its action finished, None if none did."""
                before = len(app.done)
                event = events.Key(key, CHARS.get(key, key if len(key) == 1 else None))
                event.set_sender(app)
                app._driver.send_message(event)
                deadline = time.monotonic() + 1.0
                while len(app.done) == before and time.monotonic() < deadline:
                    await asyncio.sleep(0.0005)
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - event.time)))
                return None if len(app.done) == before else (app.done[before] - event.time) * 1000

            # One pass first, not counted: the first opening of each dialog builds it (the app keeps
            # it after that), a once-a-session cost reported on its own.
            cold = {key: await press(key) for key in KEYS}
            latencies: list[float] = []
            by_key: dict[str, list[float]] = {}
            missed = 0
            ticks0, cpu0, wall0 = engine.counters["ticks"], time.process_time(), time.monotonic()
            frames0, painted0 = app.frames, app.snapshots_painted
            n = 0
            while time.monotonic() - wall0 < args.seconds:
                key = KEYS[n % len(KEYS)]
                n += 1
                ms = await press(key)
                if ms is None:
                    missed += 1
                    continue
                latencies.append(ms)
                label = f"escape from {KEYS[(n - 2) % len(KEYS)]}" if key == "escape" else key
                by_key.setdefault(label, []).append(ms)
            wall = time.monotonic() - wall0
            out.update(
                cpu=(time.process_time() - cpu0) / wall, wall=wall, ticks=(engine.counters["ticks"] - ticks0) / wall,
                latencies=latencies, by_key=by_key, missed=missed, cold=cold, pressed=n,
                frames=(app.frames - frames0) / wall,
                snapshots=(app.snapshots_painted - painted0) / wall, bytes=app.frame_bytes,
                positions=len(engine.portfolio.positions), approvals=len(engine.approvals),
                orders=len(engine.orders.working),
            )
            app.sink.file.close()
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def main_async(args) -> float:
    symbols = ["BTC/USD", "ETH/USD", "SOL/USD", "LTC/USD"] + [f"S{i:02d}/USD" for i in range(args.symbols - 4)]
    alone_cpu, alone_ticks = engine_alone_result = await engine_alone(args, symbols)
    print(f"engine alone: {alone_ticks:,.0f} ticks/s, CPU {alone_cpu * 100:.0f}% of a core", flush=True)
    r = await with_console(args, symbols)
    lat = r["latencies"]
    print(f"engine with console: {r['ticks']:,.0f} ticks/s over {r['wall']:.1f} s, {args.symbols} symbols, "
          f"{r['positions']} positions, {r['orders']} working orders, {r['approvals']} approvals waiting")
    print(f"keys: {r['pressed']} pressed, {len(lat)} acted, {r['missed']} without an action within 1 s")
    print(f"key to action: p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms, "
          f"max {max(lat):.1f} ms, mean {statistics.mean(lat):.1f} ms")
    cold = {k: v for k, v in r["cold"].items() if v is not None}
    slow_cold = sorted(cold.items(), key=lambda kv: -kv[1])[:4]
    print("first press (builds the dialog once a session, not counted): "
          + ", ".join(f"{k} {v:.0f} ms" for k, v in slow_cold))
    worst = sorted(r["by_key"].items(), key=lambda kv: -max(kv[1]))[:4]
    print("slowest keys: " + ", ".join(f"{k} max {max(v):.0f} ms (p50 {statistics.median(v):.0f})" for k, v in worst))
    print(f"frames painted: {r['frames']:.1f}/s ({r['bytes'] / max(r['wall'], 1e-9) / 1024:.0f} KiB/s of terminal "
          f"output); snapshots {r['snapshots']:.1f}/s")
    print(f"CPU: UI {max(0.0, r['cpu'] - alone_cpu) * 100:.0f}% of a core (process {r['cpu'] * 100:.0f}% with the "
          f"console, engine alone {alone_cpu * 100:.0f}%)")
    del engine_alone_result
    return percentile(lat, 99)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=15.0, help="wall seconds of key presses under load")
    p.add_argument("--baseline", type=float, default=8.0, help="wall seconds of the engine alone (CPU baseline)")
    p.add_argument("--rate", type=float, default=5000.0, help="quotes per wall second")
    p.add_argument("--symbols", type=int, default=20)
    p.add_argument("--positions", type=int, default=50)
    p.add_argument("--keys-per-second", type=float, default=10.0)
    p.add_argument("--size", default="160x48", help="terminal WIDTHxHEIGHT")
    args = p.parse_args(argv)
    args.width, args.height = (int(x) for x in args.size.lower().split("x"))
    if args.symbols < 4:
        p.error("--symbols must be at least 4")
    p99 = asyncio.run(main_async(args))
    print(f"ui_latency: {p99:.1f} ms p99 (target <= {TARGET_MS:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
