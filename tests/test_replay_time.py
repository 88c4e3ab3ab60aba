"""A CSV replay on a journal that already holds later rows moved simulated time back (the same day
counted twice, positions closed at older prices). The start is refused in one line, exit 2, before
anything is written to the journal."""
from __future__ import annotations

import sqlite3
import subprocess

import pytest

from conftest import REPO, cli_cmd, cli_env
from engine.engine import Engine
from engine.feeds import CsvFeedError

CSV = REPO / "tests" / "data" / "bars-2sym-8h.csv"  # 2026-01-05 00:00 .. 08:00 UTC
REPLAY = {"symbols": ["BTC/USD", "ETH/USD"], "feed": {"kind": "csv", "csv_path": str(CSV), "speed": 0}}


def rows(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


async def test_a_replay_before_the_journal_s_last_time_is_refused(make_profile):
    prof = make_profile(**REPLAY)
    eng = await Engine.open(prof)
    await eng.run(duration=3600)
    last = eng.clock.now()
    await eng.close()
    before = rows(eng.journal.path)
    with pytest.raises(CsvFeedError) as exc:
        await Engine.open(prof)
    assert str(exc.value) == (
        f"{CSV}: feed.csv_path starts at 2026-01-05T00:00:00+00:00, before the last time already in the journal "
        f"{eng.journal.path} ({last.isoformat()}): replaying it would move simulated time back; "
        "give this replay a new journal.path")
    assert rows(eng.journal.path) == before


async def test_a_replay_after_the_journal_s_last_time_starts(make_profile):
    sim = make_profile()  # a fresh journal's simulated clock starts before the replay's data
    eng = await Engine.open(sim)
    await eng.close()
    eng = await Engine.open(make_profile(**REPLAY))
    assert eng.clock.now().isoformat() == "2026-01-05T00:00:00+00:00"
    await eng.close()


def test_the_cli_refuses_it_in_one_line_exit_2(tmp_path):
    (tmp_path / "p.yaml").write_text(f"journal: {{path: j.sqlite}}\nsymbols: [BTC/USD, ETH/USD]\n"
                                     f"feed: {{kind: csv, csv_path: {CSV}, speed: 0}}\n")
    run = cli_cmd("run", "--headless", "--profile", "p.yaml", "--duration", "1h")
    first = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path, env=cli_env(tmp_path), timeout=120)
    assert first.returncode == 0, first.stderr
    before = rows(tmp_path / "j.sqlite")
    again = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path, env=cli_env(tmp_path), timeout=120)
    assert again.returncode == 2
    (line,) = again.stderr.splitlines()
    assert line.startswith(f"tradeconsole: {CSV}: feed.csv_path starts at 2026-01-05T00:00:00+00:00, before the "
                           f"last time already in the journal {tmp_path / 'j.sqlite'} (2026-01-05T01:")
    assert line.endswith("give this replay a new journal.path")
    assert rows(tmp_path / "j.sqlite") == before
