"""What the journal's failures are reported with: one line naming the file and, where SQLite's
or the OS's words are unclear, why the path cannot hold a journal.

Kept apart from engine/journal.py so commands that only report a journal's state (the control
CLI, the paper venue's store) do not need the writer.
"""
from __future__ import annotations

import functools
import os
import sqlite3
from pathlib import Path


class JournalError(Exception):
    pass


def write_error(path: Path, exc: sqlite3.Error) -> JournalError:
    """The one line a write the journal could not make is reported with (read-only file, disk
    full, another writer's lock): the file named. It is still the sqlite3 error it was, for the
    callers that catch that."""
    return _write_error_type(type(exc))(f"{path}: cannot write the journal: {exc}")


@functools.cache
def _write_error_type(kind: type[sqlite3.Error]) -> type[JournalError]:
    return type(f"Journal{kind.__name__}", (JournalError, kind), {"__module__": __name__})


def open_error(path: Path, exc: BaseException) -> JournalError:
    """The one line a journal that cannot be opened or set up is reported with."""
    if isinstance(exc, OSError) or getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_CANTOPEN:
        return JournalError(f"{path}: cannot open the journal ({why_unusable(path, exc)})")
    return JournalError(f"{path}: {exc}")  # not a database, locked, read-only: SQLite's words say it


def why_unusable(path: Path, exc: BaseException, what: str = "the journal") -> str:
    """Why `path` cannot hold `what` (an SQLite file), in the operator's terms where the cause is
    plain: SQLite says only "unable to open database file" and the OS only "Not a directory"."""
    if os.path.isdir(path):
        return f"it is a directory; {what} is a file"
    if _climbs_above_root(path):
        return "a '..' in it climbs above '/', which SQLite refuses; write the path without it"
    for folder in path.parents:
        if os.path.lexists(folder):
            if not os.path.isdir(folder):
                return f"{folder} is a file, not a folder"
            break
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _climbs_above_root(path: Path) -> bool:
    # The OS takes "/.." as "/"; SQLite resolves ".." itself and fails on it ("~/../../x" with
    # a home one level deep).
    depth = 0
    for part in path.absolute().parts[1:]:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return False
