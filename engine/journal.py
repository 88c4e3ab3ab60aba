"""The journal: every event, decision, order, fill, alert and halt, in SQLite through aiosqlite.

One file per profile, WAL mode, schema versioned. It is the source of truth for reports and
recovery, so callers `await flush()` before they treat a state change as done (the outbox rule:
an order's intent is committed before it is sent). Appends are buffered and committed in groups:
at tick rate a commit per row would cost more than the whole trading path.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

import aiosqlite
import orjson

from .journal_errors import JournalError, open_error, why_unusable, write_error  # noqa: F401 (imported from here too)

SCHEMA_VERSION = 1
# Bytes of row data committed between two WAL checkpoints (SQLite's own default is ~4 MB).
CHECKPOINT_BYTES = 4_000_000
# Rows per INSERT statement (4 parameters each, far under SQLite's 32,766 limit). A statement
# per flush size is prepared once and kept: sizes repeat, batch after batch.
INSERT_ROWS = 1_000
CACHED_STATEMENTS = 512
# How long a commit waits for another process's write lock (SQLite's busy timeout). Nothing else
# writes this file while an engine runs (one engine per journal); orders wait, the loop does not.
WRITE_LOCK_TIMEOUT_SECONDS = 5.0

log = logging.getLogger("tradeconsole.journal")
# Rows the operator adds from the command line (`attest`, `drill`, `promote`) carry wall-clock
# time, which a simulated session's clock has nothing to do with: they never move the journal's
# own sense of time (`last_ts`, and analytics' reading of it).
WALL_CLOCK_KINDS = frozenset({"attestation", "drill", "stage"})

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


async def _connect(path: Path, **kwargs: Any) -> aiosqlite.Connection:
    conn = aiosqlite.connect(path, **kwargs)
    try:
        return await conn
    except BaseException:
        # aiosqlite stops the thread of a connection that failed to open but does not wait for
        # it; ended later, it reports to a loop asyncio.run has closed (a traceback at exit).
        thread = getattr(conn, "_thread", None)
        if thread is not None and thread.is_alive():
            await asyncio.to_thread(thread.join, 5.0)
        raise


@dataclass(frozen=True, slots=True)
class JournalRow:
    seq: int
    ts: str
    kind: str
    ref: str | None
    data: dict[str, Any]


class Journal:
    def __init__(self, db: aiosqlite.Connection, path: Path, checkpointer: aiosqlite.Connection | None = None) -> None:
        self._db = db
        self.path = path
        # WAL checkpoints run on a connection of their own, off the order path (see `open`).
        self._checkpointer = checkpointer
        self._checkpoint_task: asyncio.Task | None = None
        self._since_checkpoint = 0
        self._buffer: list[tuple[str, str, str | None, str]] = []
        self._flush_lock = asyncio.Lock()
        # A statement whose flush was cancelled still runs to its end on the connection's thread:
        # kept here with its rows until its outcome is known (`_settle`), so a failure there is
        # retried instead of counted as committed.
        self._in_flight: tuple[asyncio.Future, list[tuple[str, str, str | None, str]]] | None = None
        self._closed = False
        self.rows_written = 0
        self._last_ts: datetime | None = None
        self._last_iso = ""
        # Awaited before every commit. The engine sets the paper venue's persist here: rows about
        # fills are committed only once the venue's own books hold them (a venue is always ahead
        # of what we record), whichever path commits.
        self.before_commit: Callable[[], Awaitable[None]] | None = None

    @classmethod
    async def open(cls, path: str | Path) -> "Journal":
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"{p}: cannot create its folder ({why_unusable(p, exc)})") from None
        try:
            # Autocommit: a flush is one multi-row INSERT, which SQLite commits on its own (one
            # round trip to the connection's thread instead of an insert and a commit).
            db = await _connect(p, isolation_level=None, cached_statements=CACHED_STATEMENTS,
                                timeout=WRITE_LOCK_TIMEOUT_SECONDS)
        except (sqlite3.Error, OSError) as exc:
            raise open_error(p, exc) from None
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process kill (only an OS crash can lose the tail).
            await db.execute("PRAGMA synchronous=NORMAL")
            # No checkpoint inside a commit: copying the WAL back and its two fsyncs made every
            # few hundredth outbox commit, and so the orders waiting on it, several times slower.
            # A second connection checkpoints in the background instead (`_start_checkpoint`);
            # PASSIVE never blocks the writer.
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
            checkpointer = await _connect(p)
        except BaseException as exc:
            # An open connection's thread is not a daemon: left running, it keeps the process
            # from exiting. The close must not hide why the open failed.
            with contextlib.suppress(Exception):
                await db.close()
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise open_error(p, exc) from None
            raise
        return cls(db, p, checkpointer)

    async def set_meta(self, key: str, value: str) -> None:
        """Say what this journal is, in its `meta` table (beside schema_version), committed now:
        e.g. that a backtest made it (engine/analytics/backtest.py)."""
        try:
            await self._db.execute("INSERT INTO meta(key, value) VALUES (?, ?)"
                                   " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
        except sqlite3.Error as exc:
            raise write_error(self.path, exc) from exc

    @property
    def pending(self) -> int:
        """Rows appended but not yet committed (plus a flush in progress, or a cancelled one's
        statement whose outcome is not known yet)."""
        return len(self._buffer) + (1 if self._flush_lock.locked() or self._in_flight is not None else 0)

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
        """Commit everything appended so far; concurrent callers share commits.

        A failed commit puts its rows back in front of the buffer, in order, for the next try."""
        if not self._buffer and self._in_flight is None:
            if self._flush_lock.locked():
                async with self._flush_lock:
                    pass
            return
        async with self._flush_lock:
            await self._settle()
            while self._buffer:
                if self.before_commit is not None:
                    await self.before_commit()
                rows, self._buffer = self._buffer, []
                await self._commit(rows)
            if self._since_checkpoint >= CHECKPOINT_BYTES:
                self._start_checkpoint()

    async def _commit(self, rows: list[tuple[str, str, str | None, str]]) -> None:
        # On aiosqlite's thread, although its two thread wake-ups cost more than SQLite's work
        # (~0.25 ms each on a 2-core VM; committed on the loop's own thread, orders filled a
        # quarter faster): the loop must never wait on the disk, and a halt must be able to land
        # while an outbox commit is in flight, before its orders are sent.
        done = 0
        try:
            while done < len(rows):
                # One statement for many rows, committed on its own (autocommit): executemany
                # paid a trip through the GIL per row. A flush past INSERT_ROWS commits in parts,
                # in order; its orders go only after the last.
                chunk = rows[done:done + INSERT_ROWS]
                statement = asyncio.ensure_future(self._db.execute(_insert_sql(len(chunk)), [v for r in chunk for v in r]))
                try:
                    await asyncio.shield(statement)
                except asyncio.CancelledError:
                    # Shielded, the statement goes on whatever cancelled us. Not put back (it
                    # could then commit twice): the next flush learns how it ended (`_settle`).
                    self._in_flight = (statement, chunk)
                    done += len(chunk)
                    raise
                except sqlite3.Error as exc:  # not committed: put back below, said with the file's name
                    raise write_error(self.path, exc) from exc
                self._committed(chunk)
                done += len(chunk)
        except BaseException:
            self._buffer[:0] = rows[done:]  # rows appended meanwhile stay after them
            raise

    async def _settle(self) -> None:
        """Learn how a cancelled flush's statement ended; a failed one's rows go back in front."""
        if self._in_flight is None:
            return
        statement, chunk = self._in_flight
        try:
            await asyncio.wait([statement])
        finally:
            if statement.done():
                self._in_flight = None
                if statement.cancelled() or statement.exception() is not None:
                    log.warning("journal: a commit cut short failed (%s); its %d rows are committed again",
                                "cancelled" if statement.cancelled() else statement.exception(), len(chunk))
                    self._buffer[:0] = chunk
                else:
                    self._committed(chunk)

    def _committed(self, chunk: list[tuple[str, str, str | None, str]]) -> None:
        self.rows_written += len(chunk)
        self._since_checkpoint += sum(len(r[3]) for r in chunk)

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
        self, kinds: Iterable[str] | None = None, ref: str | None = None, after_seq: int = 0,
        before_seq: int | None = None, where: tuple[str, Any] | None = None,
    ) -> list[JournalRow]:
        """Rows oldest first; `where` = (field, value) keeps the rows whose data has that value,
        tested in SQLite so the rest are never decoded (a week's heartbeat rows, for one)."""
        await self.flush()
        sql = "SELECT seq, ts, kind, ref, data FROM events WHERE seq > ?"
        args: list[Any] = [after_seq]
        if before_seq is not None:
            sql += " AND seq < ?"
            args.append(before_seq)
        if kinds is not None:
            kinds = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        if ref is not None:
            sql += " AND ref = ?"
            args.append(ref)
        if where is not None:
            sql += " AND json_extract(data, ?) = ?"
            args.extend((f"$.{where[0]}", where[1]))
        sql += " ORDER BY seq"
        async with self._db.execute(sql, args) as cur:
            fetched = await cur.fetchall()
        return [JournalRow(r[0], r[1], r[2], r[3], orjson.loads(r[4])) for r in fetched]

    async def rows_since(self, kinds: Iterable[str], since: datetime) -> list[JournalRow]:
        """Rows of `kinds` stamped at `since` or later, oldest first, without reading the months
        before: the last checkpoint row (one a minute) older than `since` bounds the scan by seq,
        on the (kind, seq) index. Stamps compare as text: the clock's are all UTC (clock.py)."""
        await self.flush()
        kinds = list(kinds)
        stamp = since.astimezone(timezone.utc).isoformat()
        sql = (f"SELECT seq, ts, kind, ref, data FROM events WHERE kind IN ({','.join('?' * len(kinds))})"
               " AND seq > COALESCE((SELECT seq FROM events WHERE kind = 'checkpoint' AND ts < ?"
               " ORDER BY seq DESC LIMIT 1), 0) AND ts >= ? ORDER BY seq")
        async with self._db.execute(sql, [*kinds, stamp, stamp]) as cur:
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
        """Time of the newest row the journal's own clock wrote: a simulated profile's next start
        continues from it. Rows the operator adds from the command line carry the wall's time
        (WALL_CLOCK_KINDS) and are passed over: one `attest` made a simulated session's clock
        jump to today, and its readiness counted months of "time trading" after 4 hours."""
        await self.flush()
        sql = (f"SELECT ts FROM events WHERE kind NOT IN ({','.join('?' * len(WALL_CLOCK_KINDS))})"
               " ORDER BY seq DESC LIMIT 1")
        async with self._db.execute(sql, sorted(WALL_CLOCK_KINDS)) as cur:
            r = await cur.fetchone()
        return None if r is None else datetime.fromisoformat(r[0])

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self.flush()
        finally:
            self._closed = True
            if self._checkpoint_task is not None:
                await asyncio.gather(self._checkpoint_task, return_exceptions=True)
            if self._checkpointer is not None:
                await self._checkpointer.close()
            await self._db.close()  # the last connection out checkpoints the rest
