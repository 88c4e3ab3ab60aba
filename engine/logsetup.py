"""Logging: a rotating file the console's log pane follows, and stdout for headless runs.

Written in the caller's thread. A listener thread was tried for the fill path's log lines: it
saved nothing measurable there, and contending for the GIL with the engine cost the alert
isolation benchmark several per cent. What did pay: no caller lookup, thread or process names
per record (the format uses none of them), and `LoopFlushedFileHandler` below.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import datetime, timezone
from logging.handlers import RotatingFileHandler
from pathlib import Path

from .clock import Clock
from .profile import LoggingConfig

FORMAT = "%(clock)s %(levelname)-7s %(name)s: %(message)s"
_MARK = "_tradeconsole_handler"


class LogFileError(Exception):
    """The log file (logging.path) cannot be created or opened."""


class ClockStamp(logging.Filter):
    """Stamp records with the engine's clock, so a simulated or replayed run logs its own time."""

    def __init__(self, clock: Clock | None) -> None:
        super().__init__()
        self.clock = clock
        self._second: datetime | None = None
        self._text = ""

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock.now() if self.clock is not None else datetime.now(timezone.utc)
        second = now.replace(microsecond=0)
        if second != self._second:  # records come in bursts within one second: format it once
            self._second = second
            self._text = now.strftime("%Y-%m-%d %H:%M:%S")
        record.clock = self._text
        return True


class LoopFlushedFileHandler(RotatingFileHandler):
    """A rotating log file flushed once per event-loop turn instead of once per record.

    The stock handler flushes (a write system call) and stats the file twice for every record,
    which cost ~35 us a line: more than the gate's whole decision on a fill. Here a record goes
    to the file's buffer and the first record of a loop turn schedules one flush at the end of
    it, so the log pane sees the lines within that turn. Outside a running loop (start-up,
    shutdown, another thread) every record is flushed at once, as before. The size for rotation
    is counted as written (characters, so a line of non-ASCII text may overshoot `maxBytes` by
    its extra bytes) rather than asked of the file.

    A rotation that fails (the backup name blocked by a directory, no permission to rename) must
    not cost lines: the stock handler has closed the stream by then and, with the size unchanged,
    every later record retried the rotation, failed and was dropped with a traceback on stderr
    (the log pane froze). Here the current file is reopened and appended to past its limit, the
    next attempt waits for another tenth of `maxBytes`, and the failure and the recovery are each
    said once, in the log and in one stderr line.
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._size = path.stat().st_size if path.exists() else 0
        self._flush_scheduled = False
        self._retry_at = 0  # while rotation fails: the size at which it is tried again
        self._failures = 0

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802 (logging's name)
        return bool(self.maxBytes) and self._size >= max(self.maxBytes, self._retry_at)

    def doRollover(self) -> None:  # noqa: N802
        try:
            super().doRollover()
        except OSError as exc:
            self._rotation_failed(exc)
            return
        self._size = 0
        self._retry_at = 0
        if self._failures:
            failures, self._failures = self._failures, 0
            self._tell(f"log rotation works again, after {failures} failed attempt(s)")

    def _rotation_failed(self, exc: OSError) -> None:
        # A per-record retry is what turned one failure into hundreds of lost lines; a tenth of the
        # limit spaces the attempts out yet lets rotation resume soon after the obstacle goes.
        self._retry_at = self._size + max(self.maxBytes // 10, 1)
        if self.stream is None:
            # The base rollover closed the file before it failed; the file is still in place
            # (or was already renamed, and then a new one is started), so append to it.
            self.stream = self._open()
        self._failures += 1
        if self._failures == 1:
            self._tell(f"log rotation failed ({exc}): appending to {self.baseFilename} past its size "
                       f"limit, rotation retried every {self._retry_at - self._size} characters")

    def _tell(self, text: str) -> None:
        # Once per failure or recovery, so a line on stderr costs nothing. Callers update the size
        # or `_retry_at` first: the record below must not re-enter the rotation (the handler's
        # lock is an RLock, so it goes straight to the file).
        try:
            sys.stderr.write(f"tradeconsole: {text}\n")
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            pass
        logging.getLogger("tradeconsole.logsetup").warning("%s", text)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.shouldRollover(record):
                self.doRollover()
            if self.stream is None:
                self.stream = self._open()
            msg = self.format(record) + self.terminator
            self.stream.write(msg)
            self._size += len(msg)
            self._schedule_flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _schedule_flush(self) -> None:
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self._flush_turn)

    def _flush_turn(self) -> None:
        self._flush_scheduled = False
        self.flush()


class StdoutLogHandler(logging.StreamHandler):
    """Headless log lines on stdout, until stdout goes away.

    A reader that left (`run --headless | head`) or a terminal that hung up made every later
    record print a "Logging error" traceback to stderr, thousands of them. The first failed write
    turns this handler off and points stdout at devnull (so the summary's print and the
    interpreter's flush at exit cannot fail either); the log file keeps every line."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)
            return
        self.setLevel(logging.CRITICAL + 1)
        try:
            fd = sys.stdout.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
        except (AttributeError, OSError, ValueError):
            pass  # not a real file (tests), or no devnull: the level alone keeps it quiet
        else:
            os.dup2(null, fd)
            os.close(null)
        logging.getLogger("tradeconsole").warning("stdout is gone (%s): log lines go to the log file only", exc)


def setup_logging(path: Path, cfg: LoggingConfig, *, stdout: bool = False, clock: Clock | None = None) -> None:
    # The logging HOWTO's optimisations: no caller lookup, thread or process names.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger("tradeconsole")
    root.setLevel(cfg.level)
    root.propagate = False
    for h in list(root.handlers):
        if getattr(h, _MARK, False):
            root.removeHandler(h)
            h.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = LoopFlushedFileHandler(path, cfg.max_bytes, cfg.backups)
    except OSError as exc:
        raise LogFileError(f"{path}: cannot open the log file ({exc.strerror or exc})") from None
    fh.setFormatter(logging.Formatter(FORMAT))
    fh.addFilter(ClockStamp(clock))
    setattr(fh, _MARK, True)
    root.addHandler(fh)
    if stdout:
        sh = StdoutLogHandler(sys.stdout)
        sh.setFormatter(logging.Formatter("%(levelname)-7s %(message)s"))
        setattr(sh, _MARK, True)
        root.addHandler(sh)
