"""Read a profile's journal for analytics: plain sqlite3, read-only, synchronous.

Analytics run off the event loop (the CLI calls them directly; the console can call them in a
worker thread), so this module uses the standard library's sqlite3, not aiosqlite. It never
writes: the connection is opened with `mode=ro`. The only rows analytics add (attestations and
drills) go through `append_row`, which uses the engine's own `Journal` so the schema and the
encoding stay the engine's.
"""
from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson

from ..journal import WALL_CLOCK_KINDS

# Everything analytics reads; decisions are left out on purpose: they carry every check's numbers
# and are by far the largest rows, and the order rows already say what each decision led to.
# Operator rows are few; a `submit_manual` one marks a trade the operator opened by hand. A
# `recovery` row (one per restart) says the session carried the account over (metrics.equity_curve).
KINDS = ("session", "session_end", "fill", "equity", "signal", "order", "alert", "halt", "rearm",
         "breaker", "close_all", "attestation", "drill", "unknown_order", "unknown_fill", "duplicate_fill",
         "operator", "note", "recovery")


class JournalReadError(Exception):
    """A journal that cannot be read (missing, not SQLite, not a tradeconsole journal)."""


@dataclass(slots=True)
class Row:
    seq: int
    ts: datetime
    kind: str
    ref: str | None
    data: dict[str, Any]
    timeline: int = 0  # bumps when a session starts earlier in time than rows before it


@dataclass
class JournalData:
    path: str
    rows: list[Row]
    by_kind: dict[str, list[Row]] = field(default_factory=dict)
    # A cut (`sessions_of`) that begins with an account carried over from rows left out: what it
    # held at its first equity row, the base its returns and drawdown are measured from.
    carried_capital: Decimal | None = None

    def __post_init__(self) -> None:
        for r in self.rows:
            self.by_kind.setdefault(r.kind, []).append(r)

    def kind(self, *kinds: str) -> list[Row]:
        if len(kinds) == 1:
            return self.by_kind.get(kinds[0], [])
        return [r for r in self.rows if r.kind in kinds]

    def last_market_row(self) -> Row | None:
        """The last row on the engine's clock (not an attestation or a drill)."""
        return next((r for r in reversed(self.rows) if r.kind not in WALL_CLOCK_KINDS), None)

    def starting_capital(self, default: Decimal) -> Decimal:
        """What the record began with: a cut's carried capital; else the first session's paper
        starting cash (what the account began with); else `default`."""
        if self.carried_capital is not None:
            return self.carried_capital
        for r in self.kind("session"):
            cash = ((r.data.get("config") or {}).get("paper") or {}).get("starting_cash")
            if cash is not None:
                return Decimal(str(cash))
        return default


def load(path: str | Path, kinds: Iterable[str] = KINDS) -> JournalData:
    """Every row of the given kinds, oldest first, with timelines assigned."""
    p = Path(path)
    if not p.exists():
        raise JournalReadError(f"{p}: no journal (run the engine with this profile first)")
    db = _read_only(p)
    kinds = list(kinds)
    try:
        cur = db.execute(
            f"SELECT seq, ts, kind, ref, data FROM events WHERE kind IN ({','.join('?' * len(kinds))})"
            " ORDER BY seq", kinds)
        fetched = cur.fetchall()
    except sqlite3.DatabaseError as exc:
        raise JournalReadError(f"{p}: not a tradeconsole journal ({exc})") from None
    finally:
        db.close()
    rows: list[Row] = []
    for seq, ts, kind, ref, data in fetched:
        try:
            when, data = datetime.fromisoformat(ts), orjson.loads(data)
        except (TypeError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise JournalReadError(f"{p}: row {seq} ({kind}) cannot be read: {exc}") from None
        rows.append(Row(seq, when, kind, ref, data))
    return JournalData(str(p), _with_timelines(rows))


def _with_timelines(rows: list[Row]) -> list[Row]:
    """`rows` (oldest first) with their timelines assigned, as new Row objects.

    A simulated market restarts its clock at every session, so time can run backwards at a
    session row; later periods and durations must not mix the two stretches of time. Assigned
    over exactly the rows given: a cut of a journal (`sessions_of`) must not keep a split that
    only a session left out of it caused, nor miss one."""
    out: list[Row] = []
    timeline = 0
    latest: datetime | None = None
    for r in rows:
        if r.kind == "session" and latest is not None and r.ts < latest:
            timeline += 1
            latest = None
        out.append(Row(r.seq, r.ts, r.kind, r.ref, r.data, timeline))
        if r.kind not in WALL_CLOCK_KINDS and (latest is None or r.ts > latest):
            latest = r.ts
    return out


# A session's own header rows: the `session` row and the `recovery` row its start journals. They
# carry the capital and say whether the account was carried over (metrics.equity_curve), so a cut
# by time keeps them with the rest of their session.
SESSION_HEADERS = ("session", "recovery")


def sessions_of(data: JournalData, keep: Callable[[dict[str, Any]], bool], *, after_seq: int = 0,
                since: datetime | None = None) -> JournalData:
    """The part of `data` made by the sessions `keep` accepts (it is given each `session` row's
    data), counting only sessions started after row `after_seq`; with `since`, only the rows of
    those sessions journaled at or after it (their header rows stay).

    A session's rows are its `session` row and every row after it up to the next `session` row;
    rows before the first session belong to none and are left out. Wall-clock rows (attestations,
    drills) are the operator's acts between sessions, not a session's: they are kept as they are."""
    kept: list[Row] = []
    inside = False
    for r in data.rows:
        if r.kind in WALL_CLOCK_KINDS:
            kept.append(r)
            continue
        if r.kind == "session":
            inside = r.seq > after_seq and keep(r.data)
        if not inside:
            continue
        if since is not None and r.ts < since and r.kind not in SESSION_HEADERS:
            continue
        kept.append(r)
    return JournalData(data.path, _with_timelines(kept), carried_capital=_carried_capital(kept, since))


def _carried_capital(rows: list[Row], since: datetime | None) -> Decimal | None:
    """A cut's base when it begins mid-account: a `since` cut (mid-session), or a first session
    that carried the account over (its `recovery` row) from sessions left out. Its first equity
    row says what the account held then; measured from the configured starting cash instead, a
    record at small was credited with what micro had made before it."""
    first = next((i for i, r in enumerate(rows) if r.kind == "session"), None)
    if first is None:
        return None
    nxt = next((i for i, r in enumerate(rows[first + 1:], first + 1) if r.kind == "session"), len(rows))
    carried = since is not None or any(r.kind == "recovery" for r in rows[first:nxt])
    equity = next((r for r in rows if r.kind == "equity"), None)
    return dec(equity.data.get("equity")) if carried and equity is not None else None


def made_rows(data: JournalData) -> list[Row]:
    """The rows a session made by trading: neither a session header nor a wall-clock row."""
    return [r for r in data.rows if r.kind not in WALL_CLOCK_KINDS and r.kind not in SESSION_HEADERS]


def _read_only(p: Path) -> sqlite3.Connection:
    try:
        # mode=ro: analytics must never change the journal. The WAL files of a running engine are
        # read as they are, so a report during a session sees everything committed so far.
        return sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise JournalReadError(f"{p}: cannot open: {exc}") from None


def read_meta(path: str | Path, key: str) -> str | None:
    """A value of an existing journal's `meta` table (Journal.set_meta), read-only; None when the
    file is an SQLite database without it. JournalReadError when the file is no SQLite database
    or cannot be read."""
    p = Path(path)
    db = _read_only(p)
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
            return None
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.DatabaseError as exc:
        raise JournalReadError(f"{p}: not a tradeconsole journal ({exc})") from None
    finally:
        db.close()
    return None if row is None else str(row[0])


def dec(value: Any) -> Decimal:
    """A journal money field (stored as its exact string) as Decimal; None and '' as 0."""
    if value is None or value == "":
        return Decimal(0)
    return Decimal(str(value))


def append_row(path: str | Path, kind: str, ts: datetime, ref: str | None, data: dict[str, Any]) -> None:
    """Journal one row through the engine's Journal (its schema, its encoding), synchronously.

    SQLite serialises writers, so this is safe beside a running engine on the same file."""
    from engine.journal import Journal

    async def go() -> None:
        j = await Journal.open(path)
        try:
            await j.write(kind, ts, ref, data)
        finally:
            await j.close()

    asyncio.run(go())
