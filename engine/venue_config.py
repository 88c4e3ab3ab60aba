"""Profile section `venue:`: which venue a profile trades on, and where its keys come from.

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

import ipaddress
import itertools
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .profile_base import Strict, bad, raise_problems

VenueName = Literal["paper", "binance", "bybit", "alpaca"]
REAL_VENUES = ("binance", "bybit", "alpaca")
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
# An Alpaca key id (PK/AK/CK + 18 capitals and digits) also matches ENV_NAME: pasted in place of
# a variable's name it would pass the pattern and be printed back as "PK... is not set".
_ALPACA_KEY_ID = re.compile(r"(?:PK|AK|CK)[A-Z0-9]{18}")
_ALPACA_KEY_LIKE = re.compile(r"(?:PK|AK|CK)[A-Z0-9]{12,38}")


def _random_token(token: str) -> bool:
    # Names are words joined by _ (digits at most a suffix or two); a key is letters and digits
    # shuffled together: count how often the run switches between the two.
    if len(token) < 16:
        return False
    digits = sum(c.isdigit() for c in token)
    switches = sum(a.isdigit() != b.isdigit() for a, b in itertools.pairwise(token))
    return digits >= 2 and len(token) - digits >= 2 and switches >= 4


def looks_like_key(value: str) -> bool:
    """True for a value shaped like a venue key or secret rather than a name (never printed)."""
    if _ALPACA_KEY_ID.fullmatch(value):
        return True
    if _ALPACA_KEY_LIKE.fullmatch(value) and any(c.isdigit() for c in value):
        return True
    return any(_random_token(t) for t in re.split(r"[_.:/\-]+", value))


KEY_SHAPED = ("looks like a key, not a variable name: put the key in an environment variable and "
              "name that variable here (the value is not shown)")


def _not_key_shaped(value: str | None, what: str = "variable") -> str | None:
    if value is not None and looks_like_key(value):
        msg = KEY_SHAPED if what == "variable" else f"looks like a key, not a {what} name (the value is not shown)"
        raise PydanticCustomError("key_shaped", msg)
    return value

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

    # A value here may be a pasted key: pydantic must not quote it in its own error text.
    model_config = ConfigDict(**Strict.model_config, hide_input_in_errors=True)

    test_key_env: str | None = Field(None, pattern=ENV_NAME,
                                     description="env var of the testnet/paper API key (default <VENUE>_TESTNET_API_KEY, Alpaca <VENUE>_PAPER_API_KEY)")
    test_secret_env: str | None = Field(None, pattern=ENV_NAME, description="env var of the testnet/paper API secret")
    live_key_env: str | None = Field(None, pattern=ENV_NAME, description="env var of the live API key (default <VENUE>_LIVE_API_KEY)")
    live_secret_env: str | None = Field(None, pattern=ENV_NAME, description="env var of the live API secret")
    keyring_service: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.:/-]{1,100}$",
        description="look keys up in the OS keyring under this service when the env vars are unset "
                    "(usernames <test|live>_key and <test|live>_secret)")

    @field_validator("test_key_env", "test_secret_env", "live_key_env", "live_secret_env", "keyring_service")
    @classmethod
    def _key_shaped(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _not_key_shaped(value, "keyring service" if info.field_name == "keyring_service" else "variable")

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
    model_config = ConfigDict(**Strict.model_config, hide_input_in_errors=True)

    name: VenueName = Field("paper", description="paper (simulated account), binance, bybit (spot, via ccxt) or alpaca")
    timezone: str = Field("UTC", description="venue time zone: day/week P&L boundaries; with an exchange "
                                             "calendar (market_hours.calendar) it must be the calendar's zone, "
                                             "which is also the default then")
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
            if url is not None:
                problem = _url_problem(url)
                if problem:
                    problems.append(bad(field, problem))
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


_NOT_SHOWN = "the value is not shown: it may carry a secret"


def _url_problem(url: str) -> str | None:
    """What is wrong with an endpoint URL, never quoting it: a mistyped URL may still hold a
    password, a token in its path or query, or be the key itself."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is not None and (parts.username or parts.password or "@" in parts.netloc):
        return f"must not carry credentials ({_NOT_SHOWN})"
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        scheme = parts.scheme if parts is not None and re.fullmatch(r"[a-z][a-z0-9+.-]{0,9}", parts.scheme) else ""
        got = f"; the scheme given is {scheme}://" if scheme and scheme not in ("http", "https") else ""
        return f"must be http(s)://host[:port]{got} ({_NOT_SHOWN})"
    if not port_ok:
        return f"must be http(s)://host[:port] with a numeric port ({_NOT_SHOWN})"
    if parts.query or parts.fragment:
        return f"must be http(s)://host[:port]: no query or fragment ({_NOT_SHOWN})"
    if parts.scheme == "http" and not loopback_host(parts.hostname):
        return "plain http is only allowed to a loopback host (an emulator)"
    return None


def loopback_host(host: str) -> bool:
    """localhost or a loopback address (127/8, ::1, ::ffff:127.x), however spelled."""
    h = host.strip().lower().rstrip(".")
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if h == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


_loopback = loopback_host


def is_loopback_url(url: str | None) -> bool:
    if not url:
        return False
    try:
        return loopback_host(urlsplit(url).hostname or "")
    except ValueError:
        return False
