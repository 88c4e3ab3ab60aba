"""A journal that cannot be opened stops a start with one line naming it, exit 2, and leaves no
connection thread behind (a non-daemon thread left running keeps the process from exiting)."""
from __future__ import annotations

import subprocess
import threading

import pytest
import yaml
from conftest import REPO, cli_cmd, cli_env

from engine.journal import Journal, JournalError


def run(tmp, *args: str, home=None) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, cwd=REPO, check=False,
                          env=cli_env(home or tmp / "home"), timeout=60)


def test_a_journal_path_that_is_a_directory_is_one_line_and_exit_2(tmp_path):
    folder = tmp_path / "journal-dir"
    folder.mkdir()
    prof = tmp_path / "p.yaml"
    prof.write_text(yaml.safe_dump({"name": "p", "journal": {"path": str(folder)},
                                    "logging": {"path": str(tmp_path / "p.log")}}))
    res = run(tmp_path, "run", "--headless", "--profile", str(prof), "--duration", "1m")
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().splitlines() == [
        f"tradeconsole: {folder}: cannot open the journal (it is a directory; the journal is a file)"]


def test_a_data_dir_whose_dotdot_climbs_above_root_is_where_the_os_puts_it(tmp_path):
    # The OS reads "/.." as "/"; SQLite refused it, so the folder was made and the journal then
    # failed. The data dir is resolved as the OS would, so the run works there.
    home = "/.." * (len(tmp_path.parts) + 1) + str(tmp_path / "home")
    res = run(tmp_path, "run", "--headless", "--duration", "1m", home=home)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "home" / "paper.sqlite").is_file()


async def test_a_journal_path_whose_dotdot_climbs_above_root_is_one_line(tmp_path):
    path = "/.." * (len(tmp_path.parts) + 1) + str(tmp_path / "j.sqlite")
    with pytest.raises(JournalError, match=r"cannot open the journal \(a '\.\.' in it climbs above '/'"):
        await Journal.open(path)


async def test_a_failed_open_leaves_no_connection_thread_running(tmp_path):
    with pytest.raises(JournalError, match="cannot open the journal"):
        await Journal.open(tmp_path)  # a directory
    assert [t for t in threading.enumerate() if "_connection_worker_thread" in t.name] == []
