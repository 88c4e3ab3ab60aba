"""One engine per journal, whatever names it: the instance lock is the journal's (`<journal>.lock`),
taken before the journal is opened and held until it is closed. Two profiles naming one journal,
a control socket that cannot be made, or the socket turned off never let a second engine in, and
a refused start writes nothing into the running engine's journal."""
from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from test_control_cli import cli, headless, write_profile  # noqa: F401 - fixture

from engine.config_loader import load_profile
from engine.control.paths import InstanceLock, lock_path

WAIT = 30.0


def rows(journal: Path) -> int:
    if not journal.exists():
        return 0
    with sqlite3.connect(journal) as db:
        return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def held(profile_yaml: Path) -> InstanceLock:
    """The lock as a running engine holds it."""
    lock = InstanceLock(lock_path(load_profile(str(profile_yaml))))
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    assert lock.try_acquire()
    return lock


@pytest.mark.parametrize("control", [{}, {"socket": False}], ids=["socket on", "socket off"])
def test_a_second_profile_on_the_same_journal_is_refused_before_it_writes(tmp_path, control):
    shared = tmp_path / "shared.sqlite"
    a = write_profile(tmp_path, "a", journal={"path": str(shared)}, control=control)
    b = write_profile(tmp_path, "b", journal={"path": str(shared)}, control=control)
    res = cli(tmp_path, "run", "--headless", "--profile", str(a), "--duration", "1m")
    assert res.returncode == 0, res.stderr[-2000:]
    before = rows(shared)
    lock = held(a)  # engine "a" is running
    try:
        res = cli(tmp_path, "run", "--headless", "--profile", str(b), "--duration", "1m")
    finally:
        lock.release()
    assert res.returncode == 2
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("tradeconsole: profile 'b' is already running") and str(lock.path) in line
    assert rows(shared) == before  # not a session row of the refused start in the running one's journal


def test_an_engine_whose_socket_cannot_be_made_still_holds_its_journal(tmp_path, headless):  # noqa: F811
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the socket's folder would be")
    prof = write_profile(tmp_path, "nosock", control={"socket_path": str(blocker / "x.sock")})
    first = headless(prof, speed="1")
    journal = tmp_path / "nosock.sqlite"
    deadline = time.monotonic() + WAIT
    while rows(journal) == 0 or not lock_path(load_profile(str(prof))).exists():
        assert first.proc.poll() is None, first.output()[-2000:]
        assert time.monotonic() < deadline, "the engine did not start"
        time.sleep(0.1)
    time.sleep(0.5)
    res = cli(tmp_path, "run", "--headless", "--profile", str(prof), "--duration", "1m")
    assert res.returncode == 2 and "is already running" in res.stderr
    res = cli(tmp_path, "status", "--profile", str(prof))
    assert res.returncode == 4, res.stdout + res.stderr  # running, not answering: not "no engine" (3)
    assert first.proc.poll() is None
    first.proc.terminate()
    try:
        first.proc.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail("the first engine did not stop on SIGTERM")
