"""Profile section `venue:` for real venues (proposed replacement of `profile.VenueConfig`).

A profile never holds a key: it names the environment variables that hold them, one pair for
the venue's test environment (Binance/Bybit testnet, Alpaca paper) and another for live. The
two pairs must be different variables, and at start the two values must differ too
(engine/brokers/keys.py), so a live key can never be loaded as a test key by a copy-paste.

    venue:
      name: binance            # paper | binance | bybit | alpaca
      timezone: UTC
      base_url: null           # override the REST endpoint (an emulator, a proxy); scheme+host only
      keys:
        test_key_env: BINANCE_TESTNET_API_KEY
        test_secret_env: BINANCE_TESTNET_API_SECRET
        live_key_env: BINANCE_LIVE_API_KEY
        live_secret_env: BINANCE_LIVE_API_SECRET
      timeouts:
        request_seconds: 10
"""
from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .profile_base import Strict, bad, raise_problems

VenueName = Literal["paper", "binance", "bybit", "alpaca"]
REAL_VENUES = ("binance", "bybit", "alpaca")
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"

# Default environment variable names, per venue and environment.
_TEST_WORD = {"binance": "TESTNET", "bybit": "TESTNET", "alpaca": "PAPER"}


def default_env_names(venue: str) -> dict[str, str]:
    v = venue.upper()
    t = _TEST_WORD.get(venue, "TEST")
    return {
        "test_key_env": f"{v}_{t}_API_KEY",
        "test_secret_env": f"{v}_{t}_API_SECRET",
        "live_key_env": f"{v}_LIVE_API_KEY",
        "live_secret_env": f"{v}_LIVE_API_SECRET",
    }


class VenueKeys(Strict):
    """Names of the environment variables holding the keys; never the keys themselves."""

    test_key_env: str | None = Field(None, pattern=ENV_NAME,
                                     description="env var of the testnet/paper API key (default <VENUE>_TESTNET_API_KEY, Alpaca <VENUE>_PAPER_API_KEY)")
    test_secret_env: str | None = Field(None, pattern=ENV_NAME, description="env var of the testnet/paper API secret")
    live_key_env: str | None = Field(None, pattern=ENV_NAME, description="env var of the live API key (default <VENUE>_LIVE_API_KEY)")
    live_secret_env: str | None = Field(None, pattern=ENV_NAME, description="env var of the live API secret")
    keyring_service: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.:/-]{1,100}$",
        description="look keys up in the OS keyring under this service when the env vars are unset "
                    "(usernames <test|live>_key and <test|live>_secret)")

    @model_validator(mode="after")
    def _distinct(self) -> "VenueKeys":
        names = [n for n in (self.test_key_env, self.test_secret_env, self.live_key_env, self.live_secret_env) if n]
        if len(set(names)) != len(names):
            raise bad("test_key_env", "test and live keys must come from different environment variables")
        return self


class VenueTimeouts(Strict):
    request_seconds: float = Field(10, gt=0, le=120, description="one REST request gives up after this long")
    retries: int = Field(3, ge=0, le=10, description="retries of a timed-out, 5xx or rate-limited request")
    backoff_seconds: float = Field(0.5, gt=0, le=60, description="first backoff; doubles per retry, with jitter")
    backoff_max_seconds: float = Field(8, gt=0, le=300, description="longest single backoff")
    poll_seconds: float = Field(1.0, ge=0, le=60, description="order/fill polling interval; 0 = only when asked")
    unconfirmed_grace_seconds: float = Field(
        30, gt=0, le=600,
        description="an order whose submit timed out and that the venue never shows is reported rejected after this")
    halt_concurrency: int = Field(25, ge=1, le=100, description="cancels in flight at once during a halt")
    request_budget_per_minute: int | None = Field(
        None, ge=60, le=100000,
        description="request weight this client spends per minute (ccxt's per-endpoint weights); half of it "
                    "may be spent at once, so a halt can burst its cancels. Default: 80 % of the venue's limit")


class VenueSection(Strict):
    name: VenueName = Field("paper", description="paper (simulated account), binance, bybit (spot, via ccxt) or alpaca")
    timezone: str = Field("UTC", description="venue time zone: day/week P&L boundaries")
    base_url: str | None = Field(None, description="override the venue REST endpoint (emulator/proxy): scheme://host[:port]")
    data_url: str | None = Field(None, description="Alpaca only: override the market-data endpoint")
    keys: VenueKeys = Field(default_factory=VenueKeys)
    timeouts: VenueTimeouts = Field(default_factory=VenueTimeouts)
    quote_currency: str = Field("USDT", pattern=r"^[A-Z0-9]{2,10}$",
                                description="crypto spot: the cash asset; other balances are positions")
    withdrawal_permission: Literal["warn", "refuse"] = Field(
        "warn", description="a key that can withdraw: warn (alert) or refuse to start")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        # Checked here, not at first use: an unknown zone passed check-config and then stopped
        # the run inside the portfolio, after the journal was opened.
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError):  # not found; a malformed key; a directory such as America
            raise PydanticCustomError(
                "time_zone", "unknown time zone: expected an IANA name such as America/New_York") from None
        return value

    @model_validator(mode="after")
    def _urls(self) -> "VenueSection":
        problems = []
        for field in ("base_url", "data_url"):
            url = getattr(self, field)
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.username or parts.password:  # first, and never echoed: it may hold a secret
                problems.append(bad(field, "must not carry credentials"))
            elif parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(bad(field, f"must be http(s)://host[:port] (got {url!r})"))
            elif parts.scheme == "http" and not _loopback(parts.hostname):
                problems.append(bad(field, "plain http is only allowed to a loopback host (an emulator)"))
        if self.data_url is not None and self.name != "alpaca":
            problems.append(bad("data_url", "only alpaca has a separate market-data endpoint"))
        raise_problems("VenueSection", problems)
        return self

    def env_names(self) -> dict[str, str]:
        """The four env var names in force: configured ones over the venue defaults."""
        names = default_env_names(self.name)
        for k, v in self.keys.model_dump().items():
            if k in names and v:
                names[k] = v
        return names


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or bool(re.fullmatch(r"127\.\d+\.\d+\.\d+", host))


def is_loopback_url(url: str | None) -> bool:
    return bool(url) and _loopback(urlsplit(url).hostname or "")
