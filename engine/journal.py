"""The journal: every event, decision, order, fill, alert and halt, in SQLite through aiosqlite.

One file per profile, WAL mode, schema versioned. It is the source of truth for reports and
recovery, so callers `await flush()` before they treat a state change as done (the outbox rule:
an order's intent is committed before it is sent). Appends are buffered and committed in groups:
at tick rate a commit per row would cost more than the whole trading path.

Reads and WAL checkpoints go through aiosqlite threads: they can be large or slow. The commit
runs on the loop's own thread (`_writer`), because orders wait for it and a group of rows is
small: handing it to a thread cost two thread wake-ups, ~0.25 ms each on a 2-core VM, which was
more than SQLite's own work and cut filled orders per second by a quarter.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable

import aiosqlite
import orjson

SCHEMA_VERSION = 1
# Bytes of row data committed between two WAL checkpoints (SQLite's own default is ~4 MB).
CHECKPOINT_BYTES = 4_000_000
# Rows per INSERT statement (4 parameters each, far under SQLite's 32,766 limit). A statement
# per flush size is prepared once and kept: sizes repeat, batch after batch.
INSERT_ROWS = 1_000
CACHED_STATEMENTS = 512
# How long a commit waits for another process's write lock. Nothing else writes this file while an
# engine runs (one engine per journal), so this only bounds a stray writer; it blocks the loop.
WRITE_LOCK_TIMEOUT_SECONDS = 2.0

log = logging.getLogger("tradeconsole.journal")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    ts   TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref  TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, seq);
-- No index on ref: nothing looks rows up by it on a hot path, and client ids arrive in no sort
-- order, so keeping that index doubled the cost of every insert (the commit sits on the order path).
DROP INDEX IF EXISTS events_ref;
"""


class JournalError(Exception):
    pass


def _default(value: Any) -> Any:
    # Money is stored as its exact decimal string, never as a float.
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "value"):  # enums orjson does not know
        return value.value
    raise TypeError(f"cannot journal {type(value).__name__}")


def _dumps(data: Any) -> str:
    # orjson: the journal encodes every decision with all its checks, and the standard library
    # encoder was the single largest cost on the order path (5x slower here). Decimal's own C
    # __str__ is the default on the fast path (a Python callback per number cost as much as the
    # rest of the encoding); anything else it refuses goes the slow way, through `_default`.
    # Keys other than str (an enum, a number) need OPT_NON_STR_KEYS, which makes every dump
    # ~40 % slower: only the rare payload that has one pays for it.
    try:
        return orjson.dumps(data, default=_decimal_str).decode()
    except orjson.JSONEncodeError:
        pass
    try:
        return orjson.dumps(data, default=_default).decode()
    except orjson.JSONEncodeError as exc:
        if "Dict key must be" not in str(exc):  # not a key problem: a value that cannot be journaled
            raise
        return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


_decimal_str = Decimal.__str__


@functools.lru_cache(maxsize=CACHED_STATEMENTS)
def _insert_sql(n: int) -> str:
    return "INSERT INTO events(ts, kind, ref, data) VALUES " + ",".join(["(?, ?, ?, ?)"] * n)


def _open_writer(path: Path) -> sqlite3.Connection:
    # Autocommit: a flush is one multi-row INSERT, which SQLite commits on its own.
    db = sqlite3.connect(path, isolation_level=None, timeout=WRITE_LOCK_TIMEOUT_SECONDS,
                         cached_statements=CACHED_STATEMENTS)
    try:
        # NORMAL in WAL mode survives a process kill (only an OS crash can lose the tail).
        db.execute("PRAGMA synchronous=NORMAL")
        # No checkpoint inside a commit: copying the WAL back and its two fsyncs made every few
        # hundredth outbox commit, and so the orders waiting on it, several times slower. The
        # checkpointer connection does it in the background (`_start_checkpoint`).
        db.execute("PRAGMA wal_autocheckpoint=0")
    except BaseException:
        db.close()
        raise
    return db


@dataclass(frozen=True, slots=True)
class JournalRow:
    seq: int
    ts: str
    kind: str
    ref: str | None
    data: dict[str, Any]


class Journal:
    def __init__(self, db: aiosqlite.Connection, path: Path, checkpointer: aiosqlite.Connection | None = None,
                 writer: sqlite3.Connection | None = None) -> None:
        self._db = db
        self.path = path
        # The commit's connection, on the loop's thread (see the module's note); reads use `_db`.
        self._writer = writer
        # WAL checkpoints run on a connection of their own, off the order path (see `open`).
        self._checkpointer = checkpointer
        self._checkpoint_task: asyncio.Task | None = None
        self._since_checkpoint = 0
        self._buffer: list[tuple[str, str, str | None, str]] = []
        self._closed = False
        self.rows_written = 0
        self._last_ts: datetime | None = None
        self._last_iso = ""
        # Run before every commit. The engine sets the paper venue's persist here: rows about
        # fills are committed only once the venue's own books hold them (a venue is always ahead
        # of what we record), whichever path commits.
        self.before_commit: Callable[[], None] | None = None

    @classmethod
    async def open(cls, path: str | Path) -> "Journal":
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        # The reading connection; it also lays down the schema. Commits go through `_writer`.
        db = await aiosqlite.connect(p, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            # Never checkpoint from here either: the checkpointer connection does it, PASSIVE,
            # which never blocks the writer.
            await db.execute("PRAGMA wal_autocheckpoint=0")
            await db.executescript(_SCHEMA)
            async with db.execute("SELECT value FROM meta WHERE key='schema_version'") as cur:
                row = await cur.fetchone()
            if row is None:
                await db.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise JournalError(
                    f"{p}: journal schema {row[0]} is newer than this tradeconsole ({SCHEMA_VERSION})"
                )
            await db.commit()
            writer = _open_writer(p)
        except BaseException:
            await db.close()
            raise
        try:
            checkpointer = await aiosqlite.connect(p)
        except BaseException:
            writer.close()
            await db.close()
            raise
        return cls(db, p, checkpointer, writer)

    @property
    def pending(self) -> int:
        """Rows appended but not yet committed."""
        return len(self._buffer)

    def append(self, kind: str, ts: datetime, ref: str | None, data: dict[str, Any]) -> None:
        if self._closed:
            raise JournalError("journal is closed")
        if ts is not self._last_ts:  # a batch's rows share one clock reading: format it once
            self._last_ts, self._last_iso = ts, ts.isoformat()
        self._buffer.append((self._last_iso, kind, ref, _dumps(data)))

    async def write(self, kind: str, ts: datetime, ref: str | None, data: dict[str, Any]) -> None:
        self.append(kind, ts, ref, data)
        await self.flush()

    async def flush(self) -> None:
        """Commit everything appended so far, in one transaction.

        It never awaits, so no other task runs in the middle of it (no lock needed), and if the
        commit fails the rows stay buffered, in order, for the next try."""
        if not self._buffer:
            return
        if self.before_commit is not None:
            self.before_commit()
        rows, self._buffer = self._buffer, []
        try:
            self._commit(rows)
        except BaseException:
            self._buffer[:0] = rows  # back in front, in order
            raise
        self.rows_written += len(rows)
        self._since_checkpoint += sum(len(r[3]) for r in rows)
        if self._since_checkpoint >= CHECKPOINT_BYTES:
            self._start_checkpoint()

    def _commit(self, rows: list[tuple[str, str, str | None, str]]) -> None:
        db = self._writer
        if len(rows) <= INSERT_ROWS:
            # One statement for many rows, committed on its own: executemany paid a trip through
            # the GIL per row, and orders wait on this commit.
            db.execute(_insert_sql(len(rows)), [v for r in rows for v in r])
            return
        db.execute("BEGIN IMMEDIATE")  # a big flush commits whole or not at all
        try:
            for i in range(0, len(rows), INSERT_ROWS):
                chunk = rows[i:i + INSERT_ROWS]
                db.execute(_insert_sql(len(chunk)), [v for r in chunk for v in r])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _start_checkpoint(self) -> None:
        if self._checkpointer is None or (self._checkpoint_task is not None and not self._checkpoint_task.done()):
            return
        self._since_checkpoint = 0
        self._checkpoint_task = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        try:
            await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # the data is safe in the WAL; the next one tries again
            log.warning("journal checkpoint failed: %s", exc)

    async def rows(
        self, kinds: Iterable[str] | None = None, ref: str | None = None, after_seq: int = 0
    ) -> list[JournalRow]:
        await self.flush()
        sql = "SELECT seq, ts, kind, ref, data FROM events WHERE seq > ?"
        args: list[Any] = [after_seq]
        if kinds is not None:
            kinds = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        if ref is not None:
            sql += " AND ref = ?"
            args.append(ref)
        sql += " ORDER BY seq"
        async with self._db.execute(sql, args) as cur:
            fetched = await cur.fetchall()
        return [JournalRow(r[0], r[1], r[2], r[3], orjson.loads(r[4])) for r in fetched]

    async def count(self, kind: str | None = None) -> int:
        await self.flush()
        if kind is None:
            sql, args = "SELECT COUNT(*) FROM events", ()
        else:
            sql, args = "SELECT COUNT(*) FROM events WHERE kind = ?", (kind,)
        async with self._db.execute(sql, args) as cur:
            row = await cur.fetchone()
        return int(row[0])

    async def last(self, kinds: Iterable[str]) -> JournalRow | None:
        await self.flush()
        kinds = list(kinds)
        sql = (
            f"SELECT seq, ts, kind, ref, data FROM events WHERE kind IN ({','.join('?' * len(kinds))})"
            " ORDER BY seq DESC LIMIT 1"
        )
        async with self._db.execute(sql, kinds) as cur:
            r = await cur.fetchone()
        return None if r is None else JournalRow(r[0], r[1], r[2], r[3], orjson.loads(r[4]))

    async def last_ts(self) -> datetime | None:
        """Time of the newest row (the journal's clock, whatever clock wrote it)."""
        await self.flush()
        async with self._db.execute("SELECT ts FROM events ORDER BY seq DESC LIMIT 1") as cur:
            r = await cur.fetchone()
        return None if r is None else datetime.fromisoformat(r[0])

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self.flush()
        finally:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if self._checkpoint_task is not None:
                await asyncio.gather(self._checkpoint_task, return_exceptions=True)
            if self._checkpointer is not None:
                await self._checkpointer.close()
            await self._db.close()  # the last connection out checkpoints the rest
