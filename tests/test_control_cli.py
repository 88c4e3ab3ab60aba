"""`tradeconsole status|halt|close-all|rearm` as an operator runs them: the real CLI in a
subprocess against a real headless engine in another subprocess; signals to that engine; and
the no-engine paths (the latch written into the journal for the next start)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import LOOSE_RISK, REPO, cli_cmd, cli_env

from engine.config_loader import load_profile
from engine.control.client import NotRunning, Unreachable, request
from engine.control.paths import socket_path
from engine.control.service import start_control
from engine.engine import Engine
from engine.risk.gate import TradingState

READY_TIMEOUT = 30.0
EXIT_TIMEOUT = 20.0


def write_profile(tmp: Path, name: str = "cli", **extra: Any) -> Path:
    doc: dict[str, Any] = {
        "name": name,
        "journal": {"path": str(tmp / f"{name}.sqlite")},
        "logging": {"path": str(tmp / f"{name}.log")},
        "approval": {"required": False},
        "risk": dict(LOOSE_RISK),
        **extra,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def cli(tmp: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, cwd=REPO, check=False,
                          env=cli_env(tmp / "home"), timeout=timeout)


def journal_rows(path: Path, *kinds: str) -> list[tuple[int, str, dict]]:
    with sqlite3.connect(path) as db:
        q = f"SELECT seq, kind, data FROM events WHERE kind IN ({','.join('?' * len(kinds))}) ORDER BY seq"
        return [(seq, kind, json.loads(data)) for seq, kind, data in db.execute(q, kinds)]


class Headless:
    """`tradeconsole run --headless` in a subprocess, reachable over its control socket."""

    def __init__(self, tmp: Path, profile_yaml: Path, speed: str = "100") -> None:
        self.profile = load_profile(str(profile_yaml))
        self.sock = socket_path(self.profile)
        self.out_path = tmp / f"{self.profile.name}.out"
        self._out = open(self.out_path, "w")  # noqa: SIM115 - the engine writes to it all its life; kill() closes it
        self.proc = subprocess.Popen(
            cli_cmd("run", "--headless", "--profile", str(profile_yaml), "--speed", speed),
            stdout=self._out, stderr=subprocess.STDOUT, cwd=REPO, env=cli_env(tmp / "home"))

    def output(self) -> str:
        return self.out_path.read_text()

    def ask(self, payload: dict[str, Any]) -> dict[str, Any]:
        return request(self.sock, payload, timeout=5)

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"engine exited {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                s = self.ask({"cmd": "status"})
                if pred(s):
                    return s
            except (NotRunning, Unreachable):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"engine not in the expected state within {timeout} s:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def signal_and_wait(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"engine did not exit within {EXIT_TIMEOUT} s of {sig.name}:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()


@pytest.fixture
def headless(tmp_path: Path):
    started: list[Headless] = []

    def start(profile_yaml: Path, speed: str = "100") -> Headless:
        h = Headless(tmp_path, profile_yaml, speed)
        started.append(h)
        return h

    yield start
    for h in started:
        h.kill()


def has_position(s: dict[str, Any]) -> bool:
    return bool(s["positions"])


def test_cli_round_trip_against_a_headless_engine_then_sigterm_halts(tmp_path, headless):
    prof = write_profile(tmp_path)
    eng = headless(prof)
    eng.wait_for(has_position)
    p = str(prof)
    r = cli(tmp_path, "status", "--profile", p)
    assert r.returncode == 0, r.stderr
    assert "running, pid" in r.stdout and "trading       ACTIVE" in r.stdout and "breakers" in r.stdout
    r = cli(tmp_path, "status", "--json", "--profile", p)
    s = json.loads(r.stdout)
    assert r.returncode == 0 and s["running"] and s["pid"] == eng.proc.pid and s["positions"]
    r = cli(tmp_path, "halt", "--reason", "cli test", "--profile", p)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "HALTED: cli test" in r.stdout and "latch journaled: yes" in r.stdout
    assert eng.ask({"cmd": "status"})["trading_state"] == "halted"
    r = cli(tmp_path, "close-all", "--profile", p)
    assert r.returncode == 2 and "--yes" in r.stderr
    r = cli(tmp_path, "close-all", "--yes", "--wait", "20", "--profile", p)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "flat: no open positions" in r.stdout
    r = cli(tmp_path, "rearm", "--reason", "all clear", "--profile", p)
    assert r.returncode == 0 and "re-armed: trading is active" in r.stdout, r.stdout + r.stderr
    assert eng.signal_and_wait(signal.SIGTERM) == 0
    assert "headless summary" in eng.output()
    jpath = Path(eng.profile.journal.path)
    halts = journal_rows(jpath, "halt")
    assert [h[2]["source"] for h in halts] == ["cli", "signal"] and "SIGTERM" in halts[-1][2]["reason"]
    assert [c[2]["source"] for c in journal_rows(jpath, "close_all")] == ["cli"]
    assert journal_rows(jpath, "rearm")[-1][2]["reason"] == "all clear"
    assert journal_rows(jpath, "session_end")[-1][2]["state"] == "halted"
    assert not eng.sock.exists()
    r = cli(tmp_path, "status", "--profile", p)
    assert r.returncode == 3 and "no engine is running" in r.stdout and "next start    HALTED" in r.stdout


def test_sighup_halts_keeps_positions_and_their_stops_and_exits_0(tmp_path, headless):
    # Entries rest 5 bps inside the touch for up to 10 simulated minutes, so the engine can be
    # caught holding a position (with its stop) and a working entry at the same moment.
    eng = headless(write_profile(tmp_path, orders={"limit_offset_bps": 5, "limit_timeout_seconds": 600}), speed="50")
    eng.wait_for(lambda s: s["positions"] and any(o["purpose"] == "entry" for o in s["open_orders"]))
    assert eng.signal_and_wait(signal.SIGHUP) == 0
    jpath = Path(eng.profile.journal.path)
    halts = journal_rows(jpath, "halt")
    assert len(halts) == 1 and halts[0][2]["source"] == "signal" and "SIGHUP" in halts[0][2]["reason"]
    halt_seq = halts[0][0]
    end = journal_rows(jpath, "session_end")[-1][2]
    assert end["state"] == "halted" and end["positions"] >= 1
    assert not journal_rows(jpath, "close_all")
    last: dict[str, dict] = {}
    after_halt: list[dict] = []
    for seq, _, o in journal_rows(jpath, "order"):
        last[o["client_order_id"]] = o
        if seq > halt_seq:
            after_halt.append(o)
    # Nothing but entry cancels after the halt; every position still has a working stop.
    assert after_halt and all(o["purpose"] == "entry" and o["status"] == "cancelled" for o in after_halt), after_halt
    working_stops = [o for o in last.values() if o["purpose"] == "stop" and o["status"] in ("submitted", "partially_filled")]
    assert len(working_stops) == end["positions"]
    assert not [o for o in last.values() if o["purpose"] == "entry" and o["status"] in ("submitted", "partially_filled")]
    assert not eng.sock.exists()


def test_sighup_ignore_and_sigterm_shutdown_leave_trading_as_it_is(tmp_path, headless):
    eng = headless(write_profile(tmp_path, control={"on_sighup": "ignore", "on_sigterm": "shutdown"}))
    eng.wait_for(lambda s: True)
    eng.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    # Still trading: not halted (a block breaker may have made it reduce-only meanwhile; that is
    # the market, not the signal).
    assert eng.ask({"cmd": "status"})["trading_state"] in ("active", "reduce_only")
    assert eng.signal_and_wait(signal.SIGTERM) == 0
    jpath = Path(eng.profile.journal.path)
    assert not journal_rows(jpath, "halt")
    assert journal_rows(jpath, "session_end")[-1][2]["state"] in ("active", "reduce_only")


async def test_no_engine_halt_latches_the_journal_for_the_next_start(tmp_path, capsys):
    from console.cli import main

    prof = write_profile(tmp_path)
    p = str(prof)
    r = await asyncio.to_thread(cli, tmp_path, "status", "--profile", p)
    assert r.returncode == 3 and "no engine is running" in r.stdout and "never started" in r.stdout
    r = await asyncio.to_thread(cli, tmp_path, "halt", "--reason", "venue outage", "--profile", p)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no engine is running" in r.stdout and "next start comes up HALTED" in r.stdout
    # The rest in-process (same CLI code, no interpreter start per call: the suite stays fast).
    assert await asyncio.to_thread(main, ["halt", "--reason", " ", "--profile", p]) == 2
    assert "must not be empty" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["status", "--json", "--profile", p]) == 3
    info = json.loads(capsys.readouterr().out)
    assert info["running"] is False and info["latched"] and info["halt_source"] == "cli"
    assert info["halt_reason"] == "venue outage" and info["next_start"] == "halted"
    assert await asyncio.to_thread(main, ["close-all", "--yes", "--profile", p]) == 3
    assert await asyncio.to_thread(main, ["rearm", "--reason", "x", "--profile", p]) == 3
    assert capsys.readouterr().out.count("no engine is running") == 2
    with pytest.raises(SystemExit) as exc:
        await asyncio.to_thread(main, ["status", "--profile", str(tmp_path / "missing.yaml")])
    assert exc.value.code == 2
    halts = journal_rows(tmp_path / "cli.sqlite", "halt")
    assert len(halts) == 1 and halts[0][2]["source"] == "cli" and halts[0][2]["reason"] == "venue outage"
    assert halts[0][2]["first"] is True and "wall_ts" in halts[0][2]
    eng = await Engine.open(load_profile(p))
    try:
        assert eng.state is TradingState.HALTED and "venue outage" in eng.halt_reason
    finally:
        await eng.close()


async def test_no_engine_status_and_halt_on_a_damaged_journal_say_so_and_exit_2(tmp_path, capsys):
    # A halt that could not be latched must never look latched; and no traceback.
    from console.cli import main

    prof = write_profile(tmp_path)
    (tmp_path / "cli.sqlite").write_bytes(b"not a database, whatever its name says " * 8)
    assert await asyncio.to_thread(main, ["halt", "--reason", "venue outage", "--profile", str(prof)]) == 2
    out = capsys.readouterr()
    assert out.err.strip() == f"tradeconsole: could not latch the halt in the journal: {tmp_path / 'cli.sqlite'}: file is not a database"
    assert "latched" not in out.out
    assert await asyncio.to_thread(main, ["status", "--profile", str(prof)]) == 2
    assert capsys.readouterr().err.startswith("tradeconsole: could not read the journal: ")


@pytest.mark.parametrize("command", [["status"], ["halt", "--reason", "venue outage"]], ids=["status", "halt"])
def test_no_engine_status_and_halt_on_a_journal_path_that_is_a_directory_say_so_and_exit_2(tmp_path, command):
    # The failed open's connection thread used to outlive the loop and print its own traceback.
    folder = tmp_path / "cli.sqlite"
    folder.mkdir()
    res = cli(tmp_path, *command, "--profile", str(write_profile(tmp_path)))
    assert res.returncode == 2, res.stderr[-2000:]
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("tradeconsole: could not ")
    assert line.endswith(f"the journal: {folder}: cannot open the journal (it is a directory; the journal is a file)")
    assert res.stdout == ""


@pytest.mark.parametrize("command", [["status"], ["halt", "--reason", "venue outage"]], ids=["status", "halt"])
def test_no_engine_status_and_halt_with_a_data_dir_that_is_a_file_say_so_and_exit_2(tmp_path, command):
    # No engine can listen under a file: the socket's OSError means "none running", and the
    # journal side then says what is in the way.
    blocker = tmp_path / "home"  # TRADECONSOLE_HOME of `cli`
    blocker.write_text("in the way of a folder")
    res = cli(tmp_path, *command)
    assert res.returncode == 2, res.stderr[-2000:]
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("tradeconsole: could not ") and line.endswith(f": {blocker} is a file, not a folder")
    assert res.stdout == ""


async def test_cli_exit_codes_refused_and_socket_off(tmp_path, capsys, monkeypatch):
    from console.cli import main

    # The CLI in a thread of this process, the engine on this loop: a refusal is exit 1.
    prof = write_profile(tmp_path, breakers={"api_failure_limit": 1})
    eng = await Engine.open(load_profile(str(prof)))
    svc = await start_control(eng)
    try:
        eng.api_failures.record()
        eng._evaluate_breakers(eng.clock.now())
        await asyncio.sleep(0.05)
        rc = await asyncio.to_thread(main, ["rearm", "--reason", "please", "--profile", str(prof)])
        out = capsys.readouterr().out
        assert rc == 1 and "re-arm REFUSED" in out and "api_failures" in out
    finally:
        await svc.stop()
        await eng.close()
    # An engine that holds the profile with its socket off reads the CLI's halt from the journal
    # within a second and halts (entries cancelled, stops kept); the CLI waits to see it, exit 0.
    prof2 = write_profile(tmp_path, "off", control={"socket": False})
    eng = await Engine.open(load_profile(str(prof2)))
    svc = await start_control(eng)
    try:
        assert eng.state.value == "active"
        rc = await asyncio.to_thread(main, ["halt", "--reason", "socket off", "--profile", str(prof2)])
        out = capsys.readouterr().out
        assert rc == 0 and "read the halt from the journal" in out and "HALTED" in out
        assert eng.state.value == "halted" and eng.halt_reason == "socket off (written into the journal)"
        # One that holds the profile but reads nothing (hung): the halt waits for the next start, exit 4.
        svc.watch.cancel()
        rc = await asyncio.to_thread(main, ["halt", "--reason", "again", "--profile", str(prof2)])
        out = capsys.readouterr().out
        assert rc == 4 and "NEXT start only" in out and f"kill -HUP {os.getpid()}" in out
        rc = await asyncio.to_thread(main, ["status", "--profile", str(prof2)])
        assert rc == 4 and "NOT ANSWERING" in capsys.readouterr().out
    finally:
        await svc.stop()
        await eng.close()
    # The CLI's two rows (offline), and between them the engine's own halt when it read the first.
    assert [(h[2]["source"], bool(h[2].get("offline"))) for h in journal_rows(tmp_path / "off.sqlite", "halt")] == [
        ("cli", True), ("cli", False), ("cli", True)]
