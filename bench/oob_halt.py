"""Benchmark: out-of-band halt over the control socket, with 200 working paper orders.

Two processes, as in production: an engine host (this script with --serve, in a subprocess)
opens a real Engine with the control service on its Unix socket and puts N real working entry
orders at the paper broker through the normal order path (risk gate, journal outbox, broker), as
buy limits 40 % under the market that cannot fill. The driver (this process) then halts it from
outside and times each repetition:

  client  the control client function (`engine.control.client.request`, blocking, in this
          process): connect, send {"cmd": "halt"}, receive the answer. The engine answers once
          the halt row is committed and every cancel is issued and processed. THE FIGURE.
  cli     the real `tradeconsole halt --reason ...` (python -m console) in a subprocess, spawn to
          exit: the same round trip plus interpreter start, imports and profile loading.

After every repetition the driver checks the answer (persisted, cancels done, nothing still open)
and that the halt row is committed (its own sqlite3 connection only sees committed rows); the
host checks all N orders are cancelled at the broker and gone from the engine's working set,
then re-arms and places N more. p50 over the timed repetitions, after untimed warm-ups.

    python bench/oob_halt.py [--orders 200] [--repeats 20] [--cli-repeats 5] [--warmup 2] [--market]

Last line: `oob_halt: X ms (target <= 50 ms)` (client function, p50).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

TARGET_MS = 50.0
REPO = Path(__file__).resolve().parents[1]
STEP_TIMEOUT = 30.0  # seconds the driver waits for the host at each step: never hang

PROFILE_YAML = """\
name: oobbench
approval: {required: true}      # strategy entries (with --market) wait; only ours go out
feed: {speed: 0}
orders: {entry_type: limit, limit_timeout_seconds: 86400}
paper: {starting_cash: 1000000}   # the gate counts working entries against cash and position caps
risk:
  max_open_positions: 10000
  max_position_pct: 100
  max_symbol_exposure_pct: 100
  max_group_exposure_pct: 100
  max_trades_per_day: 1000000
  max_trades_per_hour: 1000000
  min_seconds_between_trades: 0
  min_edge: 0
  min_confidence: 0
  cash_reserve_pct: 0
  max_total_capital_usd: 1000000000
  max_single_trade_loss_usd: 1000000   # the entries working in one symbol are one trade at their stop
  max_new_positions_per_day: 1000000
  max_new_positions_per_week: 1000000
  max_limit_distance_pct: 50     # the resting limits sit 40 % under the market
  max_volume_fraction: 1
  max_book_fraction: 10
  allowed_readiness: [ready, forming, not_ready]
journal: {path: JOURNAL}
logging: {path: LOG}
"""


# -- engine host (subprocess) --------------------------------------------------------------------
async def place_orders(engine, n: int) -> list[str]:
    from engine.models import Order, OrderPurpose, OrderStatus, OrderType, Side

    symbols = list(engine.profile.symbols)
    ids = []
    for i in range(n):
        sym = symbols[i % len(symbols)]
        limit = (engine.quotes[sym].bid * Decimal("0.6")).quantize(Decimal("0.01"))
        qty = (Decimal(50) / limit).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
        order = Order(engine.orders.new_id(), sym, Side.BUY, OrderType.LIMIT, qty, OrderPurpose.ENTRY,
                      engine.clock.now(), limit_price=limit, protective_stop=(limit * Decimal("0.92")).quantize(Decimal("0.01")),
                      reason="bench resting entry")
        if not await engine.orders.send(order, "strategy"):
            raise SystemExit(f"host: the risk gate refused order {i}: {order.reason}")
        ids.append(order.client_order_id)
    await engine.orders.process_events()
    for cid in ids:
        b = await engine.broker.fetch_order(cid)
        if b is None or b.status is not OrderStatus.SUBMITTED or cid not in engine.orders.working:
            raise SystemExit(f"host: {cid} is not working")
    return ids


async def verify_cancelled(engine, ids: list[str]) -> str | None:
    from engine.models import OrderStatus
    from engine.risk.gate import TradingState

    if engine.state is not TradingState.HALTED:
        return "not halted"
    open_ids = {o.client_order_id for o in await engine.broker.open_orders()}
    for cid in ids:
        b = await engine.broker.fetch_order(cid)
        if b is None or b.status is not OrderStatus.CANCELLED or cid in open_ids or cid in engine.orders.working:
            return f"{cid} not cancelled"
    return None


async def serve(profile_path: str, n: int, market: bool) -> int:
    from engine.config_loader import load_profile
    from engine.control.service import start_control
    from engine.engine import Engine

    engine = await Engine.open(load_profile(profile_path), speed=10.0)
    engine.preroll()  # quotes for every symbol at the broker and in the engine
    svc = await start_control(engine)
    runner = asyncio.create_task(engine.run()) if market else None
    try:
        while True:
            ids = await place_orders(engine, n)
            await engine.journal.flush()
            print(f"READY {svc.path}", flush=True)
            cmd = (await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), 120)).strip()
            if cmd != "CHECK":
                return 0
            problem = await verify_cancelled(engine, ids)
            err = await engine.rearm("bench: next repetition")
            print(f"CHECKED {problem or err or 'ok'}", flush=True)
    finally:
        engine.stop()
        if runner is not None:
            await asyncio.wait({runner}, timeout=5)
        await engine.close()


# -- driver ---------------------------------------------------------------------------------------
class Host:
    def __init__(self, tmp: Path, profile: Path, n: int, market: bool) -> None:
        env = dict(os.environ, TRADECONSOLE_HOME=str(tmp), PYTHONPATH=str(REPO))
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(profile), "--orders", str(n)] + (["--market"] if market else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)

    def line(self, prefix: str) -> str:
        import select

        deadline = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                text = self.proc.stdout.readline()
                if not text:
                    break
                if text.startswith(prefix):
                    return text[len(prefix):].strip()
        raise SystemExit(f"engine host: no {prefix.strip()} line (exit code {self.proc.poll()})")

    def send(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("QUIT")
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


def committed_halts(journal: Path) -> int:
    with sqlite3.connect(journal) as db:
        return db.execute("SELECT COUNT(*) FROM events WHERE kind = 'halt'").fetchone()[0]


def run(args: argparse.Namespace) -> tuple[list[float], list[float], list[float]]:
    from engine.control.client import request

    with tempfile.TemporaryDirectory(prefix="tc-bench-oob-") as d:
        tmp = Path(d)
        journal = tmp / "oob.sqlite"
        profile = tmp / "oob.yaml"
        profile.write_text(PROFILE_YAML.replace("JOURNAL", str(journal)).replace("LOG", str(tmp / "oob.log")))
        host = Host(tmp, profile, args.orders, args.market)
        client_ms: list[float] = []
        server_ms: list[float] = []
        cli_ms: list[float] = []
        try:
            plan = ["client"] * (args.warmup + args.repeats) + ["cli"] * (1 + args.cli_repeats)
            for i, how in enumerate(plan):
                sock = Path(host.line("READY "))
                before = committed_halts(journal)
                t0 = time.perf_counter()
                if how == "client":
                    reply = request(sock, {"cmd": "halt", "reason": f"bench {i}"}, timeout=5)
                else:
                    r = subprocess.run([sys.executable, "-m", "console", "halt", "--reason", f"bench {i}",
                                        "--profile", str(profile), "--json"],
                                       capture_output=True, text=True, env=host.env, cwd=REPO, timeout=STEP_TIMEOUT,
                                       check=False)
                    if r.returncode != 0:
                        raise SystemExit(f"tradeconsole halt exited {r.returncode}: {r.stderr.strip()}")
                    import json

                    reply = json.loads(r.stdout)
                ms = (time.perf_counter() - t0) * 1000
                if not (reply.get("ok") and reply["persisted"] and reply["cancels_done"] and not reply["still_open"]):
                    raise SystemExit(f"halt answer not complete: {reply}")
                if committed_halts(journal) != before + 1:
                    raise SystemExit("the halt row is not committed when the answer arrives")
                host.send("CHECK")
                verdict = host.line("CHECKED ")
                if verdict != "ok":
                    raise SystemExit(f"engine host: {verdict}")
                if how == "client" and i >= args.warmup:
                    client_ms.append(ms)
                    server_ms.append(float(reply["elapsed_ms"]))
                elif how == "cli" and i > args.warmup + args.repeats:
                    cli_ms.append(ms)
        finally:
            host.close()
    return client_ms, server_ms, cli_ms


def p(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=200, help="working entry orders to cancel (default 200)")
    ap.add_argument("--repeats", type=int, default=20, help="timed client repetitions; p50 is the figure")
    ap.add_argument("--cli-repeats", type=int, default=5, help="timed `tradeconsole halt` subprocess repetitions")
    ap.add_argument("--warmup", type=int, default=2, help="untimed client repetitions first")
    ap.add_argument("--market", action="store_true", help="keep the simulated market running in the engine meanwhile")
    ap.add_argument("--serve", metavar="PROFILE", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        return asyncio.run(serve(args.serve, args.orders, args.market))
    client_ms, server_ms, cli_ms = run(args)
    print(f"{args.repeats} client + {args.cli_repeats} CLI repetitions x {args.orders} working orders; every time the "
          f"halt row was committed and all orders cancelled at the broker before the next")
    print(f"inside the engine (halt received -> committed + cancels done): p50 {statistics.median(server_ms):.2f} ms")
    print(f"client function round trip: p50 {statistics.median(client_ms):.2f} ms, p90 {p(client_ms, 0.9):.2f} ms, "
          f"max {max(client_ms):.2f} ms")
    if cli_ms:
        print(f"`tradeconsole halt` subprocess, spawn to exit: p50 {statistics.median(cli_ms):.0f} ms, "
              f"max {max(cli_ms):.0f} ms (interpreter start and imports included)")
    print(f"oob_halt: {statistics.median(client_ms):.2f} ms (target <= {TARGET_MS:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
