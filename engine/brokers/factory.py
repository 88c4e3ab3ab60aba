"""The broker a profile asks for.

`build_broker(profile, clock)` returns an unconnected broker: the PaperBroker for `venue.name:
paper`, a CcxtBroker for binance/bybit, an AlpacaBroker for alpaca. Real venues load their keys
here (environment variables named by the profile, or the keyring; refused if missing or if the
test and live values are the same) and import their client library only on `connect()`, so a
paper profile never loads ccxt or alpaca. `open_broker` builds and connects: connecting loads the
markets and runs the environment checks (engine/brokers/keys.py), raising EnvironmentMismatch
when the key, the endpoint or the account does not fit the profile's mode.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..clock import Clock
from ..venue_config import VenueSection
from .base import Broker
from .keys import KeyLoadError, load_keys

__all__ = ["build_broker", "open_broker", "venue_section", "KeyLoadError"]


def venue_section(profile: Any) -> VenueSection:
    """The profile's venue section as a VenueSection (also from today's paper-only VenueConfig)."""
    v = profile.venue
    if isinstance(v, VenueSection):
        return v
    return VenueSection.model_validate(v.model_dump(exclude_unset=True))


def build_broker(profile: Any, clock: Clock, *, paper_store: Any = None,
                 on_api_failure: Callable[[], None] | None = None,
                 environ: Mapping[str, str] | None = None) -> Broker:
    venue = venue_section(profile)
    if venue.name == "paper":
        if profile.mode != "paper":
            raise ValueError(f"mode {profile.mode} needs a real venue; venue.name is paper")
        from .paper import PaperBroker

        return PaperBroker(profile.paper, clock, paper_store)
    if profile.mode == "paper":
        raise ValueError(f"mode paper trades the paper broker; venue {venue.name} needs mode testnet or live")
    keys = load_keys(venue, profile.mode, environ)
    symbols = list(profile.symbols)
    if venue.name in ("binance", "bybit"):
        from .ccxt_broker import CcxtBroker

        return CcxtBroker(venue, profile.mode, keys, clock, symbols, on_api_failure=on_api_failure)
    if venue.name == "alpaca":
        from .alpaca_broker import AlpacaBroker

        return AlpacaBroker(venue, profile.mode, keys, clock, symbols, on_api_failure=on_api_failure)
    raise ValueError(f"unknown venue {venue.name!r}")


async def open_broker(profile: Any, clock: Clock, **kwargs: Any) -> Broker:
    """build_broker, then connect (markets, account, environment checks); closes it on failure."""
    broker = build_broker(profile, clock, **kwargs)
    try:
        await broker.connect()
    except BaseException:
        await broker.close()
        raise
    return broker
