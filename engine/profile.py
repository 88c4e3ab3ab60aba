"""The profile schema: every limit a trader sets, with conservative defaults.

Unknown keys are errors everywhere (`extra="forbid"`): a typo must never silently disable a limit.
Percentages are given as percent (2 means 2 %), money in the account currency, both Decimal.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .profile_base import MAX_USD, Strict, bad as _bad, raise_problems
from .profile_risk import (  # noqa: F401 (imported from here too)
    STAGE_ORDER, BreakerSettings, MarketHoursConfig, RiskLimits, StageLimits, _default_stages, calendar_zone)
from .venue_config import VenueSection as VenueConfig

MIN_SPEED = 0.01
MIN_TICK_SECONDS = 0.01
MAX_TIMEFRAME_SECONDS = 86_400
MAX_TIMEFRAMES = 10
MAX_WARMUP_BARS = 1_000


class FeedConfig(Strict):
    kind: Literal["sim", "csv", "venue"] = Field(
        "sim", description="sim: built-in market; csv: replay; venue: the venue's own quotes "
                           "(the default, and the only choice, when venue.name is a real venue)")
    # The session row journals the seed through orjson, which holds 64 bits: a larger seed passed
    # validation and then stopped the run at that row. Signed, because negative seeds work.
    seed: int = Field(7, ge=-(2**63), le=2**63 - 1, description="random seed of the simulated market")
    speed: float = Field(1.0, ge=0, le=1_000_000,
                         description="simulated seconds per wall second; 0 = as fast as possible, else at least 0.01")
    # At least 10 ms: no venue is polled faster, and a simulated tick below it only multiplies the
    # warm-up (strategy.warmup_bars bars of the slowest timeframe) into millions of quotes; at
    # 1e-300 the clock never moved at all and the warm-up never ended.
    tick_seconds: float = Field(1.0, ge=MIN_TICK_SECONDS, le=3600,
                                description="seconds between quotes (sim: simulated; venue: how often quotes are "
                                            "polled); at least 0.01: nothing quotes faster, and a smaller tick only "
                                            "makes the warm-up millions of quotes long")
    csv_path: str | None = Field(None, description="CSV file for kind: csv; relative to the profile file; "
                                                   "its symbols must be in `symbols`")
    stream: bool = Field(False, description="venue feed: take quotes from the venue's websocket stream, polling "
                                            "only the symbols it is quiet on (false: poll every tick)")
    stream_quiet_seconds: float = Field(5.0, gt=0, le=600,
                                        description="venue stream: a symbol not updated for this long is polled instead")
    spike_probability: float = Field(0.0005, ge=0, le=0.1, description="chance per tick of a price spike")
    gap_probability: float = Field(0.0002, ge=0, le=0.1, description="chance per tick of a price gap")

    @model_validator(mode="after")
    def _consistent(self) -> "FeedConfig":
        problems = []
        if self.kind == "csv" and not self.csv_path:
            problems.append(_bad("csv_path", "required when kind is csv"))
        if 0 < self.speed < MIN_SPEED:
            # A crawl like 1e-300 paces the next quote past any wall clock: the run's --duration
            # (simulated time) never arrives, and nobody who wrote it meant that.
            problems.append(_bad("speed", f"must be 0 (as fast as possible) or at least {MIN_SPEED} (got {self.speed})"))
        raise_problems("FeedConfig", problems)
        return self


class StrategyConfig(Strict):
    name: Literal["ema_trend"] = Field("ema_trend", description="multi-timeframe EMA trend")
    timeframes: list[int] = Field(
        default_factory=lambda: [10, 30, 120],
        min_length=1,
        max_length=MAX_TIMEFRAMES,
        description="bar lengths in seconds, each at most 86400 (a day: the warm-up replays warmup_bars bars of "
                    "the slowest); one fast/slow EMA pair per timeframe",
    )
    fast_period: int = Field(8, ge=2, description="fast EMA length in bars")
    slow_period: int = Field(21, ge=3, description="slow EMA length in bars")
    adapt_rate: float = Field(0.05, gt=0, le=1, description="how fast timeframe weights follow their hit rate")
    edge_scale: float = Field(0.004, gt=0, description="EMA spread (fraction of price) that counts as full edge")
    warmup_bars: int = Field(30, ge=1, le=MAX_WARMUP_BARS,
                             description="bars a timeframe needs before it votes; entries while the slowest one is "
                                         "still warming are 'forming'; at most 1000 (an EMA has forgotten its start "
                                         "long before: more only lengthens the warm-up)")

    @model_validator(mode="after")
    def _periods(self) -> "StrategyConfig":
        problems = []
        if self.fast_period >= self.slow_period:
            problems.append(_bad("fast_period", f"must be below slow_period ({self.slow_period}) (got {self.fast_period})"))
        if any(t <= 0 for t in self.timeframes):
            problems.append(_bad("timeframes", "every timeframe must be > 0 seconds"))
        if any(t > MAX_TIMEFRAME_SECONDS for t in self.timeframes):
            problems.append(_bad("timeframes", f"every timeframe must be at most {MAX_TIMEFRAME_SECONDS} seconds "
                                               f"(a day) (got {max(self.timeframes)})"))
        raise_problems("StrategyConfig", problems)
        return self


class SizingConfig(Strict):
    min_order_usd: Decimal = Field(Decimal(10), ge=0, le=MAX_USD, description="smallest order worth sending")
    max_order_usd: Decimal = Field(Decimal(5000), gt=0, le=MAX_USD, description="largest single order")

    @model_validator(mode="after")
    def _bounds(self) -> "SizingConfig":
        if self.min_order_usd > self.max_order_usd:
            raise _bad("min_order_usd", f"must be <= max_order_usd ({self.max_order_usd}) (got {self.min_order_usd})")
        return self


def _not_a_symbol(symbol: str, venue: str) -> str | None:
    """Why `symbol` cannot be one, or None. The simulated market and a replay take any name (a
    replay's own symbols are read stripped, so a space would never match); a real venue's symbols
    are upper case (Binance, Bybit: BTC/USDT; Alpaca: BTC/USD, AAPL), and lower case never matches."""
    if not symbol.strip():
        return "a symbol cannot be empty"
    if any(ch.isspace() or not ch.isprintable() for ch in symbol):
        return "a symbol has no spaces, line breaks or control characters"
    if venue != "paper" and symbol != symbol.upper():
        return f"{venue} spells its symbols in upper case"
    return None


class ApprovalConfig(Strict):
    required: bool = Field(True, description="orders that pass the gate wait for the operator")
    timeout_seconds: float = Field(1800, gt=0, description="auto-reject after this long")


class OrderConfig(Strict):
    entry_type: Literal["limit", "market"] = Field("limit", description="entries as limit at the touch (market fallback) or market")
    limit_timeout_seconds: float = Field(30, gt=0, description="unfilled limit falls back to market after this")
    limit_offset_bps: Decimal = Field(Decimal(0), ge=0, le=500, description="limit price inside the touch, bps")
    exit_type: Literal["market", "limit"] = Field(
        "market", description="close-all and exits at market, or as aggressive limits bounded by exit_slippage_bps")
    exit_slippage_bps: Decimal = Field(Decimal(50), gt=0, le=2000,
                                       description="limit exits: worst price accepted, bps through the touch")


class PaperConfig(Strict):
    starting_cash: Decimal = Field(Decimal(10000), gt=0, le=MAX_USD, description="paper account's starting cash")
    maker_fee_bps: Decimal = Field(Decimal(10), ge=0, le=1000, description="fee on resting (maker) fills")
    taker_fee_bps: Decimal = Field(Decimal(20), ge=0, le=1000, description="fee on crossing (taker) fills")
    slippage_bps: Decimal = Field(Decimal(2), ge=0, le=1000, description="price worsening on taker fills")
    latency_ms: int = Field(50, ge=0, le=60000, description="time before a paper order can trade")


class JournalConfig(Strict):
    path: str | None = Field(None, description="SQLite file, relative to the profile file; default <data dir>/<profile name>.sqlite")


class LoggingConfig(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level of the file and stdout")
    path: str | None = Field(None, description="rotating log file, relative to the profile file; default next to the journal")
    max_bytes: int = Field(5_000_000, ge=10_000, description="rotate the log at this size")
    backups: int = Field(3, ge=0, le=100, description="rotated logs kept")


from .analytics.config import ReadinessConfig  # noqa: E402 - sections that import the base above
from .control.config import ControlConfig  # noqa: E402
from .notify.config import AlertsConfig  # noqa: E402


class Profile(Strict):
    name: str = Field("paper", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="profile name: names the journal and log files")
    mode: Literal["paper", "testnet", "live"] = Field("paper", description="paper trades the paper broker; live is never a default")
    venue: VenueConfig = Field(default_factory=VenueConfig)
    symbols: list[str] = Field(
        default_factory=lambda: ["BTC/USD", "ETH/USD", "SOL/USD", "LTC/USD"], min_length=1,
        description="symbols the feed quotes and the strategy trades; no spaces, and in upper case on a real venue",
    )
    feed: FeedConfig = Field(default_factory=FeedConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    sizing: SizingConfig = Field(default_factory=SizingConfig)
    risk: RiskLimits = Field(default_factory=RiskLimits)
    approval: ApprovalConfig = Field(default_factory=ApprovalConfig)
    orders: OrderConfig = Field(default_factory=OrderConfig)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    journal: JournalConfig = Field(default_factory=JournalConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    keys: dict[str, str] = Field(default_factory=dict, description="binding id -> key(s), remaps the console")
    market_hours: MarketHoursConfig = Field(default_factory=MarketHoursConfig)
    breakers: BreakerSettings = Field(default_factory=BreakerSettings)
    stage: Literal["paper", "testnet", "micro", "small", "medium", "standard"] = Field(
        "paper", description="where on the road to live this profile is")
    stages: dict[str, StageLimits] = Field(default_factory=_default_stages, description="caps per stage")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    control: ControlConfig = Field(default_factory=ControlConfig)
    readiness: ReadinessConfig = Field(default_factory=ReadinessConfig)

    @model_validator(mode="before")
    @classmethod
    def _feed_follows_venue(cls, data: object) -> object:
        # A real venue trades on its own quotes: a profile that names one and says nothing of
        # the feed gets the venue feed, so no testnet profile needs to spell it out.
        if not isinstance(data, dict):
            return data
        venue = data.get("venue")
        name = venue.get("name") if isinstance(venue, dict) else getattr(venue, "name", None)
        if name in (None, "paper"):
            return data
        feed = data.get("feed")
        if feed is None:
            return {**data, "feed": {"kind": "venue"}}
        if isinstance(feed, dict) and "kind" not in feed:
            return {**data, "feed": {**feed, "kind": "venue"}}
        return data

    @model_validator(mode="before")
    @classmethod
    def _zone_follows_calendar(cls, data: object) -> object:
        # An exchange's days are its own: a profile naming a calendar and no venue time zone gets
        # the calendar's (a UTC default put the day's reset at 19:00 New York, mid after-hours).
        if not isinstance(data, dict):
            return data
        hours, venue = data.get("market_hours"), data.get("venue")
        cal = hours.get("calendar") if isinstance(hours, dict) else getattr(hours, "calendar", None)
        zone = calendar_zone(cal) if isinstance(cal, str) else None
        if zone is None:
            return data
        if venue is None:
            return {**data, "venue": {"timezone": zone}}
        if isinstance(venue, dict) and "timezone" not in venue:
            return {**data, "venue": {**venue, "timezone": zone}}
        if isinstance(venue, VenueConfig) and "timezone" not in venue.model_fields_set:
            return {**data, "venue": venue.model_copy(update={"timezone": zone})}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "Profile":
        """Limits that contradict each other across sections, and names that cannot be what they name."""
        problems = []
        zone = calendar_zone(self.market_hours.calendar)
        if zone is not None and self.venue.timezone != zone:
            # Day and week limits reset at the venue's midnight: in another zone that falls inside
            # the exchange's session, and a day's loss limit was whole again the same evening.
            problems.append(_bad("venue.timezone", f"must be {zone} for calendar {self.market_hours.calendar} "
                                                   f"(got {self.venue.timezone})"))
        for i, symbol in enumerate(self.symbols):
            why = _not_a_symbol(symbol, self.venue.name)
            if why:
                problems.append(_bad(f"symbols.{i}", f"{why} (got {symbol!r})"))
        if self.sizing.min_order_usd > self.risk.max_total_capital_usd:
            problems.append(_bad("sizing.min_order_usd", f"must be <= risk.max_total_capital_usd "
                                 f"({self.risk.max_total_capital_usd}): no order could ever be sent (got {self.sizing.min_order_usd})"))
        for where, stages in (("stages", self.stages), ("readiness.stages", self.readiness.stages)):
            problems += [_bad(f"{where}.{name}", f"unknown stage; stages are {', '.join(STAGE_ORDER)}")
                         for name in sorted(set(stages) - set(STAGE_ORDER))]
        for name, c in self.readiness.stages.items():
            if c.win_rate_min_pct > c.win_rate_max_pct:
                problems.append(_bad(f"readiness.stages.{name}.win_rate_min_pct", f"must be <= win_rate_max_pct "
                                     f"({c.win_rate_max_pct}): no record could pass (got {c.win_rate_min_pct})"))
        raise_problems("Profile", problems)
        return self

    @model_validator(mode="after")
    def _mode_venue(self) -> "Profile":
        if len(set(self.symbols)) != len(self.symbols):
            raise _bad("symbols", "contains duplicates")
        grouped = {s for members in self.risk.correlated_groups.values() for s in members}
        strays = sorted(grouped - set(self.symbols))
        if strays:
            raise _bad("risk.correlated_groups", f"{strays[0]} is not in symbols")
        if self.mode == "paper" and self.venue.name != "paper":
            raise _bad("mode", f"paper trades the paper broker; venue {self.venue.name} needs mode testnet or live")
        if self.mode != "paper" and self.venue.name == "paper":
            raise _bad("mode", f"{self.mode} needs a real venue; venue.name is paper")
        if self.venue.name != "paper" and self.feed.kind != "venue":
            raise _bad("feed.kind", f"a real venue ({self.venue.name}) trades on its own quotes: use venue "
                                    f"(or leave feed.kind out), not {self.feed.kind}")
        if self.venue.name == "paper" and self.feed.kind == "venue":
            raise _bad("feed.kind", "venue quotes need a real venue; venue.name is paper")
        if self.mode == "live" and self.stage in ("paper", "testnet"):
            raise _bad("stage", f"a live profile needs a live stage (micro, small, medium, standard), not {self.stage}")
        return self

    @model_validator(mode="after")
    def _stage_caps_only_tighten(self) -> "Profile":
        # The built-in caps of a live stage are what promotion measured the stage against: a live
        # profile may tighten them, never raise or blank them (null would mean "no cap"). Paper and
        # testnet profiles trade no money, so their caps stay free for rehearsals.
        if self.mode != "live":
            return self
        problems = []
        for stage, own in self.stages.items():
            base = _default_stages()[stage]
            for name in sorted(own.model_fields_set):
                limit, got = getattr(base, name), getattr(own, name)
                if limit is None:
                    continue
                ceiling = name.startswith("max_")
                if got is None or (got > limit if ceiling else got < limit):
                    word = "at most" if ceiling else "at least"
                    problems.append(_bad(f"stages.{stage}.{name}", (
                        f"must be {word} {limit}, stage {stage}'s built-in limit: a live profile may tighten it, "
                        f"never loosen or remove it (got {'null' if got is None else got})")))
        raise_problems("Profile", problems)
        return self

    def data_dir(self) -> Path:
        return journal_path(self).parent

    def stage_limits(self) -> StageLimits:
        """The current stage's caps: the defaults for the stage, overridden field by field."""
        base = _default_stages()[self.stage]
        own = self.stages.get(self.stage)
        if own is None:
            return base
        return base.model_copy(update=own.model_dump(exclude_unset=True))


def default_data_dir() -> Path:
    import os

    base = os.environ.get("TRADECONSOLE_HOME")
    if base:
        # Resolved as the OS would: SQLite reads '..' itself and refuses one above '/', so
        # '~/../../x' opened fine as a folder and then failed as a journal.
        return Path(base).expanduser().resolve()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "tradeconsole"


def journal_path(profile: Profile) -> Path:
    if profile.journal.path:
        return Path(profile.journal.path).expanduser().resolve()
    return default_data_dir() / f"{profile.name}.sqlite"


def log_path(profile: Profile) -> Path:
    if profile.logging.path:
        return Path(profile.logging.path).expanduser().resolve()
    return journal_path(profile).with_suffix(".log")


def paper_store_path(journal: Path) -> Path:
    """The paper venue's own books, beside the journal but never inside it."""
    return journal.with_name(journal.stem + ".paper-venue.sqlite")
