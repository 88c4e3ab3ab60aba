"""A journal that cannot be written (read-only file, disk full, another writer's lock): its own
one-line error naming the file, the rows kept for the next try, and every command that writes it
says so in one line, exit 2, no traceback."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import REPO, cli_cmd, cli_env
from engine.journal import Journal, JournalError
from engine.tasks import close_after_failed_start

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
PROFILE = "config/paper-auto.yaml"
READ_ONLY = "attempt to write a readonly database"


def refuse_writes(j: Journal):
    """Every write fails as SQLite fails on a read-only file, until the returned function is called."""
    execute = j._db.execute

    async def failing(sql, *args, **kwargs):
        raise sqlite3.OperationalError(READ_ONLY)

    j._db.execute = failing
    return lambda: setattr(j._db, "execute", execute)


@pytest.mark.asyncio
async def test_a_write_that_fails_is_a_journal_error_naming_the_file_and_keeps_its_rows(tmp_path):
    path = tmp_path / "j.sqlite"
    j = await Journal.open(path)
    try:
        writable_again = refuse_writes(j)
        for i in range(5):
            j.append("note", T0, None, {"i": i})
        with pytest.raises(JournalError) as raised:
            await j.flush()
        assert str(raised.value) == f"{path}: cannot write the journal: {READ_ONLY}"
        assert isinstance(raised.value, sqlite3.OperationalError)  # what callers caught before still catches it
        assert j.pending == 5 and j.rows_written == 0, "a failed commit lost its rows"
        with pytest.raises(JournalError, match="cannot write the journal"):
            await j.set_meta("made_by", "backtest")
        writable_again()
        await j.flush()
        assert [r.data["i"] for r in await j.rows(["note"])] == list(range(5))
    finally:
        await j.close()


class _Venue:
    closed = False

    async def close(self) -> None:
        self.closed = True


@pytest.mark.asyncio
async def test_a_failed_start_tells_its_own_error_when_the_journal_cannot_commit_at_close(tmp_path):
    j = await Journal.open(tmp_path / "j.sqlite")
    refuse_writes(j)
    j.append("session", T0, None, {"session": 1})
    venue = _Venue()
    await close_after_failed_start(venue, j)  # logged, not raised over the start's own error
    assert venue.closed and j._closed


# -- the commands, on a journal file the process may not write --------------------------------------
def _setpriv() -> list[str] | None:
    """A prefix under which a read-only file cannot be written (root writes through chmod 444), or
    None when this machine cannot make one."""
    if os.geteuid() != 0:
        return []
    tool = shutil.which("setpriv")
    return None if tool is None else [tool, "--bounding-set", "-dac_override,-dac_read_search"]


def _cannot_write(prefix: list[str], path: Path) -> bool:
    return subprocess.run([*prefix, "sh", "-c", f"test -w '{path}'"]).returncode != 0


def run(home: Path, prefix: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *cli_cmd(*args)], capture_output=True, text=True, cwd=REPO, env=cli_env(home),
                          timeout=120)


def test_commands_on_a_read_only_journal_say_so_in_one_line(tmp_path):
    prefix = _setpriv()
    home = tmp_path / "h"
    home.mkdir()
    made = run(home, [], "run", "--headless", "--duration", "10m", "--seed", "3", "--profile", PROFILE)
    assert made.returncode == 0, made.stderr
    journal = home / "paper-auto.sqlite"
    journal.chmod(0o444)
    if prefix is None or not _cannot_write(prefix, journal):
        pytest.skip("this process can write a chmod 444 file (root without setpriv)")
    before = journal.read_bytes()
    said = f"{journal}: cannot write the journal: {READ_ONLY}"
    for args, line in [
        (("run", "--headless", "--duration", "10m"), f"tradeconsole: {said}"),
        (("attest", "runbook_read", "--text", "read it"), f"tradeconsole: attest: not recorded: {said}"),
        (("drill", "--seed", "3"), f"tradeconsole: drill: the result could not be journaled: {said}"),
        (("halt", "--reason", "x"), f"tradeconsole: could not latch the halt in the journal: {said}"),
    ]:
        res = run(home, prefix, *args, "--profile", PROFILE)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.splitlines() == [line], args
        assert "Traceback" not in res.stdout + res.stderr
        assert journal.read_bytes() == before
