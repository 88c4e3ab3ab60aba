"""A built-in simulated market: several symbols, seedable, fully deterministic, fast.

Model, per symbol (each symbol has its own `random.Random` derived from the seed and the symbol
name, so adding a symbol never changes the path of another):

* log-price geometric random walk, stepped every `tick_seconds`;
* a Markov switch between volatility regimes (calm / volatile / trending_up / trending_down) with
  exponentially distributed durations in simulated seconds; each regime has its own volatility,
  drift, spread, depth and volume multipliers, so a trend strategy has something to find;
* bid/ask around the mid with a spread in bps (wider in the volatile regime), both rounded to the
  symbol's tick size; bid/ask sizes; a traded volume per tick; `last` = a trade inside the spread;
* gaps (a lasting jump of 2-6 %) and spikes (a one-tick outlier of 3-8 % that reverts on the next
  tick), each recorded in `events`, so sanity checks have something to catch.

Hot path: floats and integer ticks; Decimals are built as `Decimal(int) * tick` or come from small
per-symbol caches (spreads, sizes). No `Decimal(float)`, no string formatting.
"""
from __future__ import annotations

import math
import random
import zlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from statistics import NormalDist

from engine.models import Quote

REGIMES: tuple[str, ...] = ("calm", "volatile", "trending_up", "trending_down")
CALM, VOLATILE, TREND_UP, TREND_DOWN = range(4)

# Per regime: volatility multiplier, drift (in units of the symbol's per-second sigma, per second),
# spread multiplier, depth multiplier, volume multiplier, mean duration in simulated seconds.
_REGIME_VOL = (0.6, 2.5, 1.0, 1.0)
_REGIME_DRIFT = (0.0, 0.0, 0.025, -0.025)
_REGIME_SPREAD = (1.0, 3.0, 1.2, 1.2)
_REGIME_DEPTH = (1.0, 0.5, 0.9, 0.9)
_REGIME_VOLUME = (0.7, 2.5, 1.3, 1.3)
_REGIME_MEAN_SECONDS = (3 * 3600.0, 45 * 60.0, 2.5 * 3600.0, 2.5 * 3600.0)
# Next-regime weights (row = current regime; the diagonal is 0: a switch always changes regime).
_TRANSITIONS = (
    (0.0, 0.30, 0.35, 0.35),
    (0.50, 0.0, 0.25, 0.25),
    (0.55, 0.30, 0.0, 0.15),
    (0.55, 0.30, 0.15, 0.0),
)
_INITIAL = (0.45, 0.10, 0.225, 0.225)

_SECONDS_PER_YEAR = 365.0 * 24 * 3600

GAP_MIN, GAP_MAX = 0.02, 0.06
SPIKE_MIN, SPIKE_MAX = 0.03, 0.08


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    price: float  # starting price
    tick: str  # price tick size (Decimal string)
    annual_vol: float  # base annualised volatility of log returns
    spread_bps: float  # base quoted spread, bps of mid
    depth_usd: float  # typical size at the touch, in quote currency
    volume_usd_per_s: float  # typical traded value per second


# Keyed by base asset, so "BTC/USD", "BTC/USDT" and "BTC-USD" all find BTC.
KNOWN: dict[str, SymbolSpec] = {
    "BTC": SymbolSpec(60000.0, "0.01", 0.55, 1.0, 250_000, 20_000),
    "ETH": SymbolSpec(3000.0, "0.01", 0.70, 1.5, 150_000, 10_000),
    "SOL": SymbolSpec(150.0, "0.01", 0.90, 3.0, 60_000, 3_000),
    "LTC": SymbolSpec(80.0, "0.01", 0.75, 4.0, 30_000, 800),
    "AVAX": SymbolSpec(35.0, "0.01", 0.90, 4.0, 30_000, 800),
    "LINK": SymbolSpec(15.0, "0.001", 0.85, 4.0, 30_000, 800),
    "DOT": SymbolSpec(7.0, "0.001", 0.85, 5.0, 20_000, 500),
    "XRP": SymbolSpec(0.6, "0.0001", 0.80, 3.0, 60_000, 2_000),
    "ADA": SymbolSpec(0.45, "0.0001", 0.85, 4.0, 40_000, 1_000),
    "DOGE": SymbolSpec(0.15, "0.00001", 0.95, 4.0, 40_000, 1_500),
}


def spec_for(symbol: str) -> SymbolSpec:
    """Known base assets get realistic numbers; others a deterministic price of 20-500."""
    base = symbol.replace("-", "/").split("/", 1)[0].strip().upper()
    spec = KNOWN.get(base)
    if spec is not None:
        return spec
    h = zlib.crc32(symbol.encode("utf-8"))
    price = 20.0 + (h % 48001) / 100.0  # 20.00 .. 500.00, same for the same name everywhere
    return SymbolSpec(price, "0.01", 0.80, 5.0, 40_000, 1_000)


def _size_step(units: float) -> Decimal:
    """A power-of-ten step (at most 1) so that `units` is ~100-1000 steps."""
    exp = min(0, math.floor(math.log10(max(units, 1e-12) / 100.0)))
    return Decimal(1).scaleb(exp)


# Standard normal deviates by table lookup: ~10x cheaper than Random.gauss; tails cut at ~4.0 sigma
# (gaps and spikes supply the fat tails).
_NORMAL_BITS = 14


def _normal_table(bits: int) -> tuple[float, ...]:
    """inv_cdf at the 2**bits cell midpoints. Built at import, so it is on every start's path:
    only the lower half is computed and the upper half mirrored, which is bit-identical because
    the midpoints are exact binary fractions symmetric about 0.5 and NormalDist.inv_cdf is odd
    around it to the last bit (both halves share every rounding step, then differ only in sign)."""
    n = 1 << bits
    inv_cdf = NormalDist().inv_cdf
    lower = [inv_cdf((i + 0.5) / n) for i in range(n // 2)]
    return tuple(lower + [-z for z in reversed(lower)])


_NORMAL = _normal_table(_NORMAL_BITS)
_exp = math.exp
_SIZE_BITS = 8
_SIZE_MASK = (1 << _SIZE_BITS) - 1
# Volume jitter by the same draw as the sizes (mean ~1): more traded when the book is lopsided.
_VOL_JITTER = tuple(0.6 + 0.8 * abs(i - _SIZE_MASK / 2) / (_SIZE_MASK / 2) for i in range(_SIZE_MASK + 1))


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """An injected anomaly: kind is "gap" or "spike"; pct is the signed size (0.05 = +5 %)."""

    ts: datetime
    symbol: str
    kind: str
    pct: float


class _Sym:
    __slots__ = (
        "name", "rng", "tick", "inv_tick", "step", "sigma_s", "spread_frac", "depth_steps",
        "volume_steps_s", "logp", "regime", "switch_at", "event_at", "drift_step", "vol_step",
        "spread_k", "sizes", "size_tables", "volume_k", "spiked", "tick_cache", "step_cache",
    )  # fmt: skip


class SimulatedMarket:
    """Infinite, deterministic multi-symbol market. `next_batch()` never returns None."""

    def __init__(
        self,
        symbols: list[str],
        seed: int = 7,
        start: datetime | None = None,
        tick_seconds: float = 1.0,
        spike_probability: float = 0.0005,
        gap_probability: float = 0.0002,
    ) -> None:
        if not symbols:
            raise ValueError("SimulatedMarket needs at least one symbol")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"duplicate symbols: {symbols}")
        if start is None:
            from engine.clock import EPOCH_SIM_START

            start = EPOCH_SIM_START
        if start.tzinfo is None:
            raise ValueError("SimulatedMarket start must be timezone-aware")
        if not tick_seconds > 0:
            raise ValueError(f"tick_seconds must be > 0 (got {tick_seconds})")
        for name, p in (("spike_probability", spike_probability), ("gap_probability", gap_probability)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be within 0..1 (got {p})")
        if spike_probability + gap_probability > 1:
            raise ValueError("spike_probability + gap_probability must be <= 1")

        self.symbols: list[str] = list(symbols)
        self.seed = seed
        self.start = start.astimezone(timezone.utc)
        self.tick_seconds = float(tick_seconds)
        self._step = timedelta(seconds=self.tick_seconds)
        self.spike_probability = float(spike_probability)
        self.gap_probability = float(gap_probability)
        self.events: deque[FeedEvent] = deque(maxlen=1000)  # most recent injected anomalies
        self.spike_count = 0
        self.gap_count = 0
        self._n = 0  # batches produced so far
        self._syms: list[_Sym] = []
        self._by_name: dict[str, _Sym] = {}
        for name in self.symbols:
            s = self._make_symbol(name)
            self._syms.append(s)
            self._by_name[name] = s

    # -- setup -----------------------------------------------------------------------------

    def _make_symbol(self, name: str) -> _Sym:
        spec = spec_for(name)
        s = _Sym()
        s.name = name
        # String seeds are hashed with SHA-512 by `random`: stable across runs and processes.
        s.rng = random.Random(f"tradeconsole-sim:{self.seed}:{name}")
        s.tick = Decimal(spec.tick)
        s.inv_tick = 1.0 / float(s.tick)
        depth_units = spec.depth_usd / spec.price
        s.step = _size_step(depth_units)
        step_f = float(s.step)
        s.depth_steps = depth_units / step_f
        s.volume_steps_s = spec.volume_usd_per_s / spec.price / step_f
        s.sigma_s = spec.annual_vol / math.sqrt(_SECONDS_PER_YEAR)
        s.spread_frac = spec.spread_bps / 10_000.0
        s.logp = math.log(spec.price)
        s.spiked = False
        s.tick_cache = {}
        s.step_cache = {}
        s.size_tables = {}
        r = s.rng.random()
        acc = 0.0
        regime = TREND_DOWN
        for i, w in enumerate(_INITIAL):
            acc += w
            if r < acc:
                regime = i
                break
        self._enter(s, regime, 0)
        s.event_at = self._gap_to_next_event(s.rng) - 1  # first batch is n = 0
        return s

    def _enter(self, s: _Sym, regime: int, n: int) -> None:
        dt = self.tick_seconds
        s.regime = regime
        seconds = s.rng.expovariate(1.0 / _REGIME_MEAN_SECONDS[regime])
        s.switch_at = n + max(1, round(seconds / dt))
        vol = s.sigma_s * _REGIME_VOL[regime]
        s.vol_step = vol * math.sqrt(dt)
        # Ito term keeps the trendless regimes' price a martingale.
        s.drift_step = (_REGIME_DRIFT[regime] * s.sigma_s - 0.5 * vol * vol) * dt
        s.spread_k = s.spread_frac * _REGIME_SPREAD[regime] * s.inv_tick
        s.sizes = s.size_tables.get(regime) or s.size_tables.setdefault(regime, self._size_table(s, regime))
        s.volume_k = s.volume_steps_s * dt * _REGIME_VOLUME[regime]

    @staticmethod
    def _size_table(s: _Sym, regime: int) -> tuple[Decimal, ...]:
        """Touch sizes for a regime, indexed by a random draw; index i and MASK-i lean opposite
        ways, so bid and ask sizes drawn together show a book imbalance."""
        depth = s.depth_steps * _REGIME_DEPTH[regime]
        n = _SIZE_MASK + 1
        return tuple(Decimal(int(depth * (0.2 + 1.6 * (i + 0.5) / n)) + 1) * s.step for i in range(n))

    def _switch(self, s: _Sym, n: int) -> None:
        weights = _TRANSITIONS[s.regime]
        r = s.rng.random()
        acc = 0.0
        nxt = s.regime
        for i, w in enumerate(weights):
            acc += w
            if r < acc and w > 0:
                nxt = i
                break
        else:  # float rounding at the top end: take the last reachable regime
            nxt = max(i for i, w in enumerate(weights) if w > 0)
        self._enter(s, nxt, n)

    # -- public ----------------------------------------------------------------------------

    def regime(self, symbol: str) -> str:
        """Current regime of `symbol`: calm | volatile | trending_up | trending_down."""
        return REGIMES[self._by_name[symbol].regime]

    def tick_size(self, symbol: str) -> Decimal:
        return self._by_name[symbol].tick

    @property
    def batches(self) -> int:
        """Number of batches produced so far."""
        return self._n

    def next_batch(self) -> list[Quote]:
        n = self._n
        self._n = n + 1
        ts = self.start + self._step * n
        normal = _NORMAL
        out: list[Quote] = []
        append = out.append
        for s in self._syms:
            if n >= s.switch_at:
                self._switch(s, n)
            rng = s.rng
            z = normal[rng.getrandbits(_NORMAL_BITS)]
            logp = s.logp + s.drift_step + s.vol_step * z
            if n == s.event_at:
                mid = self._event(s, n, ts, logp)
                logp = s.logp
            else:
                s.logp = logp
                s.spiked = False
                mid = _exp(logp)
            k = rng.getrandbits(_SIZE_BITS)
            sizes = s.sizes
            zz = z * z
            # Spread widens with the size of the move; trades print on the side the price moved to;
            # volume grows with the size of the move; the book leans (bid vs ask size) at random.
            spread = int(mid * s.spread_k * (0.8 + 0.2 * zz) + 0.5) or 1
            bid_t = int(mid * s.inv_tick + 0.5) - (spread >> 1)
            if bid_t < 1:
                bid_t = 1
            last_off = int(spread * (0.5 + 0.12 * z) + 0.5)  # |z| <= 4.01 keeps it within 0..spread
            vol = int(s.volume_k * (0.3 + 0.7 * zz) * _VOL_JITTER[k] + 0.5)

            tc = s.tick_cache
            bid = Decimal(bid_t) * s.tick
            d_sp = tc.get(spread)
            if d_sp is None:
                d_sp = _cache_put(tc, spread, s.tick, 4096)
            d_last = tc.get(last_off)
            if d_last is None:
                d_last = _cache_put(tc, last_off, s.tick, 4096)
            sc = s.step_cache
            d_vol = sc.get(vol)
            if d_vol is None:
                d_vol = _cache_put(sc, vol, s.step, 20000)
            append(Quote(s.name, ts, bid, bid + d_sp, sizes[k], sizes[_SIZE_MASK - k], bid + d_last, d_vol))
        return out

    def _event(self, s: _Sym, n: int, ts: datetime, logp: float) -> float:
        """Apply the anomaly scheduled for batch n; returns the mid to quote. Sets s.logp."""
        rng = s.rng
        p_event = self.gap_probability + self.spike_probability
        is_gap = rng.random() * p_event < self.gap_probability
        pct = rng.uniform(GAP_MIN, GAP_MAX) if is_gap else rng.uniform(SPIKE_MIN, SPIKE_MAX)
        if rng.random() < 0.5:
            pct = -pct
        factor = 1.0
        spiked = False
        if is_gap:
            logp += math.log1p(pct)
            self.gap_count += 1
            self.events.append(FeedEvent(ts, s.name, "gap", pct))
        elif not s.spiked:  # never two in a row: a spike always reverts on the next tick
            factor = 1.0 + pct
            spiked = True
            self.spike_count += 1
            self.events.append(FeedEvent(ts, s.name, "spike", pct))
        s.logp = logp
        s.spiked = spiked
        s.event_at = n + self._gap_to_next_event(rng)
        return _exp(logp) * factor

    def _gap_to_next_event(self, rng: random.Random) -> int:
        """Batches until the next anomaly: geometric with p = spike + gap probability (>= 1)."""
        p = self.gap_probability + self.spike_probability
        if p <= 0.0:
            return -(1 << 62)  # never: event_at goes far negative, n never equals it
        if p >= 1.0:
            return 1
        return 1 + int(math.log(1.0 - rng.random()) / math.log1p(-p))


def _cache_put(cache: dict[int, Decimal], k: int, unit: Decimal, cap: int) -> Decimal:
    if len(cache) >= cap:
        cache.clear()
    d = cache[k] = Decimal(k) * unit
    return d
