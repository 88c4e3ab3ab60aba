"""Keys, redaction, the venue section and the broker factory (no network)."""
from __future__ import annotations

import logging
import subprocess
import sys
from decimal import Decimal
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from conftest import REPO
from engine.brokers.keys import (EnvironmentMismatch, EnvironmentReport, KeyLoadError, Secret, check_environment,
                                 endpoint_environment, install_log_redaction, load_keys, redact)
from engine.brokers.retry import Failure, Retrier, RetryPolicy, TokenBucket, VenueError
from engine.clock import WallClock
from engine.venue_config import VenueSection

TK, TS = "testKEY-aaaaaaaaaaaa", "testSECRET-bbbbbbbbbbbb"
LK, LS = "liveKEY-cccccccccccc", "liveSECRET-dddddddddddd"


def venue(name: str = "binance", **kw) -> VenueSection:
    return VenueSection(name=name, **kw)


# -- loading ---------------------------------------------------------------------------------------
def test_testnet_and_live_keys_come_from_their_own_variables():
    env = {"BINANCE_TESTNET_API_KEY": TK, "BINANCE_TESTNET_API_SECRET": TS,
           "BINANCE_LIVE_API_KEY": LK, "BINANCE_LIVE_API_SECRET": LS}
    test = load_keys(venue(), "testnet", env)
    live = load_keys(venue(), "live", env)
    assert (test.api_key.reveal(), test.secret.reveal(), test.env) == (TK, TS, "test")
    assert (live.api_key.reveal(), live.secret.reveal(), live.env) == (LK, LS, "live")
    assert test.source == "env:BINANCE_TESTNET_API_KEY"
    alp = load_keys(venue("alpaca"), "testnet", {"ALPACA_PAPER_API_KEY": TK, "ALPACA_PAPER_API_SECRET": TS})
    assert alp.env == "test"


def test_profile_names_its_own_variables():
    v = venue("bybit", keys={"test_key_env": "MY_BYBIT_K", "test_secret_env": "MY_BYBIT_S"})
    keys = load_keys(v, "testnet", {"MY_BYBIT_K": TK, "MY_BYBIT_S": TS, "BYBIT_TESTNET_API_KEY": "other-zzzzzz"})
    assert keys.api_key.reveal() == TK


def test_missing_key_names_the_variable_not_a_value():
    with pytest.raises(KeyLoadError, match="BINANCE_TESTNET_API_SECRET is not set"):
        load_keys(venue(), "testnet", {"BINANCE_TESTNET_API_KEY": TK})
    with pytest.raises(KeyLoadError, match="BINANCE_LIVE_API_KEY is not set"):
        load_keys(venue(), "live", {"BINANCE_TESTNET_API_KEY": TK, "BINANCE_TESTNET_API_SECRET": TS})


@pytest.mark.parametrize("live", [{"BINANCE_LIVE_API_KEY": TK, "BINANCE_LIVE_API_SECRET": LS},
                                  {"BINANCE_LIVE_API_KEY": LK, "BINANCE_LIVE_API_SECRET": TS}])
def test_the_same_value_as_test_and_live_key_is_refused(live):
    env = {"BINANCE_TESTNET_API_KEY": TK, "BINANCE_TESTNET_API_SECRET": TS, **live}
    for mode in ("testnet", "live"):
        with pytest.raises(KeyLoadError, match="same value") as ei:
            load_keys(venue(), mode, env)
        assert TK not in str(ei.value) and TS not in str(ei.value)


def test_key_equal_to_secret_is_refused():
    with pytest.raises(KeyLoadError, match="same value"):
        load_keys(venue(), "testnet", {"BINANCE_TESTNET_API_KEY": TK, "BINANCE_TESTNET_API_SECRET": TK})


def test_keyring_fallback_when_the_variables_are_unset():
    store = {("tc/binance", "test_key"): TK, ("tc/binance", "test_secret"): TS}
    v = venue(keys={"keyring_service": "tc/binance"})
    keys = load_keys(v, "testnet", {}, keyring_get=lambda svc, user: store.get((svc, user)))
    assert keys.api_key.reveal() == TK and keys.source == "keyring:tc/binance"
    with pytest.raises(KeyLoadError, match="keyring service tc/binance"):
        load_keys(v, "live", {}, keyring_get=lambda svc, user: store.get((svc, user)))


def test_paper_venue_needs_no_keys():
    with pytest.raises(KeyLoadError):
        load_keys(venue("paper"), "paper", {})


# -- redaction -------------------------------------------------------------------------------------
def test_secret_is_masked_everywhere_but_reveal():
    s = Secret("zzSECRETzz-123456", "api_secret")
    for text in (repr(s), str(s), f"{s}", f"{s!r}", str([s]), str({"k": s})):
        assert "zzSECRETzz-123456" not in text and "***" in text
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s)
    assert s.reveal() == "zzSECRETzz-123456" and len(s.fingerprint()) == 8


def test_redact_masks_registered_secrets_also_url_encoded():
    Secret("abc/def+ghi=jkl123", "k")
    assert redact("x abc/def+ghi=jkl123 y") == "x *** y"
    assert redact("url?k=abc%2Fdef%2Bghi%3Djkl123&z") == "url?k=***&z"
    assert redact("nothing here") == "nothing here"


def test_log_records_are_scrubbed_whatever_logger_and_exception(caplog):
    install_log_redaction()
    Secret("logSECRET-7777777", "k")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("ccxt.anything").debug("headers %s", {"X-MBX-APIKEY": "logSECRET-7777777"})
    try:
        raise RuntimeError("bad key logSECRET-7777777")
    except RuntimeError:
        logging.getLogger("venuetest.x").exception("failed")
    assert "logSECRET-7777777" not in caplog.text
    assert all("logSECRET-7777777" not in r.getMessage() for r in caplog.records)
    assert "RuntimeError: bad key ***" in caplog.text


# -- environment checks ----------------------------------------------------------------------------
def test_endpoint_environment():
    assert endpoint_environment("binance", "https://testnet.binance.vision/api/v3") == "test"
    assert endpoint_environment("binance", "https://api.binance.com/api/v3") == "live"
    assert endpoint_environment("bybit", "https://api-testnet.bybit.com") == "test"
    assert endpoint_environment("alpaca", "https://paper-api.alpaca.markets") == "test"
    assert endpoint_environment("alpaca", "https://api.alpaca.markets") == "live"
    assert endpoint_environment("alpaca", "http://127.0.0.1:8080") == "local"
    assert endpoint_environment("binance", "https://proxy.example.com") == "unknown"


def test_check_environment_refuses_mismatches():
    ok = EnvironmentReport("alpaca", "https://paper-api.alpaca.markets", "test", account_env="test",
                           buying_power=Decimal(1))
    assert check_environment(ok, "testnet") == []
    with pytest.raises(EnvironmentMismatch, match="endpoint .* is test but the profile mode is live"):
        check_environment(ok, "live")
    live_acct = EnvironmentReport("alpaca", "http://127.0.0.1:1", "local", account_env="live")
    with pytest.raises(EnvironmentMismatch, match="live account but the profile mode is testnet"):
        check_environment(live_acct, "testnet")
    with pytest.raises(EnvironmentMismatch, match="blocked"):
        check_environment(EnvironmentReport("alpaca", "x", "local", blocked=True, account_status="SUSPENDED"), "testnet")
    with pytest.raises(EnvironmentMismatch, match="not a known live endpoint"):
        check_environment(EnvironmentReport("binance", "https://proxy.example.com", "unknown"), "live")
    w = EnvironmentReport("bybit", "x", "local", withdrawals=True)
    assert any("withdrawal" in m for m in check_environment(w, "testnet", "warn"))
    with pytest.raises(EnvironmentMismatch, match="withdrawal"):
        check_environment(w, "testnet", "refuse")


# -- the venue section -----------------------------------------------------------------------------
def test_venue_section_defaults_and_validation():
    v = VenueSection()
    assert v.name == "paper" and v.timeouts.request_seconds == 10
    assert venue("bybit").env_names()["live_key_env"] == "BYBIT_LIVE_API_KEY"
    with pytest.raises(ValidationError, match="different environment variables"):
        venue(keys={"test_key_env": "SAME", "live_key_env": "SAME"})
    with pytest.raises(ValidationError, match="plain http is only allowed to a loopback host"):
        venue(base_url="http://example.com")
    with pytest.raises(ValidationError, match="must not carry credentials"):
        venue(base_url="https://user:pw@example.com")
    with pytest.raises(ValidationError, match="must not carry credentials") as bad_scheme:
        venue(base_url="ftp://user:hunter2@example.com")  # wrong scheme too: the URL is not echoed
    assert "hunter2" not in str(bad_scheme.value)
    with pytest.raises(ValidationError, match="only alpaca"):
        venue(data_url="http://127.0.0.1:1")
    with pytest.raises(ValidationError):
        venue(api_key="pasted-key")  # no key in YAML: unknown field
    with pytest.raises(ValidationError):
        venue(timeouts={"retries": True})  # a yes/no is not a number
    assert venue(base_url="http://127.0.0.1:9999").base_url == "http://127.0.0.1:9999"


# -- retry -----------------------------------------------------------------------------------------
async def test_retrier_backs_off_bounded_and_counts():
    sleeps: list[float] = []
    seen: list[Failure] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    r = Retrier(RetryPolicy(retries=3, base_seconds=0.1, max_seconds=0.3), lambda k, w: seen.append(k), sleep=fake_sleep)
    calls = 0

    async def flaky():
        nonlocal calls
        calls += 1
        raise VenueError(Failure.TRANSIENT if calls % 2 else Failure.RATE_LIMIT, "x")

    with pytest.raises(VenueError):
        await r.run("x", flaky)
    assert calls == 4 and len(sleeps) == 3 and all(0 < s <= 0.3 for s in sleeps)
    assert seen == [Failure.TRANSIENT, Failure.RATE_LIMIT, Failure.TRANSIENT, Failure.RATE_LIMIT]

    async def final():
        raise VenueError(Failure.FINAL, "insufficient")

    with pytest.raises(VenueError):
        await r.run("y", final)
    assert len(sleeps) == 3  # no retry of a final error


async def test_token_bucket_bursts_then_paces():
    t = [0.0]
    b = TokenBucket(5, 10, lambda: t[0])
    waits: list[float] = []

    async def fake_sleep(s: float) -> None:
        waits.append(s)
        t[0] += s

    for _ in range(5):
        await b.take(1, fake_sleep)
    assert waits == []
    await b.take(1, fake_sleep)
    assert waits and abs(sum(waits) - 0.1) < 1e-9


# -- factory ---------------------------------------------------------------------------------------
def profile(name: str, mode: str, **venue_kw) -> SimpleNamespace:
    from engine.profile import PaperConfig

    return SimpleNamespace(venue=VenueSection(name=name, **venue_kw), mode=mode, symbols=["BTC/USDT"],
                           paper=PaperConfig())


def test_factory_builds_each_venue_without_loading_the_client_library():
    from engine.brokers.alpaca_broker import AlpacaBroker
    from engine.brokers.ccxt_broker import CcxtBroker
    from engine.brokers.factory import build_broker
    from engine.brokers.paper import PaperBroker

    clock = WallClock()
    assert isinstance(build_broker(profile("paper", "paper"), clock), PaperBroker)
    env = {"BINANCE_TESTNET_API_KEY": TK, "BINANCE_TESTNET_API_SECRET": TS,
           "BYBIT_LIVE_API_KEY": LK, "BYBIT_LIVE_API_SECRET": LS,
           "ALPACA_PAPER_API_KEY": TK, "ALPACA_PAPER_API_SECRET": TS}
    b = build_broker(profile("binance", "testnet"), clock, environ=env)
    assert isinstance(b, CcxtBroker) and b.mode == "testnet"
    assert isinstance(build_broker(profile("bybit", "live"), clock, environ=env), CcxtBroker)
    assert isinstance(build_broker(profile("alpaca", "testnet"), clock, environ=env), AlpacaBroker)
    with pytest.raises(KeyLoadError):
        build_broker(profile("bybit", "testnet"), clock, environ=env)
    with pytest.raises(ValueError, match="needs a real venue"):
        build_broker(profile("paper", "live"), clock)
    with pytest.raises(ValueError, match="mode paper trades the paper broker"):
        build_broker(profile("binance", "paper"), clock, environ=env)


def test_importing_the_venue_modules_loads_no_client_library():
    code = ("import sys, engine.brokers.factory, engine.brokers.ccxt_broker, engine.brokers.alpaca_broker, "
            "engine.brokers.keys, engine.brokers.retry, engine.venue_config; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ccxt', 'alpaca', 'aiohttp', 'requests')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
