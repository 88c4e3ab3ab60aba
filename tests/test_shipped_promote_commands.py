"""The promote command each shipped profile prints in its header works as printed. With the stage
before granted and nothing traded at it yet, the command is refused for want of a record (exit 1),
never a usage error (exit 2): the criteria of the stage being left come from the `--from` file, and
the shipped live files each carry only their own stage's criteria."""
from __future__ import annotations

import shlex
from datetime import datetime, timezone
from pathlib import Path

import pytest
from test_analytics_helpers import write_journal

from console.cli import main
from engine.config_loader import load_profile
from engine.profile import STAGE_ORDER, journal_path

REPO = Path(__file__).resolve().parents[1]
FILES = sorted(p for p in (REPO / "config").glob("*.yaml") if "tradeconsole promote" in p.read_text())


def printed_command(path: Path) -> list[str]:
    (line,) = [ln for ln in path.read_text().splitlines() if "tradeconsole promote" in ln]
    words = shlex.split(line.lstrip("# "))
    assert words[:2] == ["tradeconsole", "promote"], line
    return words[2:]


def test_the_live_files_print_a_command():
    assert {p.name for p in FILES} >= {"live-micro.yaml", "live-small.yaml", "live-medium.yaml", "live-standard.yaml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_promote_command_a_shipped_profile_prints_works_as_printed(path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRADECONSOLE_HOME", str(tmp_path))  # every shipped journal path is the default one
    monkeypatch.chdir(REPO)
    args = printed_command(path)
    to = args[args.index("--to") + 1]
    target = load_profile(args[args.index("--profile") + 1])
    evidence = load_profile(args[args.index("--from") + 1]) if "--from" in args else target
    before = STAGE_ORDER[STAGE_ORDER.index(to) - 1]
    assert journal_path(evidence).parent == tmp_path
    write_journal(journal_path(evidence), [("stage", datetime.now(timezone.utc), before, {
        "from": STAGE_ORDER[STAGE_ORDER.index(before) - 1], "to": before, "direction": "promote",
        "venue": target.venue.name})])
    assert main(["promote", *args, "--resamples", "100"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tradeconsole: promote: refused: readiness of stage {before} is NO-GO"), err
