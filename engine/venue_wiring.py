"""A real venue in the engine: its broker, its quotes, wall-clock time, its stage grant.

`Engine.open` hands a profile whose `venue.name` is not paper to `open_venue`, which:

1. builds the broker (engine/brokers/factory.py): keys are read now, so a missing variable or a
   test key equal to a live one refuses the start before anything is opened;
2. opens the journal and, for a live profile, refuses a stage its journal does not grant
   (engine/stages.py);
3. connects: markets loaded once, account read, environment checked (endpoint vs mode, account
   active and allowed to trade, buying power, withdrawal permission) - a mismatch refuses to
   start;
4. takes the engine's starting cash from the venue (the quote currency, Alpaca's cash) at the
   first session and from the journal's first session afterwards, so the engine's books and the
   venue's start equal and later restarts rebuild and reconcile against the same baseline;
5. builds the venue feed (engine/feeds/venue.py) on one injectable clock (WallClock unless a
   test passes its own), and no simulated warm-up; with `feed.stream` the feed takes the
   venue's websocket quotes (engine/feeds/streams.py) and polls only what the stream is quiet
   on; a venue with a market clock (Alpaca) is read once now for the trading-hours check
   (engine/market_clock.py);
6. once the Engine exists: the broker's `on_api_failure` feeds the API-failure breaker, the
   venue's own environment word feeds the venue-health check, a profile pointing the venue at
   another base URL gets a header notice, and the connection (endpoint, environment, buying
   power, warnings) is journaled as a `venue` row; warnings go to the alert feed; the venue's
   order minimums tell the portfolio what is dust (engine/brokers/minimums.py), its market
   clock feeds the trading-hours check, and the stream is stopped with the engine's services;
7. after recovery, every order the journal says is working (a stop from before a restart) is
   handed to the new broker to track, with the fill ids the journal booked for it, and looked up
   by client id; the poller keeps looking up one the venue did not answer for, and a critical
   alert says so if that lasts beyond `unconfirmed_grace_seconds`.

Every failure before the engine runs is a `VenueStartError` with one redacted line, which the
CLI prints and exits 2 with. `run_venue` is the loop `Engine.run` takes for the venue feed: it
also refreshes the market clock at its bounded rate and says when the quotes move between the
stream and polling.
"""
from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .brokers.keys import EnvironmentMismatch, KeyLoadError, redact
from .brokers.retry import VenueError
from .brokers.venue_fields import id_family
from .clock import Clock, WallClock
from .feeds.venue import VenueFeed
from .journal import Journal
from .market_clock import VenueMarketClock
from .logsetup import setup_logging
from .profile import Profile, journal_path, log_path
from .stages import StageNotGranted, require_granted
from .tasks import close_after_failed_start
from .venue_config import VenueSection, is_loopback_url

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("tradeconsole.venue")

ENV_WORD = {"test": "testnet", "live": "live"}


class VenueStartError(Exception):
    """The venue cannot be traded with this profile now (keys, environment, stage, account):
    one line, no secret, nothing left open."""


def venue_notice(venue: VenueSection) -> str:
    """What the header says when the venue is reached somewhere other than its own endpoint."""
    parts = []
    for what, url in (("", venue.base_url), ("data ", venue.data_url)):
        if url and (what == "" or url != venue.base_url):
            kind = "emulator" if is_loopback_url(url) else "proxy"
            parts.append(f"{what}via {urlsplit(url).netloc} ({kind})")
    return ", ".join(parts)


def environment_word(broker: Any, mode: str) -> str:
    """The venue's own word for its environment, in the profile's terms (testnet | live), for the
    venue-health check. The account's answer wins (Alpaca's PA numbers), then the endpoint's;
    an emulator or proxy has none and plays the environment the profile names (the connect
    check already refused what it could tell was the other one, and the header says where it is)."""
    report = getattr(broker, "report", None)
    env = (getattr(report, "account_env", None) or getattr(broker, "environment", None) or "unknown")
    return ENV_WORD.get(env, mode)


async def _starting_cash(profile: Profile, journal: Journal, broker: Any) -> Decimal:
    sessions = await journal.rows(kinds=["session"])
    if sessions:
        cash = ((sessions[0].data.get("config") or {}).get("paper") or {}).get("starting_cash")
        if cash is not None:
            return Decimal(str(cash))
    balances = await broker.balances()
    asset = broker.cash_currency
    cash = balances.get(asset, Decimal(0))
    if cash <= 0:
        raise VenueStartError(f"{profile.venue.name}: the account holds no {asset}: nothing to trade with")
    return cash


async def open_venue(cls: type["Engine"], profile: Profile, *, clock: Clock | None, speed: float | None,
                     log_to_stdout: bool) -> "Engine":
    from .brokers.factory import build_broker

    clock = clock or WallClock()
    name = profile.venue.name
    try:
        broker = build_broker(profile, clock)
    except (KeyLoadError, ValueError) as exc:
        raise VenueStartError(f"{name}: {redact(exc)}") from None
    jpath = journal_path(profile)
    lpath = log_path(profile)
    try:
        journal = await Journal.open(jpath)
    except BaseException:
        await broker.close()
        raise
    try:
        await require_granted(profile, journal)
        # Before connecting, so the connection's own lines (warnings, key fingerprint) are kept.
        setup_logging(lpath, profile.logging, stdout=log_to_stdout, clock=clock)
        await broker.connect()
        cash = await _starting_cash(profile, journal, broker)
        session = await journal.count("session") + 1
    except (StageNotGranted, EnvironmentMismatch, VenueError) as exc:
        await close_after_failed_start(broker, journal)
        raise VenueStartError(f"{name}: {redact(exc)}") from None
    except BaseException:
        await close_after_failed_start(broker, journal)
        raise
    # The books start where the venue's cash does; the journal's session row says so.
    profile = profile.model_copy(update={"paper": profile.paper.model_copy(update={"starting_cash": cash})})
    try:
        feed = VenueFeed(broker, profile.symbols, clock, profile.feed.tick_seconds, stream=_stream(profile, broker),
                         quiet_seconds=profile.feed.stream_quiet_seconds)
        market_clock = await _market_clock(profile, broker)
    except BaseException:
        await close_after_failed_start(broker, journal)
        raise

    def wire(eng: "Engine") -> None:
        broker.on_api_failure = eng.api_failures.record
        # The profile's id family, so a halt's sweep knows its own orders before any is tracked
        # (a start that comes up halted sweeps first) and leaves another profile's alone.
        broker.own_family = id_family(eng.orders.id_prefix + "0")
        broker.alerts = eng.alerts  # a fill the broker cannot read is a critical alert (brokers/venue_fields.py)
        if hasattr(broker, "is_dust"):
            eng.portfolio.is_dust = broker.is_dust
        eng.market_clock = market_clock
        if market_clock is not None:
            for check in eng.gate.checks:
                if check.name == "trading_hours":
                    check.venue_clock = market_clock  # type: ignore[attr-defined]
        if feed.stream is not None:
            eng.services.append(_FeedStreams(feed))  # stopped by Engine.close with the services
        eng.broker_environment = environment_word(broker, profile.mode)
        eng.venue_notice = venue_notice(profile.venue)
        report = broker.report
        now = clock.now()
        eng.journal.append("venue", now, name, {
            "venue": name, "mode": profile.mode, "endpoint": report.endpoint, "environment": eng.broker_environment,
            "endpoint_environment": report.endpoint_env, "account_status": report.account_status,
            "buying_power": report.buying_power, "withdrawals": report.withdrawals,
            "notice": eng.venue_notice, "warnings": list(broker.warnings), "starting_cash": cash})
        for w in broker.warnings:
            eng.alerts.publish("warning", "venue", w, now)
        if eng.venue_notice:
            eng.alerts.publish("warning", "venue", f"{name} is reached {eng.venue_notice}, not at its own endpoint", now)

    eng = await cls._start(profile, clock, journal, feed, broker, session,
                           profile.feed.speed if speed is None else speed, lpath, seed=None, wire=wire)
    try:
        await _track_recovered(eng)
    except BaseException:
        await eng.close()
        raise
    return eng


def _stream(profile: Profile, broker: Any):
    if not profile.feed.stream:
        return None
    from .feeds.streams import build_stream

    return build_stream(broker, profile.symbols)


async def _market_clock(profile: Profile, broker: Any) -> VenueMarketClock | None:
    """The venue's market clock for the hours check, read once now (a failed read is not a
    refusal: the calendar judges until a read succeeds)."""
    hours = profile.market_hours
    if not hasattr(broker, "get_clock") or hours.calendar == "24/7" or hours.venue_clock_seconds <= 0:
        return None
    mc = VenueMarketClock(broker.get_clock, hours.venue_clock_seconds, broker.name)
    await mc.refresh()
    return mc


class _FeedStreams:
    """The feed's stream as an engine service, so `Engine.close` stops it (task and client)."""

    name = "quote-stream"

    def __init__(self, feed: VenueFeed) -> None:
        self.feed = feed

    async def stop(self) -> None:
        await self.feed.close()


async def _track_recovered(eng: "Engine") -> None:
    """Orders rebuilt from the journal (a stop placed before the restart) were placed by an
    earlier broker: each is handed to this one as to be tracked, with the fill ids the journal
    has booked for it, and looked up now. One the venue does not answer for stays pending: the
    poller keeps looking it up, and `_say_unconfirmed` raises a critical alert if that lasts."""
    broker = eng.broker
    if not hasattr(broker, "track_restored"):
        for cid in list(eng.orders.working):
            try:
                await broker.fetch_order(cid)
            except VenueError as err:
                log.warning("venue %s: could not look up %s after the restart: %s", broker.name, cid, err)
        return
    for cid, order in list(eng.orders.working.items()):
        broker.track_restored(order, eng.orders.booked_fill_ids(cid))
    await broker.confirm_restored()


def _say_unconfirmed(eng: "Engine", said: set[str]) -> None:
    """A restored order the venue has not confirmed for longer than the unconfirmed grace: its
    fills (a stop firing) may go unheard until it is, so the operator is told, once per order."""
    pending = getattr(eng.broker, "restored_pending", None)
    if not pending:
        return
    grace = eng.broker.venue.timeouts.unconfirmed_grace_seconds
    now = eng.clock.monotonic()
    for cid, since in list(pending.items()):
        if cid in said or now - since < grace:
            continue
        said.add(cid)
        o = eng.orders.orders.get(cid)
        what = f"{o.symbol} {o.purpose.value} {o.side.value} {o.remaining}" if o is not None else cid
        eng.alerts.publish("critical", "restored_unconfirmed",
                           f"{eng.broker.name}: the order {cid} ({what}) from before the restart could not be "
                           f"looked up for {now - since:.0f}s; until it is, its fills may go unheard "
                           f"(the poller keeps trying). Check it at the venue", eng.clock.now(), client_order_id=cid)


async def run_venue(eng: "Engine", duration: float | None) -> None:
    """`Engine.run` for the venue feed: a batch per poll until `duration` seconds of the clock
    pass or `stop()`. No simulated warm-up: the strategy warms on live quotes."""
    feed: VenueFeed = eng.feed  # type: ignore[assignment]
    stop = eng._stop
    mclock: VenueMarketClock | None = getattr(eng, "market_clock", None)
    eng.trading_started = eng.clock.now()
    deadline = None if duration is None else eng.clock.monotonic() + duration
    said: bool | None = None  # what the alert feed was last told: streaming (True), polling (False)
    said_at: float | None = None
    unconfirmed_said: set[str] = set()
    try:
        while not stop.is_set():
            if mclock is not None:
                mclock.maybe_refresh()
            batch = await feed.next_batch_async(stop, deadline)
            if batch is None or stop.is_set():
                break  # a poll that came back after stop() (a shutdown) is not traded on
            if feed.stream is not None:
                streaming = feed.source_kind != "poll"
                # Streaming, or lost / never reached (a failed connect): said at most once a
                # minute, always ending on the current state, so a stream flapping on a quiet
                # market does not bury the alert feed.
                lost = said is True or (said is None and feed.stream.failures > 0)
                news = (said is not True) if streaming else lost
                if news and (said_at is None or eng.clock.monotonic() - said_at >= 60):
                    _say_source(eng, feed, said)
                    said, said_at = streaming, eng.clock.monotonic()
            await eng.on_batch(batch)
            _say_unconfirmed(eng, unconfirmed_said)
    finally:
        if mclock is not None:
            await mclock.close()
    await eng.journal.flush()


def _say_source(eng: "Engine", feed: VenueFeed, was: bool | None) -> None:
    """Quotes moved between the stream and polling: the operator hears of it (the stream is the
    faster source; polling costs request weight)."""
    now = eng.clock.now()
    if feed.source_kind != "poll":
        eng.alerts.publish("info", "feed", f"{eng.broker.name}: quotes streaming", now)
        return
    why = f" ({feed.stream.last_error})" if feed.stream is not None and feed.stream.last_error else ""
    what = "quote stream quiet" if was else "quote stream not connected"
    eng.alerts.publish("warning", "feed", f"{eng.broker.name}: {what}{why}; polling", now)
