"""The market regime a strategy saw when it signalled: volatility (low / normal / high) and trend
(up / flat / down), so analytics can ask how the strategy does in each (docs/metrics.md).

Both are measured causally from the prices the strategy has already seen, per symbol:

* **volatility**: realised volatility of the fast timeframe's bar closes over the last
  `window_seconds`, robust to spikes and gaps (see RegimeTracker), annualised. Its label is its
  rank among this symbol's own readings (one per slowest-timeframe bar) of the last
  HISTORY_SECONDS: the lowest third is `low`, the highest third `high`, the rest `normal`.
  Ranking against the symbol itself makes the label mean the same on BTC as on a coin three
  times as volatile.
* **trend**: the drift of the price over the same window, jumps clipped, in units of the noise
  expected over that time (a t-statistic z). |z| >= TREND_Z is `up` or `down` by its sign,
  anything less is `flat`. Not the slope of the strategy's own EMAs: a gap moves an EMA for an
  hour and would read as a trend, and the EMAs are what the entry already follows.

The regime travels in the entry signal's reason as a tag (`regime: vol high (p84), trend up
(z +1.32)`), written by `tag()` and read back by `parse_tag()`: the signal's reason is the one
free-text field the engine journals with every signal, and a reader of a decision sees it too.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right, insort
from collections import deque
from dataclasses import dataclass

MIN_RETURNS = 10  # fewer bar returns than this in the window: no reading
CLIP_SD = 3.0  # a bar return beyond this many standard deviations counts as a jump, not a drift
HISTORY_SECONDS = 8 * 3600.0  # the readings a new one is ranked against
MIN_HISTORY = 20  # fewer readings than this: the volatility label is unknown
TREND_Z = 1.0  # a drift of one standard deviation of the noise counts as a trend
SECONDS_PER_YEAR = 365.0 * 24 * 3600
# The median of |Z| for a standard normal Z: median(|r|) / this estimates the standard deviation of r.
MAD_NORMAL = 0.6744897501960817

VOL_LABELS = ("low", "normal", "high")
TREND_LABELS = ("up", "flat", "down")
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Regime:
    volatility: str  # low | normal | high | unknown
    vol_rank: float | None  # share of the symbol's recent readings below the current one (ties half), 0..1
    vol_annual_pct: float | None  # the realised volatility, annualised, in %
    trend: str  # up | flat | down | unknown
    trend_z: float | None  # slow EMA move over the noise expected over the same time

    def as_dict(self) -> dict[str, object]:
        return {"volatility": self.volatility, "vol_rank": self.vol_rank, "vol_annual_pct": self.vol_annual_pct,
                "trend": self.trend, "trend_z": self.trend_z}


def vol_label(rank: float | None) -> str:
    if rank is None:
        return UNKNOWN
    return "low" if rank < 1 / 3 else "high" if rank > 2 / 3 else "normal"


def trend_label(z: float | None) -> str:
    if z is None:
        return UNKNOWN
    return "up" if z >= TREND_Z else "down" if z <= -TREND_Z else "flat"


class RegimeTracker:
    """Per-symbol state, fed on bar closes (never per quote) and read when a signal is made.

    Both measures are robust to the jumps a market has (a spike that reverts, a gap that stays):

    * the volatility is the median absolute return per root second over MAD_NORMAL (the median
      absolute value of a standard normal), so one or two jumps barely move it, where a sum of
      squares would read a calm hour with one spike in it as the wildest of the day;
    * the trend sums the window's log returns with each clipped to CLIP_SD standard deviations,
      so a gap (a one-off repricing) is not mistaken for a drift, and divides by the noise
      expected over the window, sigma x sqrt(seconds): a t-statistic of the drift.

    Both are kept sorted as bars come in (a bisection and a short memmove per bar), so reading
    the regime at a signal is a few lookups, not a pass over the window: a backtest on one-minute
    bars may ask at every bar.
    """

    __slots__ = ("window_seconds", "_window", "_dt_sum", "_abs", "_by_u", "_history", "_sorted", "_last",
                 "_last_t")

    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = float(window_seconds)
        # Per bar return r over dt seconds: (u = r / sqrt(dt), sqrt(dt), dt, the close before it).
        # u^2 is the return's variance per second; clipping u clips r to a number of sigmas.
        self._window: deque[tuple[float, float, float, float]] = deque()
        self._dt_sum = 0.0
        self._abs: list[float] = []  # |u| of the window, sorted (the median)
        self._by_u: list[tuple[float, float]] = []  # (u, sqrt(dt)) of the window, sorted (the tails)
        self._history: deque[tuple[float, float]] = deque()  # (time, variance per second)
        self._sorted: list[float] = []  # the same readings, sorted: a rank is one bisection
        self._last = 0.0
        self._last_t = -1.0

    def on_fast_close(self, t: float, close: float) -> None:
        """A fast-timeframe bar closed at `close`; `t` is when (seconds)."""
        last, last_t = self._last, self._last_t
        self._last, self._last_t = close, t
        if last_t < 0 or t <= last_t or close <= 0 or last <= 0:
            return
        dt = t - last_t
        root = math.sqrt(dt)
        u = math.log(close / last) / root
        self._window.append((u, root, dt, last))
        insort(self._abs, abs(u))
        insort(self._by_u, (u, root))
        self._dt_sum += dt
        # Keep the newest returns that still cover the window (and never fewer than the minimum).
        w = self._window
        while len(w) > MIN_RETURNS and self._dt_sum - w[0][2] >= self.window_seconds:
            old_u, old_root, old_dt, _ = w.popleft()
            self._dt_sum -= old_dt
            del self._abs[bisect_left(self._abs, abs(old_u))]
            del self._by_u[bisect_left(self._by_u, (old_u, old_root))]

    def on_slow_close(self, t: float) -> None:
        """A slowest-timeframe bar closed: take the volatility reading later ones are ranked
        against (once a slow bar)."""
        var = self.variance()
        if var is None:
            return
        h, ordered = self._history, self._sorted
        h.append((t, var))
        insort(ordered, var)
        while h[0][0] < t - HISTORY_SECONDS:
            del ordered[bisect_left(ordered, h.popleft()[1])]

    def variance(self) -> float | None:
        """Variance of log price per second over the window; None before it has enough returns."""
        a = self._abs
        n = len(a)
        if n < MIN_RETURNS:
            return None
        mid = n // 2
        med = a[mid] if n % 2 else (a[mid - 1] + a[mid]) / 2
        return (med / MAD_NORMAL) ** 2

    def regime(self) -> Regime:
        var = self.variance()
        rank = annual = z = None
        if var is not None:
            annual = math.sqrt(var * SECONDS_PER_YEAR) * 100
            ordered = self._sorted
            if len(ordered) >= MIN_HISTORY:
                # Mid-rank: readings equal to this one count half, so a market whose volatility
                # never changes reads `normal`, not `low`.
                rank = (bisect_left(ordered, var) + bisect_right(ordered, var)) / 2 / len(ordered)
            if var > 0:
                sd = math.sqrt(var)
                cap = CLIP_SD * sd
                # The window's log returns add up to the log move from the close before it to the
                # last close; the clipped sum takes back what the tails carry beyond the cap.
                drift = math.log(self._last / self._window[0][3])
                by_u = self._by_u
                for u, root in by_u:
                    if u >= -cap:
                        break
                    drift -= (u + cap) * root
                for u, root in reversed(by_u):
                    if u <= cap:
                        break
                    drift -= (u - cap) * root
                z = drift / (sd * math.sqrt(self._dt_sum))
        return Regime(vol_label(rank), rank, annual, trend_label(z), z)


# -- the tag in the signal's reason ----------------------------------------------------------------
_TAG = re.compile(
    r"regime: vol (?P<vol>low|normal|high|unknown)(?: \(p(?P<rank>\d{1,3})\))?, "
    r"trend (?P<trend>up|flat|down|unknown)(?: \(z (?P<z>[+-]\d+\.\d+)\))?")


def tag(r: Regime) -> str:
    """`regime: vol high (p84), trend up (z +1.32)`; a part not measured yet reads `unknown`."""
    vol = r.volatility if r.vol_rank is None else f"{r.volatility} (p{round(r.vol_rank * 100)})"
    trend = r.trend if r.trend_z is None else f"{r.trend} (z {r.trend_z:+.2f})"
    return f"regime: vol {vol}, trend {trend}"


def parse_tag(text: str) -> tuple[str, str] | None:
    """(volatility, trend) from a reason carrying `tag()`'s text, None when it has none."""
    m = _TAG.search(text or "")
    return None if m is None else (m["vol"], m["trend"])
