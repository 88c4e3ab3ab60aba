"""The `tradeconsole` command line, run as a user runs it (a subprocess, data dir in tmp)."""
from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import REPO, cli_cmd, cli_env


def run_cli(tmp_path: Path, *args: str, cwd: Path = REPO, home: Path | None = None,
            timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, cwd=cwd,
                          env=cli_env(home or tmp_path / "home"), timeout=timeout)


def summary(stdout: str) -> dict[str, str]:
    """The summary block: first word(s) of each line -> the rest."""
    start = stdout.index("── tradeconsole headless summary")
    out: dict[str, str] = {}
    for line in stdout[start:].splitlines()[1:]:
        m = re.match(r"^(this session|signals|orders sent|equity|realized P&L|closed trades|open positions|"
                     r"trading state|journal)\s+(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def usd(text: str) -> Decimal:
    return Decimal(text.replace("$", "").replace(",", ""))


def journal_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind").fetchall())


# -- a headless run ------------------------------------------------------------------------------
def test_headless_run_prints_the_summary_and_keeps_its_data_in_the_home_dir(tmp_path):
    home = tmp_path / "home"
    res = run_cli(tmp_path, "run", "--headless", "--duration", "30m", "--seed", "1",
                  "--profile", "config/paper-auto.yaml", home=home)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "── tradeconsole headless summary ─ profile paper-auto (paper) ──" in res.stdout
    s = summary(res.stdout)
    assert re.match(r"30m 0\ds of simulated time", s["this session"])
    m = re.match(r"([\d,]+): ([\d,]+) entries judged \(gate passed ([\d,]+), refused ([\d,]+)\), ([\d,]+) on a "
                 r"held position, ([\d,]+) skipped", s["signals"])
    assert m
    signals, judged, passed, refused, held, skipped = (int(g.replace(",", "")) for g in m.groups())
    # every signal is accounted for: judged as an entry, judged as an exit, or skipped
    assert signals == judged + held + skipped and judged == passed + refused and passed > 0
    m = re.match(r"([\d,]+)\s+fills ([\d,]+)\s+approvals expired 0\s+still waiting at the end 0", s["orders sent"])
    assert m
    fills = int(m.group(2).replace(",", ""))
    assert s["trading state"] == "active"
    # the money lines add up: start + realized - fees + unrealized == equity (to the cent)
    eq = re.match(r"(\S+)\s+\(start (\S+)\)", s["equity"])
    pnl = re.match(r"(\S+)\s+unrealized (\S+)\s+fees (\S+)", s["realized P&L"])
    assert eq and pnl
    equity, start = usd(eq.group(1)), usd(eq.group(2))
    realized, unrealized, fees = (usd(pnl.group(i)) for i in (1, 2, 3))
    assert start == Decimal("10000.00")
    assert abs(start + realized - fees + unrealized - equity) <= Decimal("0.02")  # each shown rounded
    # the journal and the log live under TRADECONSOLE_HOME, and the journal agrees with the summary
    journal = home / "paper-auto.sqlite"
    assert s["journal"] == str(journal)
    assert journal.exists() and (home / "paper-auto.log").exists()
    counts = journal_counts(journal)
    assert counts.get("fill", 0) == fills
    assert counts["session"] == 1 and counts["session_end"] == 1


def test_headless_run_is_reproducible_by_seed(tmp_path):
    def go(home: Path) -> list[str]:
        res = run_cli(tmp_path, "run", "--headless", "--duration", "20m", "--seed", "5",
                      "--profile", "config/paper-auto.yaml", home=home)
        assert res.returncode == 0, res.stderr
        lines = res.stdout[res.stdout.index("── tradeconsole headless summary"):].splitlines()
        return [ln for ln in lines if not ln.startswith(("journal", "INFO", "WARNING"))]

    assert go(tmp_path / "a") == go(tmp_path / "b")


# -- usage errors: exit 2, one line, no traceback ----------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    (["--duration", "abc"], "--duration"),
    (["--duration", "0"], "--duration: must be a finite number > 0"),
    (["--duration=-5m"], "--duration: must be a finite number > 0"),
    (["--duration", "5x"], "--duration"),
    (["--speed", "fast"], "--speed"),
    (["--speed", "-1"], "--speed"),
    (["--speed", "nan"], "--speed"),
    (["--seed", "x"], "--seed"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--profile", "nope.yaml"], "nope.yaml: no such file"),
])
def test_bad_run_arguments_exit_2_with_one_line(tmp_path, args, fragment):
    res = run_cli(tmp_path, "run", "--headless", *args, timeout=30)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], res.stderr
    assert res.stdout == ""
    assert not (tmp_path / "home").exists()  # nothing opened, nothing written


@pytest.mark.parametrize("duration", ["nan", "inf", "1e400d"])
def test_non_finite_duration_is_a_usage_error(tmp_path, duration):
    res = run_cli(tmp_path, "run", "--headless", "--duration", duration, timeout=30)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_empty_duration_is_a_usage_error(monkeypatch, capsys):
    import console.cli as cli

    started = []

    async def fake_headless(profile, seed, speed, duration):  # stands in for the engine run
        started.append(duration)
        return 0

    monkeypatch.setattr(cli, "_headless", fake_headless)
    assert cli.main(["run", "--headless", "--duration", ""]) == 2, f"ran with duration {started}"
    assert "--duration" in capsys.readouterr().err


def test_unknown_command_and_option_without_command(tmp_path):
    res = run_cli(tmp_path, "frobnicate", timeout=30)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "invalid choice" in res.stderr
    res = run_cli(tmp_path, "--bogus", timeout=30)  # options alone mean `run`
    assert res.returncode == 2 and res.stderr.strip() == "tradeconsole: unrecognized arguments: --bogus"


# -- CSV replay profiles -------------------------------------------------------------------------
def csv_profile(tmp_path: Path, rows: list[str]) -> Path:
    (tmp_path / "quotes.csv").write_text("\n".join(["timestamp,symbol,bid,ask,bid_size,ask_size", *rows]) + "\n")
    prof = tmp_path / "replay.yaml"
    prof.write_text("name: replay\nsymbols: [XYZ/USD]\nfeed:\n  kind: csv\n  csv_path: quotes.csv\n"
                    "approval:\n  required: false\n")
    return prof


def test_bad_csv_exits_2_naming_file_and_line(tmp_path):
    prof = csv_profile(tmp_path, ["2026-01-05T00:00:00Z,XYZ/USD,99.9,100.0,10,10",
                                  "2026-01-05T00:00:01Z,XYZ/USD,abc,100.0,10,10"])
    res = run_cli(tmp_path, "run", "--headless", "--profile", str(prof), timeout=30)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert f"{tmp_path / 'quotes.csv'}:3:" in line and "bid" in line
    assert not (tmp_path / "home" / "replay.sqlite").exists()


def test_good_csv_replays_to_the_end(tmp_path):
    rows = [f"2026-01-05T00:{i // 60:02d}:{i % 60:02d}Z,XYZ/USD,99.9,100.0,10,10" for i in range(120)]
    prof = csv_profile(tmp_path, rows)
    res = run_cli(tmp_path, "run", "--headless", "--profile", str(prof), timeout=60)
    assert res.returncode == 0, res.stderr
    s = summary(res.stdout)
    assert "(120 quotes)" in s["this session"]
    assert journal_counts(tmp_path / "home" / "replay.sqlite")["session_end"] == 1


def test_live_needs_a_live_profile_the_flag_and_a_typed_confirmation(tmp_path):
    live = tmp_path / "live.yaml"
    live.write_text("name: realmoney\nmode: live\nstage: micro\nvenue:\n  name: binance\n")
    no_flag = run_cli(tmp_path, "run", "--headless", "--profile", str(live), timeout=30)
    assert no_flag.returncode == 2 and "add --live" in no_flag.stderr
    no_tty = run_cli(tmp_path, "run", "--headless", "--live", "--profile", str(live), timeout=30)
    assert no_tty.returncode == 2 and "typed confirmation" in no_tty.stderr
    paper_with_flag = run_cli(tmp_path, "run", "--headless", "--live", "--duration", "1m", timeout=30)
    assert paper_with_flag.returncode == 2 and "--live given" in paper_with_flag.stderr


_FAIL_AT_CLOSE = """
import sys
from engine.brokers import paper
close = paper.PaperBroker.close
async def close_on_a_failing_disk(self):
    self._store.db.execute("PRAGMA query_only = 1")  # every write from here on fails
    self._cash_dirty = True
    await close(self)
paper.PaperBroker.close = close_on_a_failing_disk
from console.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_headless_run_whose_last_write_fails_exits_1_with_one_line(tmp_path):
    # The venue's file refuses writes as the run closes: the process must still exit (not hang on the journal's
    # thread), say what was not written in one line, and not look like a clean run (exit 0).
    res = subprocess.run([sys.executable, "-c", _FAIL_AT_CLOSE, "run", "--headless", "--duration", "10m", "--seed", "1"],
                         capture_output=True, text=True, cwd=REPO, env=cli_env(tmp_path / "home"), timeout=90)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("tradeconsole: ") and "paper.paper-venue.sqlite: attempt to write a readonly" in last
    assert "tradeconsole headless summary" in res.stdout  # the run itself finished and said so


@pytest.mark.parametrize("damaged", ["paper.sqlite", "paper.paper-venue.sqlite"], ids=["journal", "venue-books"])
def test_a_damaged_journal_or_venue_file_is_one_line_and_exit_2(tmp_path, damaged):
    # Not a traceback; and the venue's file failing after the journal opened must not leave the
    # journal's thread running (that process never exited).
    home = tmp_path / "home"
    home.mkdir()
    (home / damaged).write_bytes(b"not a database, whatever its name says " * 8)
    res = run_cli(tmp_path, "run", "--headless", "--duration", "1m", home=home, timeout=60)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [f"tradeconsole: {home / damaged}: file is not a database"]


def test_a_venue_file_path_taken_by_a_folder_is_one_line_and_exit_2(tmp_path):
    home = tmp_path / "home"
    (home / "paper.paper-venue.sqlite").mkdir(parents=True)
    res = run_cli(tmp_path, "run", "--headless", "--duration", "1m", home=home, timeout=60)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().splitlines() == [
        f"tradeconsole: {home / 'paper.paper-venue.sqlite'}: cannot open the paper venue's file "
        "(it is a directory; the venue's file is a file)"]


@pytest.mark.parametrize("section, name, what", [("journal", "j.sqlite", "cannot create its folder"),
                                                  ("logging", "x.log", "cannot open the log file")])
def test_a_journal_or_log_path_that_cannot_be_created_is_one_line_and_exit_2(tmp_path, section, name, what):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way of a folder")
    target = blocker / name
    prof = tmp_path / "p.yaml"
    prof.write_text(f"{section}:\n  path: {target}\n")
    res = run_cli(tmp_path, "run", "--headless", "--duration", "1m", "--profile", str(prof), timeout=60)
    assert res.returncode == 2, res.stderr[-2000:]
    (line,) = res.stderr.strip().splitlines()  # the OS's reason in brackets: a file is in the way
    assert line.startswith(f"tradeconsole: {target}: {what} (") and "Traceback" not in res.stderr


@pytest.mark.parametrize("sig, reason", [("SIGINT", "SIGINT received"),
                                         ("SIGTERM", "SIGTERM received: orderly shutdown")])
async def test_a_stop_signal_during_the_start_is_held_and_acted_on_once_the_engine_is_open(tmp_path, monkeypatch,
                                                                                             sig, reason):
    # Before, asyncio's own SIGINT handler cancelled the start wherever it was (a journal thread
    # left running hung the process; a cancellation caught on the way lost the Ctrl-C), and a
    # SIGTERM killed it outright with the journal half written.
    import asyncio
    import os
    import signal

    from conftest import build_profile
    from console import cli_open
    from engine.control.signals import policy_for
    from engine.engine import Engine
    from engine.risk.gate import TradingState

    real_open = Engine.open.__func__

    async def open_under_a_signal(cls, *args, **kwargs):
        os.kill(os.getpid(), getattr(signal, sig))  # arrives while the start is under way
        await asyncio.sleep(0.05)  # the loop handles it now, in the middle of the start
        return await real_open(cls, *args, **kwargs)

    monkeypatch.setattr(Engine, "open", classmethod(open_under_a_signal))
    engine = await cli_open.open_engine(build_profile(tmp_path, "sig"), 3, 0.0, stdout=False)
    policy = policy_for(engine, engine.stop)  # the runner attaches, as run_headless does
    try:
        assert engine.state is TradingState.HALTED and engine.halt_reason == reason
        assert engine._stop.is_set() and policy.received == [sig]
        await policy.settle()
        (halt,) = await engine.journal.rows(["halt"])
        assert halt.data["source"] == "signal"
    finally:
        policy.uninstall()
        await engine.close()


def test_ctrl_c_before_an_engine_is_open_is_one_line_and_exit_130(monkeypatch, capsys):
    from console import cli

    def interrupted(args):
        raise KeyboardInterrupt  # e.g. while the engine's modules load

    monkeypatch.setattr(cli, "_run", interrupted)
    assert cli.main(["run", "--headless"]) == 130
    assert capsys.readouterr().err == "tradeconsole: interrupted\n"


@pytest.mark.parametrize("args", [["check-config", "config/paper.yaml"], ["status"]])
def test_a_reader_that_left_is_no_traceback(args, tradeconsole_home):
    # `tradeconsole status | head -1`: the pipe's reader is gone before the output is written.
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        res = subprocess.run([*cli_cmd(), *args], stdout=write_end, stderr=subprocess.PIPE, text=True,
                             cwd=REPO, env=cli_env(tradeconsole_home), timeout=60)
    finally:
        os.close(write_end)
    assert res.stderr == "" and res.returncode == 141


@pytest.mark.parametrize("seed", ["9223372036854775808", "-9223372036854775809", "99999999999999999999"])
def test_a_seed_the_journal_cannot_hold_is_a_usage_error(seed, capsys):
    from console.cli import main

    assert main(["run", "--headless", "--seed", seed]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tradeconsole run: argument --seed: expected an integer from -9223372036854775808") \
        and err.count("\n") == 1


def test_check_config_refuses_what_run_would_refuse_at_its_start(tmp_path, capsys):
    from console.cli import main

    prof = tmp_path / "replay.yaml"
    prof.write_text("feed:\n  kind: csv\n  csv_path: missing.csv\n")
    assert main(["check-config", str(prof)]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith(f"{prof}: feed.csv_path: {tmp_path / 'missing.csv'}: cannot read")


@pytest.mark.parametrize("home", ["relative/dir", "   ", "./here"])
@pytest.mark.parametrize("command", [["status"], ["halt", "--reason", "x"], ["run", "--headless", "--duration", "1m"]])
def test_a_tradeconsole_home_that_is_not_an_absolute_path_is_refused(tmp_path, monkeypatch, capsys, home, command):
    from console.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADECONSOLE_HOME", home)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err == f"tradeconsole: TRADECONSOLE_HOME: expected an absolute path such as /home/you/tradeconsole (got {home!r})\n"
    assert list(tmp_path.iterdir()) == []  # no folder made, nothing written where the command ran


@pytest.mark.parametrize("text", ["0", "0.0", "-0", "0e0", "MAX"])
def test_every_spelling_of_zero_speed_is_flat_out(text):
    from console.cli import _speed

    assert _speed(text) == 0.0
