"""The venue's day follows the exchange calendar's: a profile naming a calendar gets the calendar's
time zone when venue.timezone is left out, and one that names another zone is a one-line error
(exit 2 from check-config and run). The zones come from a static table, checked here against
exchange_calendars, so loading a profile never imports the package."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, cli_cmd, cli_env
from engine.config_loader import ConfigError, effective_yaml, load_profile, profile_from_mapping
from engine.profile import MarketHoursConfig, Profile, VenueConfig
from engine.profile_risk import CALENDAR_ZONES, calendar_zone


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


def test_the_table_is_exchange_calendars_own():
    import exchange_calendars as xc

    built = {}
    for code in xc.get_calendar_names(include_aliases=True):
        if not re.fullmatch(r"[A-Z0-9]{3,5}", code):  # the profile accepts no other shape
            continue
        try:
            built[code] = str(xc.get_calendar(code).tz)
        except Exception:  # a calendar this version of the package cannot build: preflight refuses it
            continue
    assert CALENDAR_ZONES == built


def test_twenty_four_seven_has_no_zone():
    assert calendar_zone("24/7") is None and calendar_zone("XNYS") == "America/New_York"


def test_an_explicit_other_zone_is_one_line_naming_file_and_key(tmp_path):
    path = write(tmp_path, "market_hours:\n  calendar: XNYS\nvenue:\n  timezone: UTC\n")
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    assert exc.value.lines == [f"{path}: venue.timezone: must be America/New_York for calendar XNYS (got UTC)"]


def test_an_alias_of_the_zone_is_refused_too():
    # US/Eastern keeps New York's rules today, but the table names one zone: no guessing at links.
    with pytest.raises(ConfigError) as exc:
        profile_from_mapping({"market_hours": {"calendar": "XNYS"}, "venue": {"timezone": "US/Eastern"}}, "p.yaml")
    assert exc.value.lines == ["p.yaml: venue.timezone: must be America/New_York for calendar XNYS (got US/Eastern)"]


@pytest.mark.parametrize("command", [("check-config",), ("run", "--headless", "--profile")])
def test_check_config_and_run_exit_2_with_the_line(tmp_path, command):
    path = write(tmp_path, "market_hours:\n  calendar: XLON\nvenue:\n  timezone: America/New_York\n")
    res = subprocess.run(cli_cmd(*command, str(path)), capture_output=True, text=True, cwd=tmp_path,
                         env=cli_env(tmp_path / "home"), timeout=60)
    assert res.returncode == 2
    assert f"{path}: venue.timezone: must be Europe/London for calendar XLON (got America/New_York)" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_calendar_without_a_zone_gives_the_venue_the_calendars(tmp_path):
    path = write(tmp_path, "market_hours:\n  calendar: XNYS\n  allow_extended_hours: true\n")
    profile = load_profile(path)
    assert profile.venue.timezone == "America/New_York"
    assert "timezone: America/New_York" in effective_yaml(profile)  # check-config shows what is in force
    venue_only = profile_from_mapping({"market_hours": {"calendar": "XTKS"}, "venue": {"quote_currency": "USD"}})
    assert venue_only.venue.timezone == "Asia/Tokyo"


def test_the_same_holds_for_profiles_built_in_code():
    assert Profile(market_hours=MarketHoursConfig(calendar="XNYS")).venue.timezone == "America/New_York"
    assert Profile(market_hours={"calendar": "XNYS"}, venue=VenueConfig()).venue.timezone == "America/New_York"
    with pytest.raises(ValueError, match="must be America/New_York for calendar XNYS"):
        Profile(market_hours={"calendar": "XNYS"}, venue=VenueConfig(timezone="UTC"))


def test_the_matching_zone_is_accepted_and_24_7_keeps_any_zone():
    ok = profile_from_mapping({"market_hours": {"calendar": "XNYS"}, "venue": {"timezone": "America/New_York"}})
    assert ok.venue.timezone == "America/New_York"
    assert Profile().venue.timezone == "UTC"
    assert profile_from_mapping({"venue": {"timezone": "Europe/Paris"}}).venue.timezone == "Europe/Paris"


def test_loading_a_calendar_profile_does_not_import_the_calendar_package(tmp_path):
    path = write(tmp_path, "market_hours:\n  calendar: XNYS\nvenue:\n  timezone: UTC\n")
    code = ("import sys; from engine.config_loader import load_profile, ConfigError\n"
            f"try: load_profile({str(path)!r})\nexcept ConfigError: pass\n"
            "print('exchange_calendars' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
