"""What keeps a testnet profile off the live API, and keys off the screen.

* Endpoints are judged by host after normalisation (case, trailing dot, IDNA), against the hosts
  the client libraries list and the venues' own domains. A testnet profile runs only at a test
  host or loopback, a live one only at a live host or loopback: anything else is refused before
  any key is read (one line naming `venue.base_url` and the host, exit 2).
* A key or secret that is not one line of printable ASCII is refused naming its variable only,
  and redaction knows the escaped and line-wrapped spellings an error may quote.
* A key pasted where a variable's NAME belongs, or a URL with credentials in it, is refused
  without being printed back.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import build_profile, cli_cmd, cli_env
from emulators.alpaca import AlpacaEmulator

from engine.brokers import keys
from engine.brokers.keys import (
    EnvironmentMismatch,
    EnvironmentReport,
    KeyLoadError,
    Secret,
    check_environment,
    endpoint_environment,
    load_keys,
    redact,
)
from engine.config_loader import ConfigError, load_profile, profile_from_mapping
from engine.venue_config import VenueSection

KEY, SECRET = "safetyKEY0123456789ab", "safetySECRET0123456789ab"
# A secret wrapped by a mail client or a terminal: two halves and a line break.
HALF_A, HALF_B = "sAfEtYfIrStHaLf0123", "SaFeTySeCoNdHaLf4567890"
WRAPPED = f"{HALF_A}\n{HALF_B}"
ALPACA_KEY_ID = "PKZQ3X4VXYZ1234ABCD5"
PASTED = "Zq8SECRETxY7tok3n9"


# -- host classification ------------------------------------------------------------------------
@pytest.mark.parametrize("venue,url,env", [
    ("binance", "https://api.binance.com", "live"),
    ("binance", "https://api.binance.com.", "live"),
    ("binance", "https://API.Binance.COM..", "live"),
    ("binance", "https://api-gcp.binance.com", "live"),
    ("binance", "https://api3.binance.com:443", "live"),
    ("binance", "https://api.binance.us", "live"),
    ("binance", "https://\uff41\uff50\uff49.binance\u3002com", "live"),  # full-width letters and dot
    ("binance", "https://testnet.binance.vision", "test"),
    ("binance", "https://testnet.binance.vision.", "test"),
    ("binance", "https://demo-api.binance.com", "test"),
    ("binance", "https://testnet.binance.com", "live"),  # a test-sounding name is not a test host
    ("binance", "https://api.binance.com.evil.example", "unknown"),
    ("binance", "https://proxy.example.com", "unknown"),
    ("bybit", "https://api.bybit.com.", "live"),
    ("bybit", "https://api.bybit.nl", "live"),
    ("bybit", "https://api.bytick.com", "live"),
    ("bybit", "https://api-testnet.bybit.com", "test"),
    ("bybit", "https://api-demo.bybit.com", "test"),
    ("alpaca", "https://api.alpaca.markets.", "live"),
    ("alpaca", "https://paper-api.alpaca.markets", "test"),
    ("binance", "http://127.0.0.1:8080", "local"),
    ("binance", "http://127.10.0.1:8080", "local"),
    ("bybit", "http://localhost.:8080", "local"),
    ("alpaca", "http://[::1]:8080", "local"),
    ("alpaca", "http://[0:0:0:0:0:0:0:1]:8080", "local"),
    ("binance", "http://[::ffff:127.0.0.1]:8080", "local"),
])
def test_hosts_are_classified_after_normalisation(venue, url, env):
    assert endpoint_environment(venue, url) == env


@pytest.mark.parametrize("venue", ["binance", "bybit"])
def test_every_host_ccxt_lists_is_classified_as_ccxt_says(venue):
    import ccxt.async_support as ccxt

    ex = getattr(ccxt, venue)()
    host = getattr(ex, "hostname", None) or "x"

    def urls(node):
        if isinstance(node, dict):
            return [u for v in node.values() for u in urls(v)]
        return [node.replace("{hostname}", host)] if isinstance(node, str) and "://" in node else []

    assert all(endpoint_environment(venue, u) == "test" for u in urls(ex.urls["test"]))
    assert all(endpoint_environment(venue, u) == "live" for u in urls(ex.urls["api"]))


TESTNET_ENV = {"BINANCE_TESTNET_API_KEY": KEY, "BINANCE_TESTNET_API_SECRET": SECRET,
               "BYBIT_TESTNET_API_KEY": KEY, "BYBIT_TESTNET_API_SECRET": SECRET,
               "ALPACA_PAPER_API_KEY": KEY, "ALPACA_PAPER_API_SECRET": SECRET}


@pytest.mark.parametrize("venue,url,host", [
    ("binance", "https://api.binance.com.", "api.binance.com"),
    ("binance", "https://api-gcp.binance.com", "api-gcp.binance.com"),
    ("bybit", "https://api.bybit.com.", "api.bybit.com"),
    ("bybit", "https://api.bybit.nl", "api.bybit.nl"),
    ("alpaca", "https://api.alpaca.markets.", "api.alpaca.markets"),
    ("binance", "https://proxy.example.com:8443", "proxy.example.com"),
])
def test_a_testnet_profile_at_a_host_that_is_not_a_test_host_is_refused_before_its_keys(venue, url, host):
    with pytest.raises(keys.EndpointRefused) as err:
        load_keys(VenueSection(name=venue, base_url=url), "testnet", {})  # no keys: the endpoint goes first
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("venue.base_url: ") and host in msg and "refusing" in msg
    assert isinstance(err.value, KeyLoadError) and isinstance(err.value, EnvironmentMismatch)


def test_each_mode_keeps_to_its_own_hosts_and_loopback():
    assert load_keys(VenueSection(name="binance", base_url="https://testnet.binance.vision"), "testnet",
                     TESTNET_ENV).env == "test"
    live_env = {"BINANCE_LIVE_API_KEY": "live" + KEY, "BINANCE_LIVE_API_SECRET": "live" + SECRET}
    assert load_keys(VenueSection(name="binance", base_url="https://api-gcp.binance.com"), "live", live_env).env == "live"
    for url in ("https://testnet.binance.vision", "https://proxy.example.com"):
        with pytest.raises(keys.EndpointRefused, match="the profile mode is live|not a known live host"):
            load_keys(VenueSection(name="binance", base_url=url), "live", live_env)
    for url in ("http://127.0.0.1:9", "http://[::1]:9", "http://localhost:9"):
        assert load_keys(VenueSection(name="binance", base_url=url), "testnet", TESTNET_ENV).env == "test"


def test_an_unknown_endpoint_stops_a_testnet_start_at_connect_too():
    with pytest.raises(EnvironmentMismatch, match="venue.base_url: api.bybit.example is not a known"):
        check_environment(EnvironmentReport("bybit", "https://api.bybit.example", "unknown"), "testnet")
    assert check_environment(EnvironmentReport("bybit", "http://127.0.0.1:1", "local"), "testnet") == []


async def test_the_engine_refuses_a_testnet_profile_aimed_at_the_live_api(tmp_path, monkeypatch):
    from test_venues_session import grant

    from engine.engine import Engine
    from engine.venue_wiring import VenueStartError

    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", SECRET)
    profile = build_profile(tmp_path, "tn", mode="testnet", stage="testnet", symbols=["BTC/USDT"],
                            venue={"name": "binance", "base_url": "https://api.binance.com.",
                                   "timeouts": {"retries": 0, "request_seconds": 1}})
    await grant(profile)
    with pytest.raises(VenueStartError, match=r"^binance: venue.base_url: api.binance.com is binance's live API"):
        await Engine.open(profile)


async def test_the_command_line_refuses_it_in_one_line_with_exit_2(tmp_path):
    from test_venues_session import grant

    journal, log = tmp_path / "tn.sqlite", tmp_path / "tn.log"
    path = tmp_path / "tn.yaml"
    path.write_text("name: tn\nmode: testnet\nstage: testnet\nsymbols: [BTC/USDT]\n"
                    "venue:\n  name: bybit\n  base_url: https://api.bybit.nl\n"
                    "  timeouts: {retries: 0, request_seconds: 1}\n"
                    f"journal: {{path: {journal}}}\nlogging: {{path: {log}}}\ncontrol: {{socket: false}}\n")
    await grant(load_profile(path))
    env = {k: v for k, v in cli_env(tmp_path / "home").items() if not k.startswith("BYBIT_")}
    env |= {"BYBIT_TESTNET_API_KEY": KEY, "BYBIT_TESTNET_API_SECRET": SECRET}
    proc = await asyncio.create_subprocess_exec(
        *cli_cmd("run", "--headless", "--profile", str(path), "--duration", "1s"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, err.decode()
    assert "venue.base_url" in lines[0] and "api.bybit.nl" in lines[0]
    _assert_nowhere(tmp_path, out + err, KEY, SECRET)


def _assert_nowhere(folder: Path, output: bytes, *secrets: str) -> None:
    """Not on the screen, not in any file the program wrote (journal, its WAL, the log)."""
    written = [p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".yaml", ".py")]
    for s in secrets:
        assert s.encode() not in output
        assert not [p.name for p in written if s.encode() in p.read_bytes()]


# -- keys that are not one line -----------------------------------------------------------------
@pytest.mark.parametrize("bad,why", [
    (WRAPPED, "contains a line break: paste it on one line"),
    (f"{HALF_A}\r\n{HALF_B}", "contains a line break"),
    (f"{HALF_A} {HALF_B}", "contains whitespace"),
    (f"{HALF_A}\t{HALF_B}", "contains whitespace"),
    (f"{HALF_A}\x00{HALF_B}", "contains a control character"),
    (f"{HALF_A}\u200b{HALF_B}", "contains a control character"),
    (f"{HALF_A}\u2019{HALF_B}", "not plain ASCII"),
])
def test_a_key_that_is_not_one_printable_line_is_refused_by_name(bad, why):
    env = {"ALPACA_PAPER_API_KEY": ALPACA_KEY_ID, "ALPACA_PAPER_API_SECRET": bad}
    with pytest.raises(KeyLoadError) as err:
        load_keys(VenueSection(name="alpaca"), "testnet", env)
    msg = str(err.value)
    assert msg.startswith("ALPACA_PAPER_API_SECRET ") and why in msg and "\n" not in msg
    assert HALF_A not in msg and HALF_B not in msg
    # Leading and trailing whitespace is a paste's usual edge, not part of the key.
    assert load_keys(VenueSection(name="alpaca"), "testnet",
                     {**env, "ALPACA_PAPER_API_SECRET": f"  {SECRET}\n"}).secret.reveal() == SECRET


def test_a_key_from_the_keyring_with_a_line_break_names_the_service():
    store = {("svc", "test_key"): KEY, ("svc", "test_secret"): WRAPPED}
    v = VenueSection(name="binance", keys={"keyring_service": "svc"})
    with pytest.raises(KeyLoadError, match=r"keyring service svc \(test_secret\) contains a line break") as err:
        load_keys(v, "testnet", {}, keyring_get=lambda s, u: store.get((s, u)))
    assert HALF_A not in str(err.value)


def test_redaction_covers_escaped_and_wrapped_spellings():
    Secret(WRAPPED, "api_secret")
    for text in (repr(WRAPPED), json.dumps(WRAPPED), repr(WRAPPED.encode()), WRAPPED.replace("\n", "\\n"),
                 f"header {HALF_A}", f"value {HALF_B} end", f"{{'k': {json.dumps({'s': WRAPPED})}}}"):
        clean = redact(text)
        assert HALF_A not in clean and HALF_B not in clean, clean
    # Pieces below the minimum are not blanked: they would mask ordinary words.
    Secret("abc\n" + "x9Y8w7V6u5T4s3R2", "api_secret")
    assert redact("abc def") == "abc def"


def test_the_header_error_of_a_wrapped_secret_is_redacted():
    import requests.utils

    from engine.brokers.alpaca_errors import classify

    Secret(WRAPPED, "api_secret")
    with pytest.raises(Exception) as err:
        requests.utils.check_header_validity(("APCA-API-SECRET-KEY", WRAPPED))
    assert HALF_A in str(err.value)  # what requests says: the value, escaped, in full
    msg = str(classify(err.value))
    assert HALF_A not in msg and HALF_B not in msg


async def test_a_wrapped_alpaca_secret_stops_the_command_line_without_showing_it(tmp_path):
    emu = await AlpacaEmulator({ALPACA_KEY_ID: HALF_A + HALF_B}).start()
    try:
        path = tmp_path / "alp.yaml"
        path.write_text(f"name: alp\nmode: testnet\nstage: testnet\nsymbols: [AAPL]\n"
                        f"venue:\n  name: alpaca\n  base_url: {emu.url}\n"
                        f"journal: {{path: {tmp_path / 'alp.sqlite'}}}\nlogging: {{path: {tmp_path / 'alp.log'}}}\n"
                        "control: {socket: false}\n")
        env = {k: v for k, v in cli_env(tmp_path / "home").items() if not k.startswith("ALPACA_")}
        env |= {"ALPACA_PAPER_API_KEY": ALPACA_KEY_ID, "ALPACA_PAPER_API_SECRET": WRAPPED}
        proc = await asyncio.create_subprocess_exec(
            *cli_cmd("run", "--headless", "--profile", str(path), "--duration", "1s"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await emu.stop()
    assert proc.returncode == 2
    assert err.decode().strip() == "tradeconsole: alpaca: ALPACA_PAPER_API_SECRET contains a line break: paste it on one line"
    assert emu.requests == []  # refused before anything was sent
    _assert_nowhere(tmp_path, out + err, HALF_A, HALF_B)


# -- a key where a name belongs; a URL with a secret in it --------------------------------------
@pytest.mark.parametrize("name", ["BINANCE_TESTNET_API_KEY", "ALPACA_PAPER_API_KEY", "BYBIT_LIVE_API_SECRET",
                                  "MY_BYBIT_K", "TC_X", "ACCOUNT2024MAINKEY", "BINANCE_SUB1_KEY_2024",
                                  "PKGCONFIG_PATH", "X_2FA_SECRET_V2"])
def test_ordinary_variable_names_are_not_mistaken_for_keys(name):
    from engine.venue_config import looks_like_key

    assert not looks_like_key(name)
    assert VenueSection(name="binance", keys={"test_key_env": name}).keys.test_key_env == name


@pytest.mark.parametrize("field,value", [
    ("test_key_env", ALPACA_KEY_ID), ("live_key_env", "AKABCDEFGHIJKLMNOPQR"), ("test_secret_env", PASTED.upper()),
    ("live_secret_env", "K3Y9ABC7DEF5GHI3JKL1"), ("keyring_service", PASTED),
])
def test_a_key_shaped_value_where_a_name_belongs_is_refused_unseen(field, value):
    with pytest.raises(ConfigError) as err:
        profile_from_mapping({"mode": "testnet", "stage": "testnet", "symbols": ["AAPL"],
                              "venue": {"name": "alpaca", "keys": {field: value}}}, "p.yaml")
    text = "\n".join(err.value.lines)
    assert f"venue.keys.{field}: looks like a key, not a " in text and value not in text


def test_key_shaped_names_are_refused_in_every_env_field():
    data = {"alerts": {"channels": {"phone": {"url_env": ALPACA_KEY_ID}}, "heartbeat": {"url_env": PASTED.upper()}}}
    with pytest.raises(ConfigError) as err:
        profile_from_mapping(data, "p.yaml")
    text = "\n".join(err.value.lines)
    assert "alerts.channels.phone.url_env: looks like a key" in text
    assert "alerts.heartbeat.url_env: looks like a key" in text
    assert ALPACA_KEY_ID not in text and PASTED.upper() not in text


def test_check_config_and_run_do_not_echo_a_key_id_pasted_as_a_name(tmp_path, capsys):
    from console.cli import main

    path = tmp_path / "alp.yaml"
    path.write_text(f"name: alp\nmode: testnet\nstage: testnet\nsymbols: [AAPL]\n"
                    f"venue:\n  name: alpaca\n  keys:\n    test_key_env: {ALPACA_KEY_ID}\n")
    for argv in (["check-config", str(path)], ["run", "--headless", "--profile", str(path), "--duration", "1s"]):
        with pytest.raises(SystemExit) as code:
            main(argv)
        assert code.value.code == 2
    out = capsys.readouterr()
    assert "looks like a key" in out.err and ALPACA_KEY_ID not in out.out + out.err


def test_messages_naming_a_variable_never_print_a_key_shaped_one():
    v = VenueSection(name="alpaca")
    v.keys.test_key_env = ALPACA_KEY_ID  # past the profile check (built in code): still not shown
    with pytest.raises(KeyLoadError) as err:
        load_keys(v, "testnet", {})
    assert "is not set" in str(err.value) and ALPACA_KEY_ID not in str(err.value)


@pytest.mark.parametrize("url,shown", [
    (f"https//user:{PASTED}@proxy.example.com", None),
    (f"ftp://proxy.example.com/{PASTED}", "ftp://"),
    (f"ftp://user:{PASTED}@proxy.example.com", None),
    (f"https://proxy.example.com/?apikey={PASTED}", None),
    (f"https://proxy.example.com/#{PASTED}", None),
    (f"https://proxy.example.com:{PASTED}", None),
    (f"http://{PASTED}:x@127.0.0.1:9", None),
])
def test_a_bad_base_url_is_reported_without_its_text(url, shown):
    for field, venue in (("base_url", "binance"), ("data_url", "alpaca")):
        with pytest.raises(ConfigError) as err:
            profile_from_mapping({"venue": {"name": venue, field: url}}, "p.yaml")
        text = "\n".join(err.value.lines)
        assert f"venue.{field}: must" in text and PASTED not in text and "proxy.example.com" not in text
        assert "user" not in text and (shown is None or shown in text)


def test_check_config_refuses_the_host_run_would_refuse(tmp_path, capsys):
    from console.cli import main

    path = tmp_path / "tn.yaml"
    body = "name: tn\nmode: testnet\nstage: testnet\nsymbols: [BTC/USDT]\nvenue:\n  name: binance\n  base_url: {}\n"
    path.write_text(body.format("https://api.binance.com."))
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "venue.base_url: api.binance.com is binance's live API but the profile mode is testnet" in err
    path.write_text(body.format("https://testnet.binance.vision"))  # the real testnet: valid
    assert main(["check-config", str(path)]) in (0, None)
