"""Benchmark: does a hanging alert channel slow the trading path? Ticks/s through `Engine.run`
flat out (simulated market, approval off, journal on) with every channel hanging versus with
no channels; the figure is the ratio hanging / none (1.0 = no effect).

"Hanging": each channel is a json:// webhook on 127.0.0.1 whose server reads the request and
then holds it for 10 s without answering. Three such channels take every severity, and besides
the engine's own alerts a publisher adds a distinct warning every 10 ms of wall time (the same
in both modes), so deliveries are queued and stuck all through the run. Runs alternate
(none/hanging, hanging/none, ...) to spread drift and order effects over both modes; the median
of each mode is compared. The per-run CPU seconds show where a slow run came from: this machine
is shared, and a run's wall time moves with other load.

    python bench/alerts_isolation.py [--duration SIM_SECONDS] [--repeats N] [--seed N]

Last line: `alerts_isolation: <ratio> ratio (target >= 0.95)`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from socketserver import BaseRequestHandler, ThreadingTCPServer

TARGET = 0.95
HANG_SECONDS = 10.0
CHANNELS = 3


class _Tarpit(ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_tarpit() -> tuple[_Tarpit, threading.Event]:
    """A server that takes the request and answers nothing for HANG_SECONDS."""
    release = threading.Event()

    class Hold(BaseRequestHandler):
        def handle(self) -> None:
            try:
                self.request.recv(65536)
            except OSError:
                return
            release.wait(HANG_SECONDS)

    srv = _Tarpit(("127.0.0.1", 0), Hold)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return srv, release


def make_profile(tmp: Path, seed: int, channels: dict):
    from engine.profile import Profile

    return Profile(
        approval={"required": False},
        feed={"speed": 0, "seed": seed},
        journal={"path": str(tmp / "bench.sqlite")},
        logging={"path": str(tmp / "bench.log")},
        alerts={"channels": channels, "retry_attempts": 50, "retry_backoff_seconds": 0.05},
    )


async def one_run(duration: float, seed: int, port: int | None) -> tuple[float, int, dict]:
    from engine.engine import Engine
    from engine.notify import service as notify

    env: dict[str, str] = {}
    channels: dict = {}
    if port is not None:
        for i in range(CHANNELS):
            env[f"TC_BENCH_HANG_{i}"] = f"json://127.0.0.1:{port}/hook/{i}"
            channels[f"hang{i}"] = {"url_env": f"TC_BENCH_HANG_{i}", "severities": ["info", "warning", "critical"],
                                    "timeout_seconds": HANG_SECONDS, "rate_limit_per_minute": 600}
    with tempfile.TemporaryDirectory(prefix="tc-bench-alerts-") as d:
        tmp = Path(d)
        os.environ["TRADECONSOLE_HOME"] = str(tmp)
        engine = await Engine.open(make_profile(tmp, seed, channels), speed=0.0)
        svc = await notify.start(engine, environ=env)
        if svc is not None:
            engine.services.append(svc)
        stats: dict = {}
        try:
            engine.preroll()

            async def chatter() -> None:
                n = 0
                while True:
                    n += 1
                    engine.alerts.publish("warning", "bench", f"bench alert {n}", engine.clock.now())
                    await asyncio.sleep(0.01)

            pub = asyncio.get_running_loop().create_task(chatter())
            t0, c0 = time.perf_counter(), time.process_time()
            await engine.run(duration=duration)
            wall = time.perf_counter() - t0
            stats_cpu = time.process_time() - c0
            pub.cancel()
            ticks = engine.counters["ticks"]
            if svc is not None:
                stats = {"cpu": stats_cpu, "queued": sum(len(w.queue) for w in svc.workers.values()),
                         "delivered": sum(w.delivered for w in svc.workers.values())}
        finally:
            await engine.close()
    return ticks / wall, ticks, stats


async def main_async(args: argparse.Namespace) -> float:
    srv, release = start_tarpit()
    port = srv.server_address[1]
    none: list[float] = []
    hang: list[float] = []
    try:
        for i in range(args.repeats):
            pair = [("none", None, none), ("hanging", port, hang)]
            for label, p, out in (pair if i % 2 == 0 else pair[::-1]):  # ABBA: no mode always goes first
                rate, ticks, stats = await one_run(args.duration, args.seed, p)
                out.append(rate)
                extra = f"  (cpu {stats['cpu']:.2f}s queued {stats['queued']}, delivered {stats['delivered']})" if stats else ""
                print(f"run {i + 1}/{args.repeats} {label:<8} {ticks:,} ticks  {rate:,.0f} ticks/s{extra}", flush=True)
    finally:
        release.set()
        srv.shutdown()
        srv.server_close()
    return statistics.median(hang) / statistics.median(none)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=4 * 3600.0, help="simulated seconds per run (default 4 h)")
    p.add_argument("--repeats", type=int, default=6,
                   help="runs per mode, alternating; medians are compared (the machine is shared: many short "
                        "runs beat a few long ones)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    ratio = asyncio.run(main_async(args))
    print(f"alerts_isolation: {ratio:.3f} ratio (target >= {TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
