"""Follows the engine's log file, like `tail -F`, from the console's refresh timer.

Each poll reads at most CHUNK bytes, so a burst of logging cannot stall the event loop (a bounded
read of a local file takes microseconds); if the file races ahead by more than BACKLOG the pane
jumps to the tail and says how much it skipped. Rotation (the path now names a new file) and
truncation (the file got shorter) are both detected on every poll.

The pane can be paused (lines keep being read into the bounded buffer, so nothing is lost up to
`max_lines`, and appear on resume), filtered by minimum level, and searched: a filter change
redraws from the buffer, never from the file.

A tail, not a viewer (the full lines are in the file): the pane draws only the newest lines that
fit, each rendered once, when it is painted. A scrolling log (RichLog) renders every line as it is
written and grows its virtual size with each one, and a virtual size change lays out the whole
screen: 40-80 ms per poll while the log filled up again after every filter change, and tens of
milliseconds of rendering in the pause and filter keys themselves.
"""
from __future__ import annotations

import os
import re
from collections import deque
from pathlib import Path

from rich.text import Text
from textual.cache import LRUCache
from textual.strip import Strip
from textual.widget import Widget

from ._format import printable

CHUNK = 64 * 1024
BACKLOG = 4 * CHUNK
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")
_RANK = {"DEBUG": 0, "INFO": 1, "WARNING": 2, "ERROR": 3, "CRITICAL": 4}
STRIP_CACHE = 256  # rendered lines kept: a few screenfuls


def _level(line: str) -> int:
    m = _LEVEL.search(line)
    return _RANK[m.group(1)] if m else 1  # a continuation line (a traceback) counts as INFO


def _style(line: str) -> str:
    if "CRITICAL" in line or "ERROR" in line:
        return "bold red"
    if "WARNING" in line:
        return "yellow"
    if "DEBUG" in line:
        return "dim"
    return ""


class LogTail(Widget):
    DEFAULT_CSS = """
    LogTail { height: 20%; min-height: 4; max-height: 14; }
    """

    def __init__(self, path: Path | str, *, max_lines: int = 500, **kwargs) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.max_lines = max_lines
        self._fh = None
        self._ino: int | None = None
        self._pos = 0
        self._partial = b""
        self.lines_seen = 0
        self._last_error: str | None = None
        self._buffer: deque[Text] = deque(maxlen=max_lines)  # every line read, newest last
        self._shown: deque[Text] = deque(maxlen=max_lines)  # those passing the filter, as drawn
        self._strips: LRUCache[tuple, tuple[Text, Strip]] = LRUCache(STRIP_CACHE)
        self.paused = False
        self.min_level = "DEBUG"
        self.search = ""
        self._held = 0  # lines read while paused, not yet on screen
        self._retitle()

    def on_unmount(self) -> None:
        self._close()

    @property
    def lines(self) -> list[str]:
        """The lines the pane shows (the newest that fit are on the screen), oldest first."""
        return [line.plain for line in self._shown]

    # -- operator controls ----------------------------------------------------------------------
    def toggle_pause(self) -> bool:
        self.paused = not self.paused
        if not self.paused:
            self._redraw()
        self._retitle()
        return self.paused

    def cycle_level(self) -> str:
        self.min_level = LEVELS[(LEVELS.index(self.min_level) + 1) % len(LEVELS)]
        self._redraw()
        return self.min_level

    def set_search(self, text: str) -> None:
        self.search = text.strip()
        self._redraw()

    def _shows(self, line: Text) -> bool:
        if _level(line.plain) < _RANK[self.min_level]:
            return False
        return not self.search or self.search.lower() in line.plain.lower()

    def _retitle(self) -> None:
        parts = [f"Log {self.path.name}"]
        if self.paused:
            parts.append(f"PAUSED (+{self._held})" if self._held else "PAUSED")
        if self.min_level != "DEBUG":
            parts.append(f"{self.min_level}+")
        if self.search:
            parts.append(f"/{self.search}")
        self.border_title = "  ".join(parts)

    def _redraw(self) -> None:
        # Filtering the buffer is a regex per line (well under a millisecond for all of it); only
        # the lines that fit are rendered, at the next paint.
        self._held = 0
        self._shown = deque((line for line in self._buffer if self._shows(line)), maxlen=self.max_lines)
        self._retitle()
        self.refresh()

    def _emit(self, line: Text) -> None:
        self._buffer.append(line)
        if self.paused:
            self._held += 1
        elif self._shows(line):
            self._shown.append(line)
            self.refresh()

    # -- drawing --------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width, height = self.size
        first = max(0, len(self._shown) - height)  # the newest lines that fit, oldest at the top
        style = self.rich_style
        if first + y >= len(self._shown):
            return Strip.blank(width, style)
        line = self._shown[first + y]
        key = (id(line), width, self.search, style)
        hit = self._strips.get(key)
        if hit is not None and hit[0] is line:  # the entry holds the line, so its id stays its own
            return hit[1]
        text = line
        if self.search:
            text = line.copy()
            text.highlight_words([self.search], style="reverse", case_sensitive=False)
        segments = list(text.render(self.app.console, end=""))
        strip = Strip(segments).crop_extend(0, width, style).apply_style(style)
        self._strips[key] = (line, strip)
        return strip

    # -- following the file ---------------------------------------------------------------------
    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._fh = None
        self._ino = None

    def _open(self, from_start: bool) -> None:
        self._fh = open(self.path, "rb")  # noqa: SIM115 - held open across polls to survive renames
        st = os.fstat(self._fh.fileno())
        self._ino = st.st_ino
        self._partial = b""
        if from_start or st.st_size <= CHUNK:
            self._pos = 0
            return
        # First sight of a long file: start at its tail, dropping the cut-off first line.
        self._pos = st.st_size - CHUNK
        self._fh.seek(self._pos)
        head = self._fh.readline()
        self._pos += len(head)

    def poll(self) -> int:
        """Read what was appended since the last poll; returns the number of lines read."""
        try:
            st = os.stat(self.path)
        except OSError:
            return 0  # not created yet, or mid-rotation: try again next tick
        written = 0
        try:
            if self._fh is None:
                self._open(from_start=False)
            elif st.st_ino != self._ino:
                # Rotated: finish what the old file still holds, then follow the new one from 0.
                written += self._read_available()
                self._close()
                self._open(from_start=True)
            elif st.st_size < self._pos:
                self._emit(Text("… log truncated, following from the start", style="dim italic"))
                self._pos = 0
                self._partial = b""
            size = os.fstat(self._fh.fileno()).st_size
            if size - self._pos > BACKLOG:
                skipped = size - CHUNK - self._pos
                self._emit(Text(f"… skipped {skipped:,} bytes of log to keep up", style="dim italic"))
                self._fh.seek(size - CHUNK)
                self._pos = size - CHUNK + len(self._fh.readline())
                self._partial = b""
            written += self._read_available()
        except OSError as exc:
            message = f"log unreadable: {exc.strerror or exc}"
            # Say it once, not four times a second, while the condition lasts.
            if message != self._last_error:
                self._emit(Text(message, style="bold red"))
            self._last_error = message
            self._close()
            return written
        self._last_error = None
        if self.paused and written:
            self._retitle()
        return written

    def _read_available(self) -> int:
        assert self._fh is not None
        self._fh.seek(self._pos)
        data = self._fh.read(CHUNK)
        if not data:
            return 0
        self._pos += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        # The pane keeps max_lines anyway; writing (and styling) more per poll is wasted work that a
        # chunk of short lines would otherwise turn into a visible stall.
        keep = self.max_lines or len(complete)
        for raw in complete[-keep:]:
            line = printable(raw.decode("utf-8", errors="replace").rstrip("\r"))
            self._emit(Text(line, style=_style(line)))
        self.lines_seen += len(complete)
        return len(complete)
