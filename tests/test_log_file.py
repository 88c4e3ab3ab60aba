"""The log file the log pane follows: written per record, flushed once per loop turn."""
from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import datetime, timezone

import pytest

from console.app import _flush_log_files
from engine.clock import SimClock
from engine.logsetup import LoopFlushedFileHandler, setup_logging
from engine.profile import LoggingConfig

T0 = datetime(2026, 3, 2, 14, 30, 5, tzinfo=timezone.utc)


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "tc.log"
    setup_logging(path, LoggingConfig(), clock=SimClock(T0))
    yield path
    for h in list(logging.getLogger("tradeconsole").handlers):
        logging.getLogger("tradeconsole").removeHandler(h)
        h.close()


def test_outside_a_loop_each_record_is_on_disk_at_once(log_file):
    logging.getLogger("tradeconsole.x").info("first %s", 1)
    assert log_file.read_text() == "2026-03-02 14:30:05 INFO    tradeconsole.x: first 1\n"


@pytest.mark.asyncio
async def test_inside_a_loop_records_reach_the_file_when_the_turn_ends(log_file):
    log = logging.getLogger("tradeconsole.x")
    for i in range(3):
        log.info("fill %s", i)
    assert log_file.read_text() == "", "flushed per record, not per turn"
    await asyncio.sleep(0)
    assert log_file.read_text().count("fill") == 3


@pytest.mark.asyncio
async def test_the_exit_watchdog_flushes_what_a_stuck_loop_never_did(log_file):
    logging.getLogger("tradeconsole.x").warning("last words")
    assert "last words" not in log_file.read_text()
    _flush_log_files()
    assert "last words" in log_file.read_text()


def test_rollover_at_the_counted_size_keeps_the_backups(tmp_path):
    path = tmp_path / "r.log"
    path.write_text("x" * 9_990)  # an existing file counts toward the limit
    h = LoopFlushedFileHandler(path, max_bytes=10_000, backups=2)
    h.setFormatter(logging.Formatter("%(message)s"))
    rec = logging.LogRecord("tradeconsole", logging.INFO, __file__, 1, "y" * 20, None, None)
    h.emit(rec)  # 9,990 + 21 crosses the limit: the next record starts a new file
    h.emit(rec)
    h.close()
    assert (tmp_path / "r.log.1").read_text() == "x" * 9_990 + "y" * 20 + "\n"
    assert path.read_text() == "y" * 20 + "\n"


def test_a_failed_rotation_loses_no_line_and_is_reported_once(tmp_path, capsys):
    path = tmp_path / "f.log"
    setup_logging(path, LoggingConfig(max_bytes=10_000, backups=1), clock=SimClock(T0))
    log = logging.getLogger("tradeconsole.engine")
    # As root chmod stops nothing: a non-empty directory where the backup goes blocks the rotation.
    (tmp_path / "f.log.1").mkdir()
    (tmp_path / "f.log.1" / "x").write_text("x")
    try:
        for i in range(300):  # ~17 KB: well past the limit and many retry steps
            log.info("line %d", i)
        text = path.read_text()
        # Before, the first failure closed the file and every later record was dropped.
        assert all(f"line {i}\n" in text for i in range(300))
        assert text.count("log rotation failed") == 1
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "log rotation failed" in err
        assert "Traceback" not in err and "Logging error" not in err

        shutil.rmtree(tmp_path / "f.log.1")
        for i in range(300, 400):
            log.info("line %d", i)
        backup, current = (tmp_path / "f.log.1").read_text(), path.read_text()
        assert "line 299\n" in backup, "rotation resumed once the obstacle was gone"
        assert "rotation works again" in current
        assert all(f"line {i}\n" in backup + current for i in range(400))
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "rotation works again" in err
    finally:
        root = logging.getLogger("tradeconsole")
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()


class _GoneReader:
    """A stdout whose reader has left: every write is a broken pipe."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_headless_log_lines_stop_quietly_when_stdout_goes_away(tmp_path, monkeypatch, capsys):
    gone = _GoneReader()
    monkeypatch.setattr("sys.stdout", gone)
    path = tmp_path / "h.log"
    setup_logging(path, LoggingConfig(), stdout=True, clock=SimClock(T0))
    log = logging.getLogger("tradeconsole.engine")
    try:
        for i in range(50):
            log.info("line %d", i)
        # One failed write, then silence: before, each record printed a "Logging error" traceback.
        assert gone.writes == 1
        assert capsys.readouterr().err == ""
        text = path.read_text()
        assert all(f"line {i}" in text for i in range(50))  # the file keeps every line
        assert text.count("stdout is gone") == 1
    finally:
        root = logging.getLogger("tradeconsole")
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
