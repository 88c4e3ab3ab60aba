"""The paper venue's own durable account: cash, positions, orders, in a SQLite file of its own.

A real venue keeps its books whatever happens to our process; so does the paper broker, so that
a restart after `kill -9` meets an independent account to reconcile the journal against. Writes
are batched per engine batch (`PaperBroker.persist()`), and always happen before the journal
commits what it learned (the journal awaits persist before each commit), as a real venue is
always ahead of what we have recorded.

The rows are encoded on the loop (the venue's objects change there) and written on a thread of
the store's own: on the loop, a write and the WAL checkpoints SQLite runs inside some commits
held the loop for 0.5 ms typically and up to 15 ms (bench/fills.py), and with it the screen and F12.
"""
from __future__ import annotations

import asyncio
import functools
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path

from ..journal_errors import why_unusable
from ..models import Order, OrderPurpose, OrderStatus, OrderType, Side

_SCHEMA = """
CREATE TABLE IF NOT EXISTS account (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (symbol TEXT PRIMARY KEY, quantity TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY, symbol TEXT, side TEXT, type TEXT, purpose TEXT,
    quantity TEXT, limit_price TEXT, stop_price TEXT, status TEXT, filled_qty TEXT,
    avg_fill_price TEXT, fees TEXT, venue_order_id TEXT
);
"""

_D = lambda v: None if v is None else Decimal(v)  # noqa: E731
_ORDERS_PER_STATEMENT = 500  # x 13 parameters, under SQLite's 32,766
# How long a write waits for another process's lock on the venue's file before it fails; a failed
# write is kept and tried again with the next (PaperBroker.persist).
WRITE_LOCK_TIMEOUT_SECONDS = 5.0


@functools.lru_cache(maxsize=256)
def _upsert(table: str, width: int, rows: int) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return f"INSERT OR REPLACE INTO {table} VALUES " + ",".join([one] * rows)


class PaperStoreError(Exception):
    """The venue's file refused a write (locked past the timeout, disk full, ...)."""


class PaperStore:
    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit off; one transaction per persist(). WAL + NORMAL survives a process kill.
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=256,
                                      timeout=WRITE_LOCK_TIMEOUT_SECONDS)
        except (OSError, sqlite3.Error) as exc:
            reason = why_unusable(path, exc, "the venue's file")
            raise PaperStoreError(f"{path}: cannot open the paper venue's file ({reason})") from None
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.Error as exc:  # not a database, locked, unreadable: say which file
            self.db.close()
            raise PaperStoreError(f"{path}: {exc}") from None
        self.path = path
        # One thread, so writes land in the order they were asked for.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paper-venue-store")

    def load(self) -> tuple[Decimal | None, dict[str, Decimal], dict[str, Order], int]:
        acct = dict(self.db.execute("SELECT key, value FROM account"))
        cash = Decimal(acct["cash"]) if "cash" in acct else None
        fill_seq = int(acct.get("fill_seq", "0"))
        positions = {s: Decimal(q) for s, q in self.db.execute("SELECT symbol, quantity FROM positions")}
        orders = {}
        for r in self.db.execute("SELECT * FROM orders"):
            (cid, symbol, side, typ, purpose, qty, limit, stop, status, filled, avg, fees, vid) = r
            o = Order(cid, symbol, Side(side), OrderType(typ), Decimal(qty), OrderPurpose(purpose),
                      created_at=None, limit_price=_D(limit), stop_price=_D(stop),  # type: ignore[arg-type]
                      status=OrderStatus(status), filled_qty=Decimal(filled), avg_fill_price=Decimal(avg),
                      fees=Decimal(fees), venue_order_id=vid)
            orders[cid] = o
        return cash, positions, orders, fill_seq

    def save_soon(self, cash: Decimal, fill_seq: int, positions: dict[str, Decimal],
                  orders: list[Order]) -> asyncio.Future:
        """Start writing the account, and the positions and orders given (those that changed).

        The write is queued on the store's thread at once; the future is done when it is in the file."""
        # Encoded here, on the loop: the thread must never read objects the loop mutates.
        account = (str(cash), str(fill_seq))
        position_rows = [v for s, q in positions.items() for v in (s, str(q))]
        order_rows = [(
            o.client_order_id, o.symbol, o.side.value, o.type.value, o.purpose.value, str(o.quantity),
            None if o.limit_price is None else str(o.limit_price),
            None if o.stop_price is None else str(o.stop_price), o.status.value, str(o.filled_qty),
            str(o.avg_fill_price), str(o.fees), o.venue_order_id) for o in orders]
        return asyncio.get_running_loop().run_in_executor(self._writer, self._write, account, position_rows, order_rows)

    def _write(self, account: tuple[str, str], position_rows: list[str], order_rows: list[tuple]) -> None:
        db = self.db
        # One statement per table for all its rows: a statement per row cost several times the
        # writing itself. One transaction, so a kill leaves the books before or after, never half.
        db.execute("BEGIN")
        try:
            db.execute("INSERT OR REPLACE INTO account(key, value) VALUES ('cash', ?), ('fill_seq', ?)", account)
            if position_rows:
                db.execute(_upsert("positions", 2, len(position_rows) // 2), position_rows)
            for i in range(0, len(order_rows), _ORDERS_PER_STATEMENT):
                chunk = order_rows[i:i + _ORDERS_PER_STATEMENT]
                db.execute(_upsert("orders", 13, len(chunk)), [v for row in chunk for v in row])
            db.execute("COMMIT")
        except BaseException as exc:
            db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):  # "database is locked" alone does not say which file
                raise PaperStoreError(f"{self.path}: {exc}") from exc
            raise

    def close(self) -> None:
        self._writer.shutdown(wait=True)  # a write still in flight finishes first
        self.db.close()


__all__ = ["PaperStore", "PaperStoreError", "asdict"]
