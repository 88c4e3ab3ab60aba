"""Which environment a venue endpoint belongs to, judged by its host: test, live, local or unknown.

A testnet profile may talk only to the venue's own test hosts or to loopback (an emulator, an SSH
tunnel); a live profile only to the venue's live hosts or loopback. Anything else is refused
before a key is handed to a client, and again at connect: "unknown" must never mean "allowed",
since the live API answers under more names than any list (api-gcp.binance.com, api.bybit.nl,
`api.binance.com.` with the root dot).

Hosts are compared after normalisation (case, trailing dots, IDNA), because the resolver treats
`API.Binance.COM.` or a full-width spelling as the very host the list names. The known hosts are
read from the client libraries where they list them (ccxt's `urls['api'|'test'|'demo']`,
alpaca-py's `BaseURL`), so a library upgrade that adds a host is known here too; a seed covers
the rest, and every host under a live venue domain that is not a known test host counts as live.
"""
from __future__ import annotations

import functools
from typing import Any, Literal
from urllib.parse import urlsplit

from ..venue_config import loopback_host

EndpointEnv = Literal["test", "live", "local", "unknown"]

# The venues' own domains: any host under one of them that is not a known test host is live.
LIVE_DOMAINS = {
    "binance": ("binance.com", "binance.us", "binance.me", "binance.info"),
    "bybit": ("bybit.com", "bytick.com", "bybit.nl", "bybit.com.hk", "bybit.kz", "bybit-tr.com",
              "bybit.eu", "bybitglobal.com", "bybit.ae", "bybitgeorgia.ge"),
    "alpaca": ("alpaca.markets",),
}
SEED_TEST_HOSTS = {
    "binance": ("testnet.binance.vision", "testnet.binancefuture.com", "demo-api.binance.com"),
    "bybit": ("api-testnet.bybit.com", "api-demo.bybit.com"),
    "alpaca": ("paper-api.alpaca.markets", "broker-api.sandbox.alpaca.markets", "data.sandbox.alpaca.markets"),
}
SEED_LIVE_HOSTS = {
    "binance": ("api.binance.com", "api-gcp.binance.com", "api1.binance.com", "api2.binance.com",
                "api3.binance.com", "api4.binance.com"),
    "bybit": ("api.bybit.com", "api.bytick.com"),
    "alpaca": ("api.alpaca.markets",),
}


def normalise_host(host: str) -> str:
    h = host.strip().lower()
    try:
        h = h.encode("idna").decode("ascii")  # full-width letters and dots become what is resolved
    except UnicodeError:
        pass
    return h.rstrip(".").lower()


def url_host(url: str) -> str:
    try:
        return normalise_host(urlsplit(url).hostname or "")
    except ValueError:
        return ""


def printable_host(url: str) -> str:
    """The host for a message: never userinfo, path or query; escapes instead of raw controls."""
    return url_host(url).encode("ascii", "backslashreplace").decode("ascii") or "(no host)"


def _walk_hosts(node: Any, hostname: str | None) -> set[str]:
    if isinstance(node, dict):
        return set().union(*(_walk_hosts(v, hostname) for v in node.values())) if node else set()
    if isinstance(node, (list, tuple)):
        return set().union(*(_walk_hosts(v, hostname) for v in node)) if node else set()
    if isinstance(node, str) and "://" in node:
        h = url_host(node.replace("{hostname}", hostname or "x"))
        return {h} if h and "{" not in node.replace("{hostname}", "") else set()
    return set()


@functools.cache
def _library_hosts(venue: str) -> tuple[frozenset[str], frozenset[str]]:
    """(test, live) hosts as the client library lists them; empty when it cannot be imported."""
    try:
        if venue in ("binance", "bybit"):
            # ccxt is imported anyway when this venue connects; a paper console never gets here.
            import ccxt.async_support as ccxt

            ex = getattr(ccxt, venue)()
            urls, hostname = ex.urls, getattr(ex, "hostname", None)
            test = _walk_hosts(urls.get("test"), hostname) | _walk_hosts(urls.get("demo"), hostname)
            return frozenset(test), frozenset(_walk_hosts(urls.get("api"), hostname) - test)
        if venue == "alpaca":
            from alpaca.common.enums import BaseURL

            test = {url_host(u.value) for u in BaseURL if "paper" in u.name.lower() or "sandbox" in u.name.lower()}
            return frozenset(test), frozenset({url_host(u.value) for u in BaseURL} - test)
    except Exception:  # noqa: BLE001, S110 - the seed still applies
        pass
    return frozenset(), frozenset()


def known_hosts(venue: str) -> tuple[frozenset[str], frozenset[str]]:
    lib_test, lib_live = _library_hosts(venue)
    test = lib_test | set(SEED_TEST_HOSTS.get(venue, ()))
    return frozenset(test), frozenset((lib_live | set(SEED_LIVE_HOSTS.get(venue, ()))) - test)


def endpoint_environment(venue: str, url: str) -> EndpointEnv:
    host = url_host(url)
    if not host:
        return "unknown"
    if loopback_host(host):
        return "local"
    test, live = known_hosts(venue)
    if host in test:
        return "test"
    if host in live or any(host == d or host.endswith("." + d) for d in LIVE_DOMAINS.get(venue, ())):
        return "live"
    return "unknown"


def endpoint_refusal(venue: str, url: str, mode: str, field: str = "venue.base_url") -> str | None:
    """Why a profile of `mode` must not use `url` (one line naming the field and host), or None."""
    want = "live" if mode == "live" else "test"
    env = endpoint_environment(venue, url)
    if env == "local" or env == want:
        return None
    host = printable_host(url)
    word = "live" if want == "live" else ("paper" if venue == "alpaca" else "testnet")
    if env == "unknown":
        test, live = known_hosts(venue)
        allowed = sorted(live if want == "live" else test)[:4]
        return (f"{field}: {host} is not a known {word} host of {venue} (e.g. {', '.join(allowed)}) "
                f"nor loopback: a {mode} profile talks only to those; refusing to start")
    return f"{field}: {host} is {venue}'s {env} API but the profile mode is {mode}: refusing to start"
