"""Logging: a rotating file the console's log pane follows, and stdout for headless runs."""
from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

from .profile import LoggingConfig

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_MARK = "_tradeconsole_handler"


def setup_logging(path: Path, cfg: LoggingConfig, *, stdout: bool = False) -> None:
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
    setattr(fh, _MARK, True)
    root.addHandler(fh)
    if stdout:
        sh = logging.StreamHandler(sys.stdout)
        sh.setFormatter(logging.Formatter("%(levelname)-7s %(message)s"))
        setattr(sh, _MARK, True)
        root.addHandler(sh)
