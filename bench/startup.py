"""Benchmark: time from launching the console to an interactive screen.

Runs `python -m console` (the `tradeconsole` command, console mode, built-in paper profile) under
a pseudo-terminal (TERM=xterm-256color, 100x40) with TRADECONSOLE_EXIT_WHEN_READY=1, which makes
the app exit right after the first screen is painted. The wall time from spawning the process to
its exit is the figure: median of 5 runs, each with a fresh TRADECONSOLE_HOME, after one untimed
warm-up run (bytecode caches and the OS file cache are warm for the timed runs, as for an operator
who has started the console before). The pty master is drained all along so the app never blocks
on a full terminal buffer.

Bytecode caches: an environment with PYTHONDONTWRITEBYTECODE set (some sandboxes and CI images)
would make every run recompile the project's modules, which no operator's second start does. The
child runs with that variable removed and PYTHONPYCACHEPREFIX pointing at a directory this script
owns for its whole run, so the warm-up fills real caches without writing into the source tree.
`--cold` writes no caches instead (PYTHONDONTWRITEBYTECODE=1, the default cache places): the
libraries' caches pip wrote at install are used, the project's modules are compiled on every run,
as on the first start after installing.

    python bench/startup.py [--runs 5] [--warmup 1] [--timeout 30] [--cold] [--cmd "..."]

Last line: `startup: X s (target <= 1.5 s)`.
"""
from __future__ import annotations

import argparse
import errno
import fcntl
import os
import re
import select
import shlex
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time

TARGET_S = 1.5
COLS, ROWS = 100, 40
ANSI = re.compile(r"\x1b\[[0-9;?<>=$]*[a-zA-Z~]|\x1b[\]P_][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.")


def run_once(cmd: list[str], timeout: float, pycache: str | None) -> tuple[float, int, bytes]:
    """Spawn cmd on a fresh pty; return (seconds to exit, exit code, everything it wrote)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    out = bytearray()
    with tempfile.TemporaryDirectory(prefix="tc-bench-startup-") as home:
        env = dict(os.environ)
        env.update({
            "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS),
            "TRADECONSOLE_HOME": home, "TRADECONSOLE_EXIT_WHEN_READY": "1",
        })
        for var in ("TEXTUAL", "TEXTUAL_DEVTOOLS_PORT", "NO_COLOR", "PYTHONDONTWRITEBYTECODE"):
            env.pop(var, None)
        env.pop("PYTHONPYCACHEPREFIX", None)
        if pycache is None:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env["PYTHONPYCACHEPREFIX"] = pycache

        def child_setup() -> None:  # own session, pty as controlling terminal, like a real shell
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=home,
                                preexec_fn=child_setup, close_fds=True)
        os.close(slave)
        deadline = t0 + timeout
        elapsed = None
        try:
            while True:
                if proc.poll() is not None:
                    elapsed = time.perf_counter() - t0
                    break
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                ready, _, _ = select.select([master], [], [], min(left, 0.005))
                if ready:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError as exc:  # EIO: the child closed its side
                        if exc.errno != errno.EIO:
                            raise
                        proc.wait(timeout=max(0.0, deadline - time.perf_counter()))
                        elapsed = time.perf_counter() - t0
                        break
                    out += chunk
            if elapsed is None:
                os.killpg(proc.pid, signal.SIGKILL)  # only the child we spawned (its own session)
                proc.wait()
                raise TimeoutError(f"no exit within {timeout:.0f} s; output tail: {bytes(out[-400:])!r}")
            # Whatever is left in the pty after exit.
            while True:
                ready, _, _ = select.select([master], [], [], 0)
                if not ready:
                    break
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            os.close(master)
    return elapsed, proc.returncode, bytes(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="timed runs; the median is reported")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before a run counts as hung")
    p.add_argument("--cold", action="store_true", help="an empty bytecode cache for every run")
    p.add_argument("--cmd", default=None, help="command to launch (default: this python -m console)")
    args = p.parse_args(argv)
    cmd = shlex.split(args.cmd) if args.cmd else [sys.executable, "-m", "console"]
    with tempfile.TemporaryDirectory(prefix="tc-bench-pycache-") as pycache:
        return measure(args, cmd, pycache)


def measure(args: argparse.Namespace, cmd: list[str], pycache: str) -> int:
    times = []
    for i in range(args.warmup + args.runs):
        label = f"warm-up {i + 1}" if i < args.warmup else f"run {i - args.warmup + 1}/{args.runs}"
        cache = None if args.cold else pycache
        try:
            elapsed, code, out = run_once(cmd, args.timeout, cache)
        except TimeoutError as exc:
            print(f"{label}: {exc}", flush=True)
            print(f"startup: n/a s (target <= {TARGET_S} s)")
            return 1
        text = out.decode("utf-8", "replace")
        # A painted screen: the alternate screen was entered and most of 100x40 cells were drawn.
        visible = ANSI.sub("", text)
        painted = "\x1b[?1049h" in text and sum(1 for ch in visible if not ch.isspace()) >= COLS * 4
        print(f"{label}: {elapsed:.3f} s, exit code {code}, {len(out):,} bytes to the terminal"
              + ("" if painted else " (no full screen seen: did it paint?)"), flush=True)
        if code != 0:
            tail = text[-600:].replace("\x1b", "\\e")
            print(f"  the app exited with {code}; output tail:\n{tail}", flush=True)
            print(f"startup: n/a s (target <= {TARGET_S} s)")
            return 1
        if i >= args.warmup:
            times.append(elapsed)
    print(f"min {min(times):.3f} s, max {max(times):.3f} s over {len(times)} runs"
          + (" (cold: the project's bytecode compiled on every run)" if args.cold else ""))
    print(f"startup: {statistics.median(times):.2f} s (target <= {TARGET_S} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
