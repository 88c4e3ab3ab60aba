"""A profile whose run would write two of its files into one (the log into the journal, the log's
rotation renaming the live journal away, the instance lock truncating it) is refused at load, one
line naming the fields, and so by check-config; nothing is opened or written."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import cli_cmd, cli_env
from engine.config_loader import ConfigError, load_profile


def refused(tmp: Path, text: str) -> list[str]:
    (tmp / "p.yaml").write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_profile(tmp / "p.yaml")
    return exc.value.lines


@pytest.mark.parametrize("text, line", [
    ("journal: {path: j.log}\n",
     "logging.path: the log file (by default journal.path with .log) would be the same file as the journal "
     "(journal.path): {tmp}/j.log; give each its own path"),
    ("journal: {path: j.sqlite}\nlogging: {path: j.sqlite}\n",
     "logging.path: the log file would be the same file as the journal (journal.path): {tmp}/j.sqlite; "
     "give each its own path"),
    ("journal: {path: j.log.2}\nlogging: {path: j.log}\n",
     "logging.path: the log's rotated backup j.log.2 would be the same file as the journal (journal.path): "
     "{tmp}/j.log.2; give each its own path"),
    ("journal: {path: j.sqlite}\nlogging: {path: sub/../j.paper-venue.sqlite}\n",
     "logging.path: the log file would be the same file as the paper venue's store (journal.path): "
     "{tmp}/j.paper-venue.sqlite; give each its own path"),
    ("journal: {path: j.sqlite}\nlogging: {path: j.sqlite-wal}\n",
     "logging.path: the log file would be the same file as the journal's -wal file (journal.path): "
     "{tmp}/j.sqlite-wal; give each its own path"),
    ("journal: {path: j.sqlite}\nlogging: {path: j.sqlite.lock}\n",
     "logging.path: the log file would be the same file as the instance lock (journal.path): {tmp}/j.sqlite.lock; "
     "give each its own path"),
    ("journal: {path: j.sqlite}\ncontrol: {socket_path: j.sqlite}\n",
     "control.socket_path: the control socket would be the same file as the journal (journal.path): "
     "{tmp}/j.sqlite; give each its own path"),
])
def test_two_files_of_a_run_that_are_one_file_are_one_line(tmp_path, text, line):
    assert refused(tmp_path, text) == [f"{tmp_path / 'p.yaml'}: {line.format(tmp=tmp_path)}"]


def test_the_same_file_through_a_symlink_is_the_same_file(tmp_path):
    (tmp_path / "j.sqlite").write_bytes(b"")
    (tmp_path / "alias.log").symlink_to(tmp_path / "j.sqlite")
    (line,) = refused(tmp_path, "journal: {path: j.sqlite}\nlogging: {path: alias.log}\n")
    assert line.endswith(f"logging.path: the log file would be the same file as the journal (journal.path): "
                         f"{tmp_path}/j.sqlite; give each its own path")


@pytest.mark.parametrize("text", [
    "journal: {path: j}\n",  # the default log is j.log
    "journal: {path: j.sqlite}\nlogging: {path: j.log, backups: 0}\n",
    "journal: {path: a/j.sqlite}\nlogging: {path: b/j.sqlite}\n",
    "{}\n",
])
def test_separate_files_are_accepted(tmp_path, text):
    (tmp_path / "p.yaml").write_text(text)
    load_profile(tmp_path / "p.yaml")


def test_check_config_refuses_it_and_the_journal_is_untouched(tmp_path):
    journal = tmp_path / "j.log"
    journal.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    before = journal.read_bytes()
    (tmp_path / "p.yaml").write_text("journal: {path: j.log}\n")
    for args in (("check-config", "p.yaml"), ("run", "--headless", "--profile", "p.yaml", "--duration", "1")):
        res = subprocess.run(cli_cmd(*args), capture_output=True, text=True, cwd=tmp_path,
                             env=cli_env(tmp_path / "home"), timeout=120)
        assert res.returncode == 2, res
        assert res.stderr == ("p.yaml: logging.path: the log file (by default journal.path with .log) would be the "
                              f"same file as the journal (journal.path): {journal}; give each its own path\n")
        assert journal.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.log", "p.yaml"]
