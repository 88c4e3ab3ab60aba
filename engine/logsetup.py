"""Logging: a rotating file the console's log pane follows, and stdout for headless runs."""
from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
from datetime import datetime, timezone
from logging.handlers import QueueHandler, QueueListener, RotatingFileHandler
from pathlib import Path

from .clock import Clock
from .profile import LoggingConfig

FORMAT = "%(clock)s %(levelname)-7s %(name)s: %(message)s"
_MARK = "_tradeconsole_handler"


class ClockStamp(logging.Filter):
    """Stamp records with the engine's clock, so a simulated or replayed run logs its own time."""

    def __init__(self, clock: Clock | None) -> None:
        super().__init__()
        self.clock = clock

    def filter(self, record: logging.LogRecord) -> bool:
        # The moment is taken when logged; the writer thread turns it into text (ClockFormatter).
        record.clock_at = self.clock.now() if self.clock is not None else datetime.now(timezone.utc)
        return True


class ClockFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        at = getattr(record, "clock_at", None)
        record.clock = (at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S")
        return super().format(record)


class _MessageNow(QueueHandler):
    """Hands records to the writer thread with the message already merged (an argument that
    changes later must not change the line), leaving the formatting, the size check and the
    write to that thread: on the order path a log line cost as much as the risk gate."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg = record.getMessage()
        record.args = None
        return record


_listener: QueueListener | None = None
_lock = threading.Lock()


def drain_logs() -> None:
    """Block until every record logged so far is written (before a summary, at close, at exit)."""
    with _lock:
        if _listener is not None and _listener._thread is not None:
            _listener.stop()  # writes what is queued, then the thread ends
            _listener.start()


def _stop_listener() -> None:
    global _listener
    with _lock:
        if _listener is not None:
            if _listener._thread is not None:
                _listener.stop()
            for h in _listener.handlers:
                h.close()
            _listener = None


atexit.register(_stop_listener)


def setup_logging(path: Path, cfg: LoggingConfig, *, stdout: bool = False, clock: Clock | None = None) -> None:
    global _listener
    # The logging HOWTO's optimisations: no caller lookup, thread or process names; the format
    # uses none of them, and the fill path logs a line per fill.
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
    _stop_listener()
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = RotatingFileHandler(path, maxBytes=cfg.max_bytes, backupCount=cfg.backups, encoding="utf-8")
    fh.setFormatter(ClockFormatter(FORMAT))
    handlers: list[logging.Handler] = [fh]
    if stdout:
        sh = logging.StreamHandler(sys.stdout)
        sh.setFormatter(logging.Formatter("%(levelname)-7s %(message)s"))
        handlers.append(sh)
    q: queue.SimpleQueue = queue.SimpleQueue()
    qh = _MessageNow(q)
    qh.addFilter(ClockStamp(clock))  # stamped when logged, on the engine's clock
    setattr(qh, _MARK, True)
    root.addHandler(qh)
    with _lock:
        _listener = QueueListener(q, *handlers)
        _listener.start()
