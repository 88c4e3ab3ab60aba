"""API keys: where they come from, how they are kept out of sight, and the checks at connect.

Keys come only from environment variables (names per profile, `venue.keys`) or the OS keyring;
never from YAML. A loaded key is a `Secret` (its repr and str are redacted) and is registered so
that `redact()` and the log-record filter installed by `install_log_redaction()` scrub it from
every log record, exception text, alert and journal line that passes through them.

Before any key is read, `check_endpoint` refuses a `base_url` that is not a host of the mode's
environment (nor loopback; engine/brokers/endpoints.py). At connect the broker reads the account
and returns an `EnvironmentReport`; `check_environment` refuses to start when the endpoint or the
account does not match the profile's mode (a live key with a testnet/paper profile, or the
reverse), when the endpoint is unknown, when the account is blocked or cannot trade, and (policy
`refuse`) when the key can withdraw; otherwise it returns the warnings to alert.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Literal, Mapping
from urllib.parse import quote

from ..venue_config import VenueSection, looks_like_key
from .endpoints import endpoint_environment, endpoint_refusal, printable_host  # noqa: F401 - brokers import it from here

Env = Literal["test", "live"]
MASK = "***"


class KeyLoadError(Exception):
    """A key is missing or unusable. Messages name variables, never values."""


class EnvironmentMismatch(Exception):
    """The venue, the key or the account does not fit the profile's mode: refuse to start."""


class EndpointRefused(KeyLoadError, EnvironmentMismatch):
    """The profile's endpoint is not of its mode's environment: no key is handed to a client for it."""


# -- secrets and redaction ------------------------------------------------------------------
_lock = threading.Lock()
_secrets: set[str] = set()
_variants: tuple[str, ...] = ()
MIN_SECRET_LEN = 6  # shorter strings would redact ordinary words
MIN_FRAGMENT_LEN = 8  # a piece of a wrapped secret; shorter pieces are too common to blank


class Secret:
    """A key or secret. `reveal()` is the only way to the value; repr/str/format are masked."""

    __slots__ = ("_value", "name")

    def __init__(self, value: str, name: str = "secret") -> None:
        self._value = value
        self.name = name
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def fingerprint(self) -> str:
        """Names a key in logs without giving it away: first 8 hex of its SHA-256."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"Secret({self.name}, {MASK})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # never pickled into anything
        raise TypeError("a Secret is not serialisable")


def _forms(s: str) -> set[str]:
    """Every spelling of `s` an error text may carry: raw, URL-quoted, escaped as Python's repr,
    bytes repr or JSON (a header value with a line break is quoted as `...\\n...` by requests),
    and each printable piece of a secret that spans lines or spaces."""
    forms = {s, quote(s, safe=""), s.encode("unicode_escape").decode("ascii"), repr(s)[1:-1],
             repr(s.encode("utf-8", "backslashreplace"))[2:-1], json.dumps(s)[1:-1],
             json.dumps(s, ensure_ascii=False)[1:-1]}
    for piece in re.split(r"[^\x21-\x7e]+", s):
        if len(piece) >= MIN_FRAGMENT_LEN:
            forms |= {piece, quote(piece, safe="")}
    return {f for f in forms if len(f) >= MIN_SECRET_LEN}


def register_secret(value: str) -> None:
    global _variants
    if not value or len(value) < MIN_SECRET_LEN:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        forms: set[str] = set()
        for s in _secrets:
            forms |= _forms(s)
        # Longest first, so a secret containing another is masked whole.
        _variants = tuple(sorted(forms, key=len, reverse=True))


def redact(text: object) -> str:
    """`text` as a string with every registered key/secret masked."""
    s = text if isinstance(text, str) else str(text)
    for v in _variants:
        if v in s:
            s = s.replace(v, MASK)
    return s


_installed = False


def install_log_redaction() -> None:
    """Mask registered secrets in every log record from now on (message, args and exception
    text), whichever logger or handler it goes to. Idempotent; only real venues call it."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not _variants:
            return record
        try:
            msg = record.getMessage()
        except Exception:
            msg = str(record.msg)
        clean = redact(msg)
        if clean != msg or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = str(exc)
            if redact(text) != text:
                # The traceback would print the message: give the record a masked copy.
                record.exc_info = None
                record.exc_text = None
                record.msg = f"{record.msg} [{type(exc).__name__}: {redact(text)}]"
        return record

    logging.setLogRecordFactory(factory)


# -- loading --------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyPair:
    api_key: Secret
    secret: Secret
    env: Env
    source: str  # e.g. "env:BINANCE_TESTNET_API_KEY" or "keyring:svc" (names, never values)

    def __repr__(self) -> str:
        return f"KeyPair(env={self.env}, source={self.source}, key={self.api_key.fingerprint()})"


KeyringGet = Callable[[str, str], "str | None"]


def _keyring_get(service: str, username: str) -> str | None:
    try:
        import keyring  # optional: pip install keyring
    except ImportError:
        return None
    try:
        return keyring.get_password(service, username)
    except Exception:
        return None


def mode_env(mode: str) -> Env:
    return "live" if mode == "live" else "test"


def check_endpoint(venue: VenueSection, mode: str) -> None:
    """Refuse a `base_url` that is not of the mode's environment (nor loopback), before any key
    is read or request sent: a testnet profile aimed at the live API under any of its names
    would otherwise sign its first requests with whatever key the testnet variables hold."""
    if venue.base_url:
        why = endpoint_refusal(venue.name, venue.base_url, mode)
        if why:
            raise EndpointRefused(why)


def _unusable(value: str) -> str | None:
    """Why a pasted key cannot be sent as is. The venues' keys are one line of printable ASCII;
    anything else fails inside the HTTP client, whose error quotes the header value whole."""
    if len(value.splitlines()) > 1:
        return "contains a line break: paste it on one line"
    if any(c.isspace() for c in value):
        return "contains whitespace: paste the key alone, without spaces"
    if any(unicodedata.category(c).startswith("C") for c in value):
        return "contains a control character: paste the key alone"
    if not value.isascii():
        return "contains a character that is not plain ASCII (a typographic quote or dash?): paste the key alone"
    return None


def _shown(var: str) -> str:
    """A variable's name for a message, unless it is shaped like a key (a paste in the wrong place)."""
    return "(a name that looks like a key, not shown)" if looks_like_key(var) else var


def load_keys(venue: VenueSection, mode: str, environ: Mapping[str, str] | None = None,
              keyring_get: KeyringGet | None = None) -> KeyPair:
    """The key pair for `mode` (testnet/paper -> the test pair, live -> the live pair).

    Refuses when the endpoint is not of the mode's environment (`check_endpoint`), when a value
    is missing or not one line of printable ASCII, or when the test and live variables hold the
    same value (one key pasted into both would make a testnet profile trade live)."""
    if venue.name == "paper":
        raise KeyLoadError("the paper venue needs no keys")
    check_endpoint(venue, mode)
    environ = os.environ if environ is None else environ
    names = venue.env_names()
    get_kr = keyring_get or _keyring_get
    service = venue.keys.keyring_service

    def read(env: Env, what: str, check: bool = True) -> tuple[str | None, str]:
        var = names[f"{env}_{what}_env"]
        value, src = (environ.get(var) or "").strip(), f"env:{_shown(var)}"
        if not value and service:
            value, src = (get_kr(service, f"{env}_{what}") or "").strip(), f"keyring:{service}"
        if not value:
            return None, _shown(var)
        why = _unusable(value) if check else None
        if why:
            register_secret(value)  # the refusal names the variable only; this is for anything later
            where = src[4:] if src.startswith("env:") else f"keyring service {service} ({env}_{what})"
            raise KeyLoadError(f"{where} {why}")
        return value, src

    want = mode_env(mode)
    other: Env = "test" if want == "live" else "live"
    key, key_src = read(want, "key")
    sec, sec_src = read(want, "secret")
    label = "live" if want == "live" else ("paper" if venue.name == "alpaca" else "testnet")
    if key is None:
        raise KeyLoadError(f"{key_src} is not set: the {label} API key for venue {venue.name}"
                           + (f" (nor in keyring service {service})" if service else ""))
    if sec is None:
        raise KeyLoadError(f"{sec_src} is not set: the {label} API secret for venue {venue.name}"
                           + (f" (nor in keyring service {service})" if service else ""))
    if key == sec:
        raise KeyLoadError(f"{key_src} and {sec_src} hold the same value: the key and the secret must differ")
    okey, _ = read(other, "key", check=False)  # compared only: a broken pair not in use stops nothing
    osec, _ = read(other, "secret", check=False)
    for mine, theirs in ((key, okey), (key, osec), (sec, okey), (sec, osec)):
        if theirs is not None and mine == theirs:
            raise KeyLoadError(
                f"the {label} and {'testnet/paper' if want == 'live' else 'live'} keys of venue {venue.name} "
                f"hold the same value ({_shown(names[want + '_key_env'])} / {_shown(names[other + '_key_env'])}): "
                "refusing to start")
    install_log_redaction()
    return KeyPair(Secret(key, "api_key"), Secret(sec, "api_secret"), want, key_src)


# -- environment checks ---------------------------------------------------------------------
@dataclass
class EnvironmentReport:
    venue: str
    endpoint: str  # scheme://host of the trading endpoint in use
    endpoint_env: str  # test | live | local | unknown
    account_env: str | None = None  # what the account itself says (Alpaca: PA... = paper), if it tells
    account_status: str = "unknown"
    blocked: bool = False
    can_trade: bool = True
    buying_power: Decimal | None = None
    withdrawals: bool | None = None  # None: the venue did not tell
    warnings: list[str] = field(default_factory=list)


def check_environment(report: EnvironmentReport, mode: str, withdrawal_policy: str = "warn") -> list[str]:
    """Raise EnvironmentMismatch if trading must not start; else the warnings to alert."""
    want = mode_env(mode)
    word = "live" if want == "live" else "testnet/paper"
    if report.endpoint_env in ("test", "live") and report.endpoint_env != want:
        raise EnvironmentMismatch(
            f"{report.venue}: the endpoint {report.endpoint} is {report.endpoint_env} but the profile mode is {mode}")
    if report.endpoint_env == "unknown":
        raise EnvironmentMismatch(
            f"{report.venue}: venue.base_url: {printable_host(report.endpoint)} is not a known {word} endpoint "
            f"nor loopback: refusing to start")
    if report.account_env is not None and report.account_env != want:
        raise EnvironmentMismatch(
            f"{report.venue}: the account is a {report.account_env} account but the profile mode is {mode} "
            f"(a {report.account_env} key with a {word} profile)")
    if report.blocked:
        raise EnvironmentMismatch(f"{report.venue}: the account is blocked (status {report.account_status})")
    if not report.can_trade:
        raise EnvironmentMismatch(f"{report.venue}: the account may not trade (status {report.account_status})")
    warnings = list(report.warnings)
    if report.withdrawals:
        msg = f"{report.venue}: the API key has withdrawal permission; a trading key should not"
        if withdrawal_policy == "refuse":
            raise EnvironmentMismatch(msg)
        warnings.append(msg)
    return warnings


def auth_refused(venue: str, mode: str, detail: str) -> EnvironmentMismatch:
    """The venue refused the key at connect: name the likely cause without the key."""
    want = mode_env(mode)
    where = "live" if want == "live" else ("paper" if venue == "alpaca" else "testnet")
    other = "testnet/paper" if want == "live" else "live"
    return EnvironmentMismatch(
        f"{venue}: the {where} endpoint refused the key ({redact(detail)[:200]}); "
        f"is it a {other} key, or revoked?")
