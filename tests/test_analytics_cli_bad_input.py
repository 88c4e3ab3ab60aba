"""Bad input to `tradeconsole backtest / readiness / report`: one line naming what was expected,
exit 2, no traceback, and nothing written before the refusal."""
from __future__ import annotations

import sqlite3
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import REPO, cli_cmd, cli_env

PROFILE = "config/paper-auto.yaml"
CSV = "tests/data/bars-2sym-8h.csv"


def run(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, cwd=REPO, env=cli_env(home),
                          timeout=timeout)


def one_line(res: subprocess.CompletedProcess, start: str) -> str:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith(start), res.stderr
    return res.stderr


def files(folder: Path) -> dict[str, bytes]:
    # Reading a WAL journal read-only (as `readiness` does) leaves SQLite's -shm/-wal beside it.
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.endswith(("-shm", "-wal"))}


# -- backtest --journal: only a new file or a backtest's own journal --------------------------------
def another_profiles_journal(home: Path) -> Path:
    from engine.analytics.journal_data import append_row

    path = home / "live-small.sqlite"  # a real record: its trades are go/no-go evidence
    append_row(path, "session", datetime(2026, 1, 5, tzinfo=timezone.utc), None, {"session": 1, "profile": "x"})
    return path


def sqlite_file_that_is_no_journal(home: Path) -> Path:
    path = home / "paper-auto.paper-venue.sqlite"  # the paper venue's books
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE books (k TEXT PRIMARY KEY, v TEXT)")
        db.execute("INSERT INTO books VALUES ('cash', '10000')")
    db.close()
    return path


def text_file(home: Path) -> Path:
    path = home / "notes.txt"
    path.write_text("not a database\n" * 50, encoding="utf-8")
    return path


def empty_file(home: Path) -> Path:
    path = home / "empty.sqlite"
    path.touch()
    return path


@pytest.mark.parametrize("make, says", [
    (another_profiles_journal, "exists and is not a journal a backtest made"),
    (sqlite_file_that_is_no_journal, "exists and is not a journal a backtest made"),
    (empty_file, "exists and is not a journal a backtest made"),
    (text_file, "not a tradeconsole journal (file is not a database)"),
])
def test_backtest_refuses_an_existing_file_no_backtest_made_before_writing_anything(tmp_path, make, says):
    home = tmp_path / "h"
    home.mkdir()
    target = make(home)
    before = files(home)
    res = run(home, "backtest", "--profile", PROFILE, "--csv", CSV, "--journal", str(target))
    err = one_line(res, f"tradeconsole: backtest: --journal: {target}")
    assert says in err and err.rstrip().endswith("name a new file")
    assert files(home) == before, "the refused backtest wrote into (or beside) a file that is not its own"


def test_backtest_refuses_a_directory_and_a_new_journal_whose_log_is_taken(tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    res = run(home, "backtest", "--profile", PROFILE, "--csv", CSV, "--journal", str(tmp_path))
    assert one_line(res, "tradeconsole: backtest: --journal: ") == (
        f"tradeconsole: backtest: --journal: {tmp_path} is a directory; a backtest journal is a file\n")
    # A new journal named so that its log would be another journal's log (rotated under it).
    (home / "paper-auto.log").write_text("the profile's log\n", encoding="utf-8")
    before = files(home)
    res = run(home, "backtest", "--profile", PROFILE, "--csv", CSV, "--journal", str(home / "paper-auto"))
    assert "its log file" in one_line(res, f"tradeconsole: backtest: --journal: {home / 'paper-auto'}")
    assert files(home) == before


def test_a_backtest_journal_takes_another_backtest(tmp_path):
    from engine.analytics.backtest import MADE_BY
    from engine.analytics.journal_data import read_meta

    journal = tmp_path / "bt.sqlite"
    header, *lines = (REPO / CSV).read_text(encoding="utf-8").splitlines(keepends=True)
    stamps = sorted({line.split(",", 1)[0] for line in lines}, key=int)
    cut = stamps[len(stamps) // 2]
    halves = []  # the second replay starts after the first: time in a journal never goes back
    for k, keep in enumerate((lambda ts: int(ts) < int(cut), lambda ts: int(ts) >= int(cut))):
        halves.append(tmp_path / f"half-{k}.csv")
        halves[-1].write_text(header + "".join(x for x in lines if keep(x.split(",", 1)[0])), encoding="utf-8")
    for session, csv in enumerate(halves, 1):
        res = run(tmp_path, "backtest", "--profile", PROFILE, "--csv", str(csv), "--journal", str(journal), "--json")
        assert res.returncode == 0, res.stderr
        with sqlite3.connect(journal) as db:
            assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'session'").fetchone()[0] == session
        db.close()
    assert read_meta(journal, MADE_BY[0]) == MADE_BY[1]


# -- readiness / report: bounded integers; no error is ever exit 1 (NO-GO) -------------------------
@pytest.mark.parametrize("command", ["readiness", "report stage"])
@pytest.mark.parametrize("arg, value, expected", [
    ("--seed", "-1", "an integer from 0 to 9223372036854775807"),
    ("--seed", "2.5", "an integer from 0 to 9223372036854775807"),
    ("--resamples", "100000000000", "an integer from 1 to 100000"),  # numpy asked for 745 GiB
    ("--resamples", "0", "an integer from 1 to 100000"),
])
def test_out_of_range_integers_are_a_usage_line(tmp_path, command, arg, value, expected):
    res = run(tmp_path, *command.split(), "--profile", PROFILE, arg, value)
    assert one_line(res, "tradeconsole ") == (
        f"tradeconsole {command.split()[0]}: argument {arg}: expected {expected} (got {value!r})\n")


@pytest.mark.parametrize("value", ["0", "100000000000"])
def test_promote_bounds_its_resamples_too(tmp_path, value):
    res = run(tmp_path, "promote", "--to", "testnet", "--profile", PROFILE, "--resamples", value)
    assert one_line(res, "tradeconsole ") == (
        f"tradeconsole promote: argument --resamples: expected an integer from 1 to 100000 (got {value!r})\n")


def small_journal(home: Path) -> Path:
    from engine.analytics.journal_data import append_row

    path = home / "paper-auto.sqlite"
    append_row(path, "session", datetime(2026, 1, 5, tzinfo=timezone.utc), None, {"session": 1, "profile": "paper-auto"})
    return path


def test_a_journal_row_that_cannot_be_read_is_exit_2_not_no_go(tmp_path):
    path = small_journal(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE events SET data = '{not json' WHERE kind = 'session'")
    db.close()
    for command in (["readiness"], ["report", "daily"]):
        res = run(tmp_path, *command, "--profile", PROFILE)
        one_line(res, f"tradeconsole: {path}: row 1 (session) cannot be read: ")


@pytest.mark.parametrize("failure", [MemoryError(), RuntimeError("numpy said no")])
def test_readiness_that_fails_unforeseen_exits_2_in_one_line(tmp_path, monkeypatch, capsys, failure):
    import engine.analytics.readiness as readiness
    from console.cli import main

    small_journal(tmp_path)
    monkeypatch.setenv("TRADECONSOLE_HOME", str(tmp_path))

    def fails(*args, **kwargs):
        raise failure

    monkeypatch.setattr(readiness, "evaluate", fails)
    assert main(["readiness", "--profile", str(REPO / PROFILE)]) == 2  # 1 would read as NO-GO
    out = capsys.readouterr()
    assert out.out == "" and out.err == (
        f"tradeconsole: readiness: failed: {type(failure).__name__}: {failure}\n")


# -- backtest --windows: checked against the data before anything is written -----------------------
@pytest.mark.parametrize("rows, windows", [(None, "100000"), (1, "2")], ids=["too-many-windows", "one-row-csv"])
def test_windows_the_data_cannot_hold_are_refused_before_any_journal_or_log(tmp_path, rows, windows):
    home = tmp_path / "h"
    home.mkdir()
    csv = REPO / CSV
    if rows is not None:
        lines = csv.read_text(encoding="utf-8").splitlines(keepends=True)
        csv = tmp_path / "one.csv"
        csv.write_text("".join(lines[:1 + rows]), encoding="utf-8")
    n = 480 if rows is None else rows  # timestamps in the file
    for journal in ([], ["--journal", str(home / "bt.sqlite")]):
        res = run(home, "backtest", "--profile", PROFILE, "--csv", str(csv), "--windows", windows, *journal)
        assert one_line(res, "tradeconsole: ") == (
            f"tradeconsole: backtest: {n} timestamps are too few for {windows} windows\n")
        assert list(home.iterdir()) == [], "a refused backtest left its journal or log behind"
