"""Replay quotes or OHLCV bars from a CSV file.

Two layouts, told apart by the header (names are matched after trimming and lower-casing; columns
not listed here are ignored and reported in `ignored_columns`):

* quotes: ``timestamp,symbol,bid,ask`` plus optional ``bid_size,ask_size,last,volume``.
  Absent optional columns give ``bid_size = ask_size = volume = 0`` (unknown) and
  ``last = (bid + ask) / 2``.
* bars: ``timestamp,symbol,open,high,low,close,volume``; one quote per bar, stamped with the row's
  timestamp, at the close: ``bid/ask = close -/+ close * spread_bps / 20000`` (exact Decimal, not
  rounded to any tick), ``last = close``, ``bid_size = ask_size = volume = volume``.

Timestamps are ISO-8601 (naive means UTC) or epoch seconds (a plain number, fractions allowed).

The whole file is parsed and validated when the feed is built, before anything trades. Nothing is
guessed or skipped (only completely blank lines are): the first problem raises `CsvFeedError` with
the message ``"<path>:<line>: <what is wrong>"``, line being the 1-based line in the file.
"""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from engine.models import Quote

QUOTE_REQUIRED = ("timestamp", "symbol", "bid", "ask")
QUOTE_OPTIONAL = ("bid_size", "ask_size", "last", "volume")
BAR_REQUIRED = ("timestamp", "symbol", "open", "high", "low", "close", "volume")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MICRO = Decimal("0.000001")
_ZERO = Decimal(0)
_TWO = Decimal(2)


class CsvFeedError(ValueError):
    """A CSV replay file that cannot be used. `str(err)` is ``"<path>:<line>: <problem>"``."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")


class CsvReplayFeed:
    """A finite feed: `next_batch()` returns every quote of the next timestamp, then None."""

    def __init__(self, path: str | Path, spread_bps: Decimal | int | str = Decimal(2)) -> None:
        self.path = str(path)
        try:
            self.spread_bps = spread_bps if isinstance(spread_bps, Decimal) else Decimal(str(spread_bps))
        except InvalidOperation:
            raise ValueError(f"spread_bps: not a number: {spread_bps!r}") from None
        if not self.spread_bps.is_finite() or not 0 <= self.spread_bps < 10000:
            raise ValueError(f"spread_bps must be within 0..10000 (got {spread_bps})")
        self.symbols: list[str] = []
        self.kind: str = ""  # "quotes" | "bars"
        self.ignored_columns: list[str] = []
        self._batches: list[list[Quote]] = []
        self._pos = 0
        self._load()

    # -- public ----------------------------------------------------------------------------

    def next_batch(self) -> list[Quote] | None:
        if self._pos >= len(self._batches):
            return None
        batch = self._batches[self._pos]
        self._pos += 1
        return batch

    @property
    def total_batches(self) -> int:
        return len(self._batches)

    @property
    def position(self) -> int:
        """Batches handed out so far (progress = position / total_batches)."""
        return self._pos

    @property
    def first_ts(self) -> datetime:
        return self._batches[0][0].ts

    @property
    def last_ts(self) -> datetime:
        return self._batches[-1][0].ts

    # -- loading ---------------------------------------------------------------------------

    def _fail(self, line: int | None, problem: str) -> CsvFeedError:
        return CsvFeedError(self.path, line, problem)

    def _load(self) -> None:
        try:
            data = Path(self.path).read_bytes()
        except OSError as exc:
            raise self._fail(None, f"cannot read: {exc.strerror or exc}") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise self._fail(line, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        del data
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            self._read(reader)
        except csv.Error as exc:
            raise self._fail(reader.line_num or 1, f"malformed CSV: {exc}") from None

    def _read(self, reader) -> None:  # one linear pass over the rows, kept together on purpose
        header: list[str] | None = None
        for row in reader:
            if row:
                header = row
                break
        if header is None:
            raise self._fail(1, "empty file: expected a header row")
        header_line = reader.line_num
        names = [h.strip().lower() for h in header]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise self._fail(header_line, f"duplicate column {name!r}")
            seen.add(name)
        found = ",".join(names)

        is_quotes = "bid" in seen or "ask" in seen
        is_bars = bool(seen & {"open", "high", "low", "close"})
        if is_quotes and is_bars:
            raise self._fail(
                header_line,
                f"ambiguous header: has both quote (bid/ask) and bar (open/high/low/close) columns; found: {found}",
            )
        if not is_quotes and not is_bars:
            raise self._fail(
                header_line,
                "missing columns: expected timestamp,symbol,bid,ask (quotes) or "
                f"timestamp,symbol,open,high,low,close,volume (bars); found: {found}",
            )
        self.kind = "quotes" if is_quotes else "bars"
        required = QUOTE_REQUIRED if is_quotes else BAR_REQUIRED
        missing = [c for c in required if c not in seen]
        if missing:
            what = "column" if len(missing) == 1 else "columns"
            raise self._fail(
                header_line,
                f"missing {what} {', '.join(missing)} ({self.kind} need {','.join(required)}); found: {found}",
            )
        known = set(required) | (set(QUOTE_OPTIONAL) if is_quotes else set())
        self.ignored_columns = [n for n in names if n not in known]
        col = {name: i for i, name in enumerate(names)}
        ncols = len(names)
        i_ts, i_sym = col["timestamp"], col["symbol"]

        # (name, index, must be > 0 (else >= 0), cache of validated values) per number column;
        # the cache shares Decimals between equal cells (sizes, volumes, repeated prices).
        if is_quotes:
            cols = [(c, True) for c in ("bid", "ask")]
            cols += [(c, c == "last") for c in QUOTE_OPTIONAL if c in col]
        else:
            cols = [(c, c != "volume") for c in BAR_REQUIRED[2:]]
        spec: list[tuple[str, int, bool, dict[str, Decimal]]] = [(c, col[c], pos, {}) for c, pos in cols]
        half = self.spread_bps / Decimal(20000)

        batches = self._batches
        order: dict[str, int] = {}
        batch: list[Quote] = []
        batch_lines: dict[str, int] = {}  # symbol -> line, within the current timestamp
        prev_ts: datetime | None = None
        prev_line = 0
        ts_text_cache: tuple[str | None, datetime | None] = (None, None)
        rows = 0
        for row in reader:
            line = reader.line_num
            if not row:
                continue  # a blank line
            if len(row) != ncols:
                raise self._fail(line, f"expected {ncols} fields ({found}), got {len(row)}")
            rows += 1

            ts_text = row[i_ts]
            if ts_text == ts_text_cache[0]:
                ts = ts_text_cache[1]
            else:
                ts = self._timestamp(ts_text, line)
                ts_text_cache = (ts_text, ts)

            symbol = row[i_sym].strip()
            if not symbol:
                raise self._fail(line, "symbol: empty")

            v: dict[str, Decimal] = {}
            for name, idx, positive, cache in spec:
                cell = row[idx]
                d = cache.get(cell)
                if d is not None:
                    v[name] = d
                    continue
                text = cell.strip()
                try:
                    # Decimal also reads "1_00" and other scripts' digits ("١٠٠") as 100: a
                    # spreadsheet's thousands mark or a mangled export, never guessed at.
                    if "_" in text or not text.isascii():
                        raise InvalidOperation
                    d = Decimal(text)
                except InvalidOperation:
                    shown = repr(text) if text else "empty"
                    raise self._fail(line, f"{name}: not a number: {shown}") from None
                if not d.is_finite():
                    raise self._fail(line, f"{name}: not a finite number: {text!r}")
                if positive and d <= 0:
                    raise self._fail(line, f"{name} must be > 0 (got {text})")
                if not positive and d < 0:
                    raise self._fail(line, f"{name} must be >= 0 (got {text})")
                if len(cache) >= 50_000:
                    cache.clear()
                cache[cell] = d
                v[name] = d

            if is_quotes:
                bid, ask = v["bid"], v["ask"]
                if bid > ask:
                    raise self._fail(line, f"bid {bid} > ask {ask} (crossed quote)")
                volume = v.get("volume", _ZERO)
                quote = Quote(
                    symbol, ts, bid, ask, v.get("bid_size", _ZERO), v.get("ask_size", _ZERO),
                    v["last"] if "last" in v else (bid + ask) / _TWO, volume,
                )  # fmt: skip
            else:
                o, h, lo, c, volume = v["open"], v["high"], v["low"], v["close"], v["volume"]
                if h < lo:
                    raise self._fail(line, f"high {h} < low {lo}")
                for name, x in (("open", o), ("close", c)):
                    if not lo <= x <= h:
                        raise self._fail(line, f"{name} {x} outside low..high ({lo}..{h})")
                off = c * half
                quote = Quote(symbol, ts, c - off, c + off, volume, volume, c, volume)

            if prev_ts is not None and ts < prev_ts:
                raise self._fail(
                    line,
                    f"timestamp {ts.isoformat()} goes backwards (line {prev_line} has {prev_ts.isoformat()})",
                )
            if ts != prev_ts:
                if batch:
                    batches.append(self._sorted(batch, order))
                batch = []
                batch_lines = {}
            elif symbol in batch_lines:
                raise self._fail(
                    line,
                    f"repeated timestamp {ts.isoformat()} for {symbol} (first at line {batch_lines[symbol]})",
                )
            batch_lines[symbol] = line
            if symbol not in order:
                order[symbol] = len(order)
            batch.append(quote)
            prev_ts, prev_line = ts, line

        if not rows:
            raise self._fail(header_line, "no data rows after the header")
        batches.append(self._sorted(batch, order))
        self.symbols = list(order)

    @staticmethod
    def _sorted(batch: list[Quote], order: dict[str, int]) -> list[Quote]:
        if len(batch) > 1:
            batch.sort(key=lambda q: order[q.symbol])
        return batch

    def _timestamp(self, text: str, line: int) -> datetime:
        s = text.strip()
        if not s:
            raise self._fail(line, "timestamp: empty")
        if _NUMBER.fullmatch(s):
            try:
                return _EPOCH + timedelta(microseconds=int(Decimal(s).quantize(_MICRO).scaleb(6)))
            except (OverflowError, InvalidOperation, ValueError):
                raise self._fail(line, f"timestamp out of range (epoch seconds expected): {s}") from None
        try:
            ts = datetime.fromisoformat(s)
        except ValueError:
            raise self._fail(line, f"timestamp: not ISO-8601 or epoch seconds: {s!r}") from None
        if ts.tzinfo is None:
            return ts.replace(tzinfo=timezone.utc)
        return ts.astimezone(timezone.utc)
