"""Multi-timeframe EMA trend with adaptive weights between timeframes.

Each timeframe builds bars from quotes and keeps a fast and a slow EMA of the bar closes; its vote
is the EMA spread as a fraction of price, scaled so `edge_scale` counts as full conviction. The
weights follow each timeframe's recent hit rate (did its vote call the next bar's direction?), so
the timeframe that has been reading this market right gets the larger say.
  edge       = |weighted vote|, in 0..1
  confidence = weight of the timeframes that agree with the combined direction
Entries fire when flat; an exit fires when the combined vote turns against an open position.
An entry's reason ends with the market regime it was taken in (engine/strategy/regime.py).

Readiness: a timeframe votes once it has `warmup_bars` bars. Entries start with the fastest
("forming": the slow timeframes still warming, which the gate refuses unless the profile allows
forming); exits and "ready" wait for all of them. The simulated market prerolls past all of this;
a replay or a real venue starts cold.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from ..models import Quote, Side, Signal
from ..profile import RiskLimits, StrategyConfig
from .base import Strategy
from .regime import Regime, RegimeTracker, tag

HUNDRED = Decimal(100)


@dataclass(slots=True)
class _Timeframe:
    seconds: int
    bar_start: float = -1.0
    close: float = 0.0
    fast: float = 0.0
    slow: float = 0.0
    bars: int = 0
    hit_rate: float = 0.5
    last_vote: float = 0.0
    last_close: float = 0.0


@dataclass(slots=True)
class _SymbolState:
    frames: list[_Timeframe]
    regime: RegimeTracker
    last_signal_bar: float = -1.0
    fast_bar: float = -1.0
    prices: list[float] = field(default_factory=list)


class EmaTrendStrategy(Strategy):
    name = "ema_trend"

    def __init__(self, cfg: StrategyConfig, risk: RiskLimits, allow_short: bool = False) -> None:
        self.cfg = cfg
        self.allow_short = allow_short
        self._tfs = sorted(cfg.timeframes)
        self._a_fast = 2.0 / (cfg.fast_period + 1)
        self._a_slow = 2.0 / (cfg.slow_period + 1)
        self._stop_frac = risk.stop_loss_default_pct / HUNDRED
        self._state: dict[str, _SymbolState] = {}
        # An entry needs at least half the gate's minimums to bother the gate at all.
        self._entry_floor = risk.min_edge / 2
        # Exits need a real reversal, not noise around zero: trend trades live on holding.
        self._exit_floor = risk.min_edge
        # The regime is read over the strategy's own horizon: the slow EMA's span on the slowest bars.
        self._regime_window = cfg.slow_period * self._tfs[-1]

    def _symbol(self, symbol: str) -> _SymbolState:
        st = self._state.get(symbol)
        if st is None:
            st = self._state[symbol] = _SymbolState([_Timeframe(s) for s in self._tfs],
                                                    RegimeTracker(self._regime_window))
        return st

    def readiness(self, symbol: str) -> str:
        st = self._state.get(symbol)
        if st is None:
            return "not_ready"
        slowest = st.frames[-1].bars
        if slowest >= self.cfg.warmup_bars:
            return "ready"
        return "forming" if st.frames[0].bars >= self.cfg.warmup_bars else "not_ready"

    def regime(self, symbol: str) -> Regime | None:
        st = self._state.get(symbol)
        return None if st is None else st.regime.regime()

    def _update_frame(self, tf: _Timeframe, t: float, price: float) -> bool:
        """Feed a price; returns True when a bar closed."""
        start = t - (t % tf.seconds)
        if tf.bar_start < 0:
            tf.bar_start = start
            tf.close = price
            tf.fast = tf.slow = price
            tf.last_close = price
            return False
        if start == tf.bar_start:
            tf.close = price
            return False
        # bar closed: score last vote against this bar's move, then update the EMAs
        move = tf.close - tf.last_close
        if tf.last_vote != 0 and move != 0:
            hit = 1.0 if (move > 0) == (tf.last_vote > 0) else 0.0
            tf.hit_rate += self.cfg.adapt_rate * (hit - tf.hit_rate)
        tf.fast += self._a_fast * (tf.close - tf.fast)
        tf.slow += self._a_slow * (tf.close - tf.slow)
        tf.bars += 1
        tf.last_close = tf.close
        tf.last_vote = (tf.fast - tf.slow) / tf.slow if tf.slow else 0.0
        tf.bar_start = start
        tf.close = price
        return True

    def on_quote(self, quote: Quote, position_qty: object) -> Signal | None:
        st = self._symbol(quote.symbol)
        t = quote.ts.timestamp()
        price = float(quote.bid + quote.ask) / 2.0
        fast_closed = closed = False
        for i, tf in enumerate(st.frames):
            closed = self._update_frame(tf, t, price)
            if i == 0:
                fast_closed = closed
        # The regime is fed per bar, never per quote; `closed` is now the slowest timeframe's.
        if fast_closed:
            st.regime.on_fast_close(st.frames[0].bar_start, st.frames[0].last_close)
        if closed:
            st.regime.on_slow_close(st.frames[-1].bar_start)
        # decide at most once per fast bar: the gate is not asked on every tick
        if not fast_closed:
            return None
        # Only warm timeframes vote. Shorter bars warm first, so they are a prefix of the frames:
        # some warm is "forming" (entries only, which the gate's readiness check refuses unless
        # the profile allows forming), all warm is "ready".
        warmup = self.cfg.warmup_bars
        frames = [tf for tf in st.frames if tf.bars >= warmup]
        if not frames:
            return None
        forming = len(frames) < len(st.frames)
        scale = self.cfg.edge_scale
        total_w = 0.0
        vote = 0.0
        for tf in frames:
            w = max(tf.hit_rate, 0.05)
            total_w += w
            v = tf.last_vote / scale
            vote += w * (1.0 if v > 1.0 else -1.0 if v < -1.0 else v)
        vote /= total_w
        if vote == 0:
            return None
        direction = 1 if vote > 0 else -1
        agree = sum(max(tf.hit_rate, 0.05) for tf in frames if tf.last_vote * direction > 0)
        confidence = agree / total_w
        edge = abs(vote)
        qty = position_qty
        side = Side.BUY if direction > 0 else Side.SELL
        if qty:  # holding: only an exit against the position interests us, and only when ready:
            if forming:  # a trend exit read on the short bars alone would cut a position early
                return None
            holding_long = qty > 0
            if (holding_long and direction < 0) or (not holding_long and direction > 0):
                if edge >= self._exit_floor and confidence >= 0.5:
                    return Signal(quote.symbol, side, round(edge, 4), round(confidence, 4), Decimal(0),
                                  quote.mid, f"exit: trend turned {'down' if direction < 0 else 'up'} "
                                  f"(vote {vote:+.2f})", self.name, quote.ts)
            return None
        if side is Side.SELL and not self.allow_short:
            return None
        if edge < self._entry_floor:
            return None
        entry = quote.ask if side is Side.BUY else quote.bid
        stop = entry * (1 - self._stop_frac) if side is Side.BUY else entry * (1 + self._stop_frac)
        votes = " ".join(f"{tf.seconds}s:{tf.last_vote / scale:+.2f}@{tf.hit_rate:.2f}" for tf in frames)
        if forming:
            slowest = st.frames[-1]
            votes += f" {slowest.seconds}s:forming {slowest.bars}/{warmup}"
        reason = f"trend {'up' if direction > 0 else 'down'} vote {vote:+.2f} [{votes}] {tag(st.regime.regime())}"
        return Signal(quote.symbol, side, round(edge, 4), round(confidence, 4),
                      stop.quantize(Decimal("0.01")), entry, reason, self.name, quote.ts)
