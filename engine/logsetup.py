"""Logging: a rotating file the console's log pane follows, and stdout for headless runs.

Written in the caller's thread. A listener thread was tried for the fill path's log lines: it
saved nothing measurable there, and contending for the GIL with the engine cost the alert
isolation benchmark several per cent. What did pay: no caller lookup, thread or process names
per record (the format uses none of them).
"""
from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone
from logging.handlers import RotatingFileHandler
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
        now = self.clock.now() if self.clock is not None else datetime.now(timezone.utc)
        record.clock = now.strftime("%Y-%m-%d %H:%M:%S")
        return True


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = RotatingFileHandler(path, maxBytes=cfg.max_bytes, backupCount=cfg.backups, encoding="utf-8")
    fh.setFormatter(logging.Formatter(FORMAT))
    fh.addFilter(ClockStamp(clock))
    setattr(fh, _MARK, True)
    root.addHandler(fh)
    if stdout:
        sh = logging.StreamHandler(sys.stdout)
        sh.setFormatter(logging.Formatter("%(levelname)-7s %(message)s"))
        setattr(sh, _MARK, True)
        root.addHandler(sh)
