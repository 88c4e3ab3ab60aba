"""Display formatting shared by the panes. Pure functions of snapshot values: no trading rule here."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from rich.text import Text

from engine.money import fmt_usd

DASH = "—"

SEVERITY_STYLE = {
    "info": "cyan",
    "warning": "bold yellow",
    "critical": "bold white on red",
}


# Control characters (ESC above all) in text that came from outside (a venue's error message echoed
# into an alert or the log) must not reach the terminal as escape sequences.
_CONTROL = {c: "?" for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F)}


def printable(text: str) -> str:
    return text.translate(_CONTROL)


def money(value: Decimal) -> str:
    return fmt_usd(value)


def signed_style(value: Decimal) -> str:
    if value > 0:
        return "green"
    if value < 0:
        return "red"
    return ""


def money_text(value: Decimal) -> Text:
    return Text(money(value), style=signed_style(value))


def qty(value: Decimal) -> str:
    # normalize() alone would print 1E+1 for 10; "f" keeps it positional.
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


def price(value: Decimal | None) -> str:
    if value is None:
        return DASH
    if abs(value) >= 1:
        return f"{value:,.2f}"
    # Sub-dollar instruments need more digits to show any movement at all.
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def pct(value: Decimal | None) -> str:
    if value is None:
        return DASH
    return f"{value:.2f}%"


def clock(ts: datetime) -> str:
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc)
    return ts.strftime("%Y-%m-%d %H:%M:%S") + "Z"


def short_time(ts: datetime) -> str:
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc)
    return ts.strftime("%H:%M:%S")


def time_left(seconds: float) -> str:
    if seconds <= 0:
        return "expiring"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


_EIGHTHS = " ▏▎▍▌▋▊▉"


def meter(ratio: float, width: int = 6) -> str:
    """A bar `width` cells long filled to `ratio` (clamped to 0..1), in eighths of a cell."""
    ratio = min(max(ratio, 0.0), 1.0)
    eighths = round(ratio * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[part] if part else "")
    return bar.ljust(width, "░")


def level_style(ratio: float) -> str:
    """The breaker palette for any value-against-limit figure: green, yellow at 60 %, orange at
    80 %, red at the limit, so every meter on the screen reads the same way."""
    if ratio >= 1:
        return "bold red"
    if ratio >= 0.8:
        return "dark_orange"
    if ratio >= 0.6:
        return "yellow"
    return "green"
