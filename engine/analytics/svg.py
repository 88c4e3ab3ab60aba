"""Small SVG charts drawn by hand, inlined in the HTML report: no script, no CDN, no fonts to
fetch, so the file opens anywhere, offline, and can be mailed as it is."""
from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Sequence

W, H = 720, 220
PAD_L, PAD_R, PAD_T, PAD_B = 64, 12, 24, 28
INK, GRID, UP, DOWN, LINE = "#222", "#ddd", "#2e7d32", "#c62828", "#1565c0"


def _frame(title: str, body: str, y_lo: float, y_hi: float, x_lo: str = "", x_hi: str = "",
           fmt: str = "{:,.2f}") -> str:
    grid = []
    for i in range(5):
        y = PAD_T + (H - PAD_T - PAD_B) * i / 4
        v = y_hi - (y_hi - y_lo) * i / 4
        grid.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{W - PAD_R}" y2="{y:.1f}" stroke="{GRID}"/>'
                    f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="{INK}">'
                    f"{escape(fmt.format(v))}</text>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            f'role="img" aria-label="{escape(title)}" font-family="sans-serif">'
            f'<text x="{PAD_L}" y="15" font-size="13" font-weight="bold" fill="{INK}">{escape(title)}</text>'
            + "".join(grid) + body
            + f'<text x="{PAD_L}" y="{H - 8}" font-size="11" fill="{INK}">{escape(x_lo)}</text>'
            f'<text x="{W - PAD_R}" y="{H - 8}" font-size="11" text-anchor="end" fill="{INK}">{escape(x_hi)}</text>'
            "</svg>")


def _empty(title: str, why: str = "no data") -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} 60" width="{W}" height="60" '
            f'font-family="sans-serif"><text x="{PAD_L}" y="15" font-size="13" font-weight="bold">{escape(title)}</text>'
            f'<text x="{PAD_L}" y="40" font-size="12" fill="#777">{escape(why)}</text></svg>')


def _bounds(values: Sequence[float], include_zero: bool = False) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        pad = abs(hi) * 0.01 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def _sx(i: int, n: int) -> float:
    return PAD_L + (W - PAD_L - PAD_R) * (i / (n - 1) if n > 1 else 0.5)


def _sy(v: float, lo: float, hi: float) -> float:
    return PAD_T + (H - PAD_T - PAD_B) * (1 - (v - lo) / (hi - lo))


def line(title: str, times: Sequence[datetime], values: Sequence[float], *, color: str = LINE,
         area: bool = False, fmt: str = "{:,.2f}") -> str:
    """A line over points evenly spaced in order (a restarted simulation has no common time axis)."""
    if not values:
        return _empty(title)
    if len(values) > 1500:  # thin the path: a screen has fewer pixels than a month of minutes
        step = len(values) / 1500
        keep = sorted({int(i * step) for i in range(1500)} | {len(values) - 1})
        times, values = [times[i] for i in keep], [values[i] for i in keep]
    lo, hi = _bounds(values, include_zero=area)
    n = len(values)
    pts = " ".join(f"{_sx(i, n):.1f},{_sy(v, lo, hi):.1f}" for i, v in enumerate(values))
    body = f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>'
    if area:
        base = _sy(0.0, lo, hi)
        body = (f'<polygon fill="{color}" fill-opacity="0.25" stroke="none" '
                f'points="{_sx(0, n):.1f},{base:.1f} {pts} {_sx(n - 1, n):.1f},{base:.1f}"/>') + body
    return _frame(title, body, lo, hi, f"{times[0]:%Y-%m-%d %H:%M}", f"{times[-1]:%Y-%m-%d %H:%M}", fmt)


def histogram(title: str, values: Sequence[float], bins: int = 20) -> str:
    """Counts of values per bin; bins below zero in red, above in green."""
    if not values:
        return _empty(title, "no closed trades")
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    top = max(counts)
    bw = (W - PAD_L - PAD_R) / bins
    bars = []
    for i, c in enumerate(counts):
        x0 = PAD_L + i * bw
        y = _sy(c, 0, top)
        mid = lo + (i + 0.5) * width
        bars.append(f'<rect x="{x0 + 1:.1f}" y="{y:.1f}" width="{bw - 2:.1f}" height="{H - PAD_B - y:.1f}" '
                    f'fill="{UP if mid >= 0 else DOWN}"><title>{lo + i * width:,.2f} .. {lo + (i + 1) * width:,.2f}: '
                    f"{c}</title></rect>")
    return _frame(title, "".join(bars), 0, top, f"{lo:,.2f}", f"{hi:,.2f}", "{:,.0f}")


def bars(title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """One bar per label from a zero line: green above, red below."""
    if not values:
        return _empty(title, "no closed trades")
    lo, hi = _bounds(values, include_zero=True)
    n = len(values)
    bw = (W - PAD_L - PAD_R) / n
    zero = _sy(0.0, lo, hi)
    out = []
    for i, (lab, v) in enumerate(zip(labels, values)):
        x0 = PAD_L + i * bw
        y = _sy(v, lo, hi)
        top, h = (y, zero - y) if v >= 0 else (zero, y - zero)
        out.append(f'<rect x="{x0 + 4:.1f}" y="{top:.1f}" width="{max(1.0, bw - 8):.1f}" height="{max(0.5, h):.1f}" '
                   f'fill="{UP if v >= 0 else DOWN}"><title>{escape(lab)}: {v:,.2f}</title></rect>'
                   f'<text x="{x0 + bw / 2:.1f}" y="{H - PAD_B + 14}" font-size="11" text-anchor="middle">'
                   f"{escape(lab)}</text>")
    return _frame(title, "".join(out), lo, hi)
