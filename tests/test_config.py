"""Profiles: the shipped files validate, the built-in defaults are the checklists' numbers, and every
problem in a profile is one clear line naming the file, the key and what is wrong."""
from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from conftest import REPO, cli_cmd, cli_env
from engine.config_loader import ConfigError, effective_yaml, load_profile, preflight, profile_from_mapping
from engine.profile import Profile

CONFIGS = sorted((REPO / "config").glob("*.yaml"))


def problems(text: str, tmp: Path, monkeypatch: pytest.MonkeyPatch, name: str = "x.yaml") -> list[str]:
    """Load `text` as config/<name> (relative, as a user would type it); return the error lines."""
    monkeypatch.chdir(tmp)
    (tmp / "config").mkdir(exist_ok=True)
    (tmp / "config" / name).write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_profile(f"config/{name}")
    assert str(exc.value) == "\n".join(exc.value.lines)
    return exc.value.lines


# -- shipped profiles and defaults --------------------------------------------------------------
def test_there_are_shipped_profiles():
    names = {p.name for p in CONFIGS}
    assert {"paper.yaml", "paper-auto.yaml", "testnet.yaml", "alpaca-paper.yaml", *STAGE_FILES} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_profile_validates(path: Path):
    profile = load_profile(path)
    assert profile.name
    assert profile.mode in ("paper", "testnet", "live")
    # the effective config it prints is itself a valid profile, equal to the one loaded
    again = profile_from_mapping(yaml.safe_load(effective_yaml(profile)), "effective")
    assert again == profile


def test_shipped_paper_profiles_are_paper_on_the_sim_market():
    paper = load_profile(REPO / "config" / "paper.yaml")
    auto = load_profile(REPO / "config" / "paper-auto.yaml")
    assert paper.mode == auto.mode == "paper"
    assert paper.approval.required is True
    assert auto.approval.required is False


def test_built_in_defaults_are_the_checklists_numbers():
    p = load_profile(None)
    assert p == Profile()
    r = p.risk
    assert r.max_open_positions == 5
    assert r.max_trades_per_day == 20
    assert r.max_trades_per_hour == 5
    assert r.min_seconds_between_trades == 60
    assert r.min_edge == 0.08
    assert r.min_confidence == 0.7
    assert r.max_consecutive_losses == 5
    assert r.drawdown_pause_pct == 15 and r.drawdown_stop_pct == 25
    assert r.daily_loss_pct == 2
    assert r.risk_per_trade_pct == 1
    assert r.max_position_pct == 10
    assert r.cash_reserve_pct == 25
    assert r.stop_loss_default_pct == 8 and r.stop_loss_min_pct == 5 and r.stop_loss_max_pct == 15
    assert p.approval.timeout_seconds == 1800
    # and the conservative posture: paper, on the simulated market, every order approved by hand
    assert p.mode == "paper" and p.venue.name == "paper" and p.feed.kind == "sim"
    assert p.approval.required is True
    for value in (r.drawdown_pause_pct, r.daily_loss_pct, r.risk_per_trade_pct, r.max_position_pct,
                  r.cash_reserve_pct, r.stop_loss_default_pct, p.paper.starting_cash):
        assert type(value) is Decimal


@pytest.mark.parametrize("text", ["", "# nothing set\n", "---\n", "\n\n   \n"])
def test_an_empty_profile_file_is_refused(tmp_path, monkeypatch, text):
    # Given by name, an empty file is a mistake (a wrong path, a half-written copy): taken as the
    # built-in profile it traded on the default paper journal under someone else's name.
    assert problems(text, tmp_path, monkeypatch) == ["config/x.yaml: the file is empty: expected a mapping of settings"]


def test_an_explicit_empty_mapping_means_defaults(tmp_path):
    f = tmp_path / "defaults.yaml"
    f.write_text("{}  # every default\n")
    assert load_profile(f) == Profile()


def test_decimal_settings_stay_exact():
    p = profile_from_mapping({"risk": {"daily_loss_pct": 2.3}, "paper": {"starting_cash": "1234.56"}})
    assert p.risk.daily_loss_pct == Decimal("2.3")
    assert p.paper.starting_cash == Decimal("1234.56")


# -- one line per problem -------------------------------------------------------------------------
def test_negative_limit_is_one_exact_line(tmp_path, monkeypatch):
    assert problems("risk:\n  max_open_positions: -3\n", tmp_path, monkeypatch) == [
        "config/x.yaml: risk.max_open_positions: must be >= 1 (got -3)"]


@pytest.mark.parametrize("value, error", [
    ("1", None),
    ("0", "config/x.yaml: risk.max_open_positions: must be >= 1 (got 0)"),
])
def test_max_open_positions_boundary(tmp_path, monkeypatch, value, error):
    text = f"risk:\n  max_open_positions: {value}\n"
    if error is None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "ok.yaml").write_text(text)
        assert load_profile("ok.yaml").risk.max_open_positions == int(value)
    else:
        assert problems(text, tmp_path, monkeypatch) == [error]


def test_unknown_keys_are_named(tmp_path, monkeypatch):
    lines = problems("risk:\n  max_open_position: 3\nfoo: 1\n", tmp_path, monkeypatch)
    assert len(lines) == 2
    assert lines[0].startswith("config/x.yaml: risk.max_open_position: unknown key")
    assert lines[1].startswith("config/x.yaml: foo: unknown key")


def test_every_problem_gets_its_own_line(tmp_path, monkeypatch):
    lines = problems("risk:\n  max_open_positions: abc\n  min_edge: 2\n", tmp_path, monkeypatch)
    assert len(lines) == 2
    assert lines[0].startswith("config/x.yaml: risk.max_open_positions: ") and "'abc'" in lines[0]
    assert lines[1] == "config/x.yaml: risk.min_edge: must be <= 1.0 (got 2)"


@pytest.mark.parametrize("text, line", [
    ("risk:\n  stop_loss_default_pct: 20\n",
     "config/x.yaml: risk.stop_loss_default_pct: must be within 5..15 (got 20)"),
    ("risk:\n  stop_loss_default_pct: 4.99\n",
     "config/x.yaml: risk.stop_loss_default_pct: must be within 5..15 (got 4.99)"),
    ("risk:\n  stop_loss_min_pct: 16\n",
     "config/x.yaml: risk.stop_loss_min_pct: must be <= stop_loss_max_pct (15) (got 16)"),
    ("risk:\n  drawdown_pause_pct: 25\n",
     "config/x.yaml: risk.drawdown_pause_pct: must be below drawdown_stop_pct (25) (got 25)"),
    ("risk:\n  drawdown_pause_pct: 30\n",
     "config/x.yaml: risk.drawdown_pause_pct: must be below drawdown_stop_pct (25) (got 30)"),
    ("sizing:\n  min_order_usd: 5000.01\n",
     "config/x.yaml: sizing.min_order_usd: must be <= max_order_usd (5000) (got 5000.01)"),
    ("risk:\n  max_trades_per_hour: 21\n",
     "config/x.yaml: risk.max_trades_per_hour: must be <= max_trades_per_day (20) (got 21)"),
    ("strategy:\n  fast_period: 21\n",
     "config/x.yaml: strategy.fast_period: must be below slow_period (21) (got 21)"),
    ("feed:\n  kind: csv\n", "config/x.yaml: feed.csv_path: required when kind is csv"),
    ("symbols: [BTC/USD, BTC/USD]\n", "config/x.yaml: symbols: contains duplicates"),
    ("mode: live\n", "config/x.yaml: mode: live needs a real venue; venue.name is paper"),
])
def test_inconsistent_limits_are_one_clear_line(tmp_path, monkeypatch, text, line):
    assert problems(text, tmp_path, monkeypatch) == [line]


def test_every_inconsistency_gets_its_own_line_in_one_run(tmp_path, monkeypatch):
    # Not the first one only: fixing a profile one error per run is how limits get fudged.
    lines = problems("risk:\n  stop_loss_min_pct: 16\n  drawdown_pause_pct: 30\n  max_trades_per_hour: 21\n"
                     "  correlated_groups: {majors: [BTC/USD]}\n"
                     "strategy:\n  fast_period: 21\n  timeframes: [60, 0]\n", tmp_path, monkeypatch)
    assert sorted(lines) == sorted([
        "config/x.yaml: risk.stop_loss_min_pct: must be <= stop_loss_max_pct (15) (got 16)",
        "config/x.yaml: risk.drawdown_pause_pct: must be below drawdown_stop_pct (25) (got 30)",
        "config/x.yaml: risk.max_trades_per_hour: must be <= max_trades_per_day (20) (got 21)",
        "config/x.yaml: risk.correlated_groups.majors: a group needs at least two symbols",
        "config/x.yaml: strategy.fast_period: must be below slow_period (21) (got 21)",
        "config/x.yaml: strategy.timeframes: every timeframe must be > 0 seconds",
    ])


@pytest.mark.parametrize("mapping", [
    {"risk": {"stop_loss_default_pct": 5}},
    {"risk": {"stop_loss_default_pct": 15}},
    {"risk": {"drawdown_pause_pct": "24.99"}},
    {"sizing": {"min_order_usd": 5000}},
    {"risk": {"max_trades_per_hour": 20}},
])
def test_limits_at_their_consistency_boundary_are_accepted(mapping):
    profile_from_mapping(mapping)


@pytest.mark.parametrize("text, where, noticed", [
    ("name: a\nrisk:\n  max_open_positions: 3\n   min_edge: 0.1\n", "line 4", ""),
    # The line to fix, not the line after it where YAML noticed: an unclosed bracket or quote,
    # a key with no ':' followed by another key.
    ("name: a\nrisk: [1, 2\nfeed: {}\n", "line 2", " (while parsing a flow sequence; noticed at line 3)"),
    ("risk:\n  min_edge: \"0.1\n  max_open_positions: 3\n", "line 2",
     " (while scanning a quoted scalar; noticed at line 4)"),
    ("name: a\nrisk:\n  min_edge: 0.1\n  max_open_positions 3\napproval:\n  required: true\n", "line 4",
     " (while scanning a simple key; noticed at line 5)"),
    ("risk:\n\tmax_open_positions: 3\n", "line 2", ""),
])
def test_yaml_syntax_error_names_the_line(tmp_path, monkeypatch, text, where, noticed):
    (line,) = problems(text, tmp_path, monkeypatch)
    assert line.startswith(f"config/x.yaml: {where}, column ")
    assert "YAML syntax error" in line and line.endswith(noticed)


@pytest.mark.parametrize("text, fragment", [
    ("- a\n- b\n", "expected a mapping"),
    ("just words\n", "expected a mapping"),
])
def test_top_level_must_be_a_mapping(tmp_path, monkeypatch, text, fragment):
    (line,) = problems(text, tmp_path, monkeypatch)
    assert line.startswith("config/x.yaml: ") and fragment in line


@pytest.mark.parametrize("text, where", [
    ("? [a, b]\n: 1\n", "line 1, column 3"),
    ("risk:\n  ? {max_open_positions: 3}\n  : 1\n", "line 2, column 5"),
])
def test_a_key_that_is_a_list_or_mapping_is_a_yaml_error(tmp_path, monkeypatch, text, where):
    assert problems(text, tmp_path, monkeypatch) == [
        f"config/x.yaml: {where}: YAML error: a key must be a plain string, not a list or mapping"]


def test_missing_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as exc:
        load_profile("nope.yaml")
    assert exc.value.lines == ["nope.yaml: no such file"]


def test_a_profile_that_is_not_utf8_or_is_a_folder_says_where_and_what(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # A Latin-1 e-acute on line 3: where it is, not just "UnicodeDecodeError".
    (tmp_path / "latin.yaml").write_bytes(b"risk:\n  max_open_positions: 3\nname: caf\xe9\n")
    with pytest.raises(ConfigError) as exc:
        load_profile("latin.yaml")
    assert exc.value.lines == ["latin.yaml: line 3: not UTF-8 text (byte 0xe9); save the profile as UTF-8"]
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(ConfigError) as exc:
        load_profile("folder.yaml")
    assert exc.value.lines == ["folder.yaml: is a directory, not a profile file"]


def test_relative_csv_path_is_found_beside_the_profile(tmp_path, monkeypatch):
    d = tmp_path / "profiles"
    d.mkdir()
    (d / "replay.yaml").write_text("feed:\n  kind: csv\n  csv_path: data/q.csv\n")
    monkeypatch.chdir(tmp_path)
    assert load_profile("profiles/replay.yaml").feed.csv_path == str(d / "data" / "q.csv")


def test_every_relative_path_in_a_profile_is_found_beside_it(tmp_path, monkeypatch):
    # Started from another folder, a journal path taken from the current directory opened a fresh
    # empty journal: no halt latch, no positions.
    d = tmp_path / "profiles"
    d.mkdir()
    (d / "p.yaml").write_text("journal:\n  path: state/p.sqlite\nlogging:\n  path: ../logs/p.log\n"
                              "control:\n  socket_path: run/p.sock\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    p = load_profile("../profiles/p.yaml")
    assert p.journal.path == str(d / "state" / "p.sqlite")
    assert p.logging.path == str(tmp_path / "logs" / "p.log")
    assert p.control.socket_path == str(d / "run" / "p.sock")


def test_a_home_relative_path_in_a_profile_expands_to_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    (tmp_path / "p.yaml").write_text("journal:\n  path: ~/j.sqlite\nfeed:\n  kind: csv\n  csv_path: ~/q.csv\n")
    p = load_profile(tmp_path / "p.yaml")
    assert (p.journal.path, p.feed.csv_path) == (str(tmp_path / "me" / "j.sqlite"), str(tmp_path / "me" / "q.csv"))


def test_check_config_prints_the_paths_the_run_would_use(tmp_path):
    d = tmp_path / "profiles"
    d.mkdir()
    (d / "p.yaml").write_text("name: p\njournal:\n  path: state/p.sqlite\n")
    res = run_cli(tmp_path, "check-config", "profiles/p.yaml")
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(res.stdout)["journal"]["path"] == str(d / "state" / "p.sqlite")
    comments = [line for line in res.stdout.splitlines() if line.startswith("# ")]
    assert f"# journal: {d / 'state' / 'p.sqlite'}" in comments
    assert f"# log file: {d / 'state' / 'p.log'}" in comments
    assert f"# control socket: {d / 'state' / 'run' / 'p.sock'}" in comments


def test_duplicate_key_is_refused(tmp_path, monkeypatch):
    lines = problems("risk:\n  max_open_positions: 2\n  max_open_positions: 50\n", tmp_path, monkeypatch)
    assert len(lines) == 1 and "max_open_positions" in lines[0]


def test_a_boolean_is_not_a_count(tmp_path, monkeypatch):
    lines = problems("risk:\n  max_open_positions: yes\n", tmp_path, monkeypatch)
    assert len(lines) == 1 and "risk.max_open_positions" in lines[0]


# -- the CLI ------------------------------------------------------------------------------------
def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, cwd=tmp_path,
                          env=cli_env(tmp_path / "home"), timeout=60)


def test_check_config_bad_file_exits_2_without_traceback(tmp_path):
    (tmp_path / "bad.yaml").write_text("risk:\n  max_open_positions: -3\n  min_edge: 7\nbogus: 1\n")
    res = run_cli(tmp_path, "check-config", "bad.yaml")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines == [
        "bad.yaml: risk.max_open_positions: must be >= 1 (got -3)",
        "bad.yaml: risk.min_edge: must be <= 1.0 (got 7)",
        "bad.yaml: bogus: unknown key (check the spelling; unknown keys are refused so no limit is lost)",
    ]
    assert res.stdout == ""


def test_check_config_yaml_error_and_missing_file(tmp_path):
    (tmp_path / "syntax.yaml").write_text("risk:\n  a: 1\n   b: 2\n")
    res = run_cli(tmp_path, "check-config", "syntax.yaml")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith("syntax.yaml: line 3, column ")
    res = run_cli(tmp_path, "check-config", "missing.yaml")
    assert (res.returncode, res.stderr) == (2, "missing.yaml: no such file\n")


def test_check_config_good_file_prints_effective_config(tmp_path):
    src = REPO / "config" / "paper-auto.yaml"
    res = run_cli(tmp_path, "check-config", str(src))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"# {src}: valid (paper profile 'paper-auto')")
    effective = yaml.safe_load(res.stdout)
    assert profile_from_mapping(effective) == load_profile(src)
    assert effective["risk"]["max_open_positions"] == 5


def test_a_key_in_a_profile_is_refused_without_echoing_it(tmp_path):
    import subprocess
    import sys

    prof = tmp_path / "k.yaml"
    prof.write_text("venue:\n  name: paper\n  api_key: AKIA-SECRET-VALUE-123\n  secret: s3cr3t-value\n")
    res = subprocess.run([sys.executable, "-m", "console", "check-config", str(prof)], capture_output=True, text=True)
    assert res.returncode == 2
    assert "AKIA-SECRET-VALUE-123" not in res.stderr + res.stdout and "s3cr3t-value" not in res.stderr + res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2 and all("environment variables" in line for line in lines)


@pytest.mark.parametrize("where, field", [
    (("venue", "keys"), "test_key_env"),
    (("venue", "keys"), "live_secret_env"),
    (("alerts", "heartbeat"), "url_env"),
])
def test_a_secret_pasted_where_its_variable_name_belongs_is_never_echoed(where, field):
    # The likeliest mistake in these fields is the value itself (a key, a token-bearing URL).
    pasted = "tgram://123456789:AAEh-pasted-token/9876" if field == "url_env" else "FAKEKEYVALUEzzq7777SECRET"
    section = {"name": "binance", "keys": {field: pasted}} if where[0] == "venue" else {"heartbeat": {field: pasted}}
    with pytest.raises(ConfigError) as exc:
        profile_from_mapping({where[0]: section}, "p.yaml")
    assert exc.value.lines == [f"p.yaml: {'.'.join(where)}.{field}: must be the NAME of an environment variable "
                               "(capitals, digits, _), not its value: the value stays in the environment"]
    assert "pasted" not in str(exc.value) and "FAKEKEY" not in str(exc.value)


def test_the_console_key_map_is_not_taken_for_a_secret():
    with pytest.raises(ConfigError) as exc:
        profile_from_mapping({"keys": {"approve": 5}}, "p.yaml")
    assert exc.value.lines == ["p.yaml: keys.approve: input should be a valid string (got 5)"]


def test_a_wrong_shape_under_keys_says_what_was_expected_without_the_value():
    with pytest.raises(ConfigError) as exc:
        profile_from_mapping({"venue": {"name": "binance", "keys": "AKIA-LIVE-KEY-9"}}, "p.yaml")
    assert exc.value.lines == ["p.yaml: venue.keys: input should be a valid dictionary or instance of VenueKeys "
                               "(the value is not shown: it may be a secret)"]


def test_a_real_venue_without_its_keys_is_refused_in_one_line(tmp_path):
    import os
    import subprocess
    import sys

    prof = tmp_path / "bn.yaml"
    prof.write_text("name: bn\nmode: testnet\nstage: testnet\nvenue:\n  name: binance\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
    res = subprocess.run([sys.executable, "-m", "console", "run", "--headless", "--profile", str(prof)],
                         capture_output=True, text=True, env=dict(env, TRADECONSOLE_HOME=str(tmp_path)), timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr == ("tradeconsole: binance: BINANCE_TESTNET_API_KEY is not set: the testnet API key "
                          "for venue binance\n")
    assert not (tmp_path / "bn.sqlite").exists()  # refused before anything was opened


# -- real venues and stages ----------------------------------------------------------------------
STAGE_FILES = {"live-micro.yaml": ("micro", 500, 10), "live-small.yaml": ("small", 1000, 50),
               "live-medium.yaml": ("medium", 2500, 100), "live-standard.yaml": ("standard", 5000, 200)}


def test_the_stage_profiles_carry_the_checklists_caps():
    testnet = load_profile(REPO / "config" / "testnet.yaml")
    assert (testnet.mode, testnet.stage, testnet.venue.name, testnet.feed.kind) == ("testnet", "testnet", "binance", "venue")
    assert testnet.venue.base_url is None  # the real testnet unless the user points it elsewhere
    for name, (stage, cap, pos) in STAGE_FILES.items():
        p = load_profile(REPO / "config" / name)
        assert (p.mode, p.stage, p.feed.kind) == ("live", stage, "venue"), name
        limits = p.stage_limits()
        assert (limits.max_capital_usd, limits.max_position_usd) == (Decimal(cap), Decimal(pos)), name
        assert p.sizing.max_order_usd <= limits.max_position_usd and p.risk.max_total_capital_usd == cap
        # One account, one journal: every live stage file is the same profile at another stage.
        assert p.name == "live" and p.venue.base_url is None
    assert load_profile(REPO / "config" / "alpaca-paper.yaml").market_hours.calendar == "XNYS"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_profiles_name_key_variables_never_values(path: Path):
    profile = load_profile(path)
    names = profile.venue.env_names() if profile.venue.name != "paper" else {}
    for var in names.values():
        assert var.isupper() and var.endswith(("_KEY", "_SECRET")), var
    data = yaml.safe_load(path.read_text())
    keys = (data.get("venue") or {}).get("keys") or {}
    assert all(k.endswith("_env") or k == "keyring_service" for k in keys), keys


@pytest.mark.parametrize(("text", "line"), [
    ("mode: testnet\nvenue:\n  name: binance\nfeed:\n  kind: sim\n",
     "config/x.yaml: feed.kind: a real venue (binance) trades on its own quotes: use venue (or leave feed.kind out), "
     "not sim"),
    ("feed:\n  kind: venue\n", "config/x.yaml: feed.kind: venue quotes need a real venue; venue.name is paper"),
])
def test_the_feed_follows_the_venue(tmp_path, monkeypatch, text, line):
    assert problems(text, tmp_path, monkeypatch) == [line]


def test_a_venue_profile_gets_the_venue_feed_by_default(tmp_path):
    p = profile_from_mapping({"mode": "testnet", "venue": {"name": "bybit"}, "feed": {"tick_seconds": 3}})
    assert p.feed.kind == "venue" and p.feed.tick_seconds == 3


# -- values that validated but broke the run -------------------------------------------------------
@pytest.mark.parametrize("zone", ["Mars/Olympus", "utc", "America", "../etc/passwd", "/etc/localtime", ""])
def test_an_unknown_time_zone_is_one_line(tmp_path, monkeypatch, zone):
    assert problems(f"venue:\n  timezone: {zone!r}\n", tmp_path, monkeypatch) == [
        f"config/x.yaml: venue.timezone: unknown time zone: expected an IANA name such as America/New_York "
        f"(got {zone!r})"]


def test_a_known_time_zone_is_accepted():
    assert profile_from_mapping({"venue": {"timezone": "Europe/Berlin"}}).venue.timezone == "Europe/Berlin"


@pytest.mark.parametrize("seed, line", [
    ("9223372036854775808", "config/x.yaml: feed.seed: must be <= 9223372036854775807 (got 9223372036854775808)"),
    ("-9223372036854775809", "config/x.yaml: feed.seed: must be >= -9223372036854775808 (got -9223372036854775809)"),
])
def test_a_seed_the_journal_cannot_hold_is_one_line(tmp_path, monkeypatch, seed, line):
    assert problems(f"feed:\n  seed: {seed}\n", tmp_path, monkeypatch) == [line]


@pytest.mark.parametrize("seed", [-5, 0, 2**63 - 1, -(2**63)])
def test_seeds_the_journal_can_hold_are_accepted(seed):
    import orjson

    assert orjson.dumps(profile_from_mapping({"feed": {"seed": seed}}).model_dump(mode="json"))



def test_infinity_and_nan_never_switch_a_limit_off(tmp_path, monkeypatch):
    lines = problems("risk:\n  max_data_age_seconds: .inf\napproval:\n  timeout_seconds: .inf\n"
                     "feed:\n  speed: .nan\nalerts:\n  coalesce_seconds: -.inf\n", tmp_path, monkeypatch)
    assert sorted(lines) == sorted([
        "config/x.yaml: risk.max_data_age_seconds: must be a finite number (got inf)",
        "config/x.yaml: approval.timeout_seconds: must be a finite number (got inf)",
        "config/x.yaml: feed.speed: must be a finite number (got nan)",
        "config/x.yaml: alerts.coalesce_seconds: must be a finite number (got -inf)",
    ])


@pytest.mark.parametrize("speed, line", [
    ("1e-300", "config/x.yaml: feed.speed: must be 0 (as fast as possible) or at least 0.01 (got 1e-300)"),
    ("0.009", "config/x.yaml: feed.speed: must be 0 (as fast as possible) or at least 0.01 (got 0.009)"),
    ("2000000", "config/x.yaml: feed.speed: must be <= 1000000.0 (got 2000000)"),
])
def test_a_speed_that_would_never_end_or_mean_nothing_is_refused(tmp_path, monkeypatch, speed, line):
    assert problems(f"feed:\n  speed: {speed}\n", tmp_path, monkeypatch) == [line]


@pytest.mark.parametrize("speed", [0, 0.01, 1, 1_000_000])
def test_speeds_at_their_bounds_are_accepted(speed):
    assert profile_from_mapping({"feed": {"speed": speed}}).feed.speed == speed


# -- what the schema cannot see, checked with the code a run uses ---------------------------------------
def test_preflight_names_a_missing_or_malformed_replay_file(tmp_path):
    (tmp_path / "bad.csv").write_text("timestamp,symbol,price\n1767571200,BTC/USD,abc\n")
    for csv, problem in (("nope.csv", f"{tmp_path / 'nope.csv'}: cannot read: No such file or directory"),
                         ("bad.csv", f"{tmp_path / 'bad.csv'}:")):
        (tmp_path / "p.yaml").write_text(f"feed:\n  kind: csv\n  csv_path: {csv}\n")
        (line,) = preflight(load_profile(tmp_path / "p.yaml"), "p.yaml")
        assert line.startswith(f"p.yaml: feed.csv_path: {problem}"), line


# exchange_calendars (not ours) reads Series.values, which pandas 3.1 deprecates, when it builds XNYS.
@pytest.mark.filterwarnings("ignore:Series.values returning an ndarray:DeprecationWarning")
def test_preflight_passes_a_usable_replay_file_and_a_known_calendar(tmp_path):
    (tmp_path / "p.yaml").write_text(f"feed:\n  kind: csv\n  csv_path: {REPO / 'tests' / 'data' / 'bars-2sym-8h.csv'}\n"
                                     "market_hours:\n  calendar: XNYS\n")
    assert preflight(load_profile(tmp_path / "p.yaml"), "p.yaml") == []


def test_preflight_names_an_unknown_exchange_calendar():
    profile = profile_from_mapping({"market_hours": {"calendar": "ZZZZ"}})
    assert preflight(profile, "p.yaml") == ["p.yaml: market_hours.calendar: unknown exchange calendar 'ZZZZ'"]


def test_preflight_of_a_24_7_profile_does_not_load_the_calendar_package():
    import sys

    code = ("import sys; from engine.config_loader import preflight; from engine.profile import Profile; "
            "assert preflight(Profile()) == []; print('exchange_calendars' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert (res.returncode, res.stdout, res.stderr) == (0, "False\n", "")


def test_an_empty_path_or_a_device_is_no_profile_and_is_never_read():
    with pytest.raises(ConfigError) as exc:
        load_profile("")
    assert exc.value.lines == ["the profile path is empty: expected the path of a YAML profile file"]
    with pytest.raises(ConfigError) as exc:
        load_profile("/dev/zero")  # read to the end, it never ends
    assert exc.value.lines == ["/dev/zero: not a regular file (a device or a pipe): expected a YAML profile file"]
