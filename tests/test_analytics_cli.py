"""`tradeconsole readiness / attest / report / backtest / drill`, run as a user runs them."""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, cli_cmd, cli_env

PROFILE = "config/paper-auto.yaml"


def run(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, cwd=REPO, env=cli_env(home),
                          timeout=timeout)


@pytest.fixture(scope="module")
def paper_journal(tmp_path_factory) -> Path:
    """A short headless paper run's journal, made once; each test works on its own copy."""
    home = tmp_path_factory.mktemp("base")
    res = run(home, "run", "--headless", "--duration", "2h", "--seed", "3", "--profile", PROFILE)
    assert res.returncode == 0, res.stderr
    return home / "paper-auto.sqlite"


@pytest.fixture
def home(tmp_path, paper_journal) -> Path:
    h = tmp_path / "h"
    h.mkdir()
    shutil.copy(paper_journal, h / "paper-auto.sqlite")
    return h


def rows(path: Path, kind: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT ts, ref, data FROM events WHERE kind = ? ORDER BY seq", (kind,)).fetchall()


def test_readiness_json_lists_every_criterion_and_says_no_go(home):
    before = (home / "paper-auto.sqlite").read_bytes()
    res = run(home, "readiness", "--profile", PROFILE, "--json")
    assert res.returncode == 1, res.stderr  # NO-GO
    out = json.loads(res.stdout)
    assert out["verdict"] == "NO-GO" and out["stage"] == "paper"
    names = [c["name"] for c in out["criteria"]]
    assert names == ["trades", "days", "return", "sharpe", "profit_factor", "max_drawdown", "fee_drag", "win_rate",
                     "single_loss", "no_critical_incident"]
    by = {c["name"]: c for c in out["criteria"]}
    assert by["trades"]["measured"] == out["metrics"]["trades"]["trades"] and by["trades"]["threshold"] == ">= 100"
    assert "lower bound" in by["sharpe"]["detail"] or "not measurable" in by["sharpe"]["detail"]
    assert set(out["bootstrap"]) >= {"sharpe", "win_rate_pct", "profit_factor", "expectancy"}
    assert (home / "paper-auto.sqlite").read_bytes() == before  # read-only


def test_readiness_table_and_usage_errors(home, tmp_path):
    res = run(home, "readiness", "--profile", PROFILE, "--stage", "testnet")
    assert res.returncode == 1 and "NO-GO" in res.stdout and "attested: runbook_read" in res.stdout
    assert "passing drill" in res.stdout
    bad = run(home, "readiness", "--profile", PROFILE, "--stage", "nope")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no criteria for stage 'nope'" in bad.stderr
    empty = run(tmp_path / "nothing", "readiness", "--profile", PROFILE)
    assert empty.returncode == 2 and "no journal" in empty.stderr and empty.stderr.count("\n") == 1


def test_attest_and_drill_feed_the_testnet_criteria(home):
    journal = home / "paper-auto.sqlite"
    for item in ("legal_tax_review", "runbook_read"):
        res = run(home, "attest", item, "--text", f"{item} done by the operator", "--profile", PROFILE)
        assert res.returncode == 0, res.stderr
        assert "required by: testnet, micro" in res.stdout
    bad = run(home, "attest", "bad item!", "--text", "x", "--profile", PROFILE)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    att = rows(journal, "attestation")
    assert [r[1] for r in att] == ["legal_tax_review", "runbook_read"]
    assert json.loads(att[1][2])["text"] == "runbook_read done by the operator"

    res = run(home, "drill", "--profile", PROFILE, "--seed", "3", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["passed"] is True
    assert [s["name"] for s in out["steps"]] == ["quotes", "place", "halt", "close_all", "audit"]
    assert all(s["ok"] and s["ms"] >= 0 for s in out["steps"])
    drills = rows(journal, "drill")
    assert len(drills) == 1 and drills[0][1] == "pass" and json.loads(drills[0][2])["passed"] is True
    assert rows(journal, "halt") == []  # the drill's halt stays in its own journal
    assert Path(out["journal"]).exists() and rows(Path(out["journal"]), "halt")

    res = run(home, "readiness", "--profile", PROFILE, "--stage", "testnet", "--json")
    by = {c["name"]: c for c in json.loads(res.stdout)["criteria"]}
    assert by["drill"]["passed"] and all(by[f"attest:{i}"]["passed"] for i in ("runbook_read", "legal_tax_review"))
    assert not by["attest:capital_allocation"]["passed"]


def test_reports_json_and_self_contained_html(home, tmp_path):
    reps = {}
    for kind in ("daily", "weekly", "stage"):
        page = tmp_path / f"{kind}.html"
        res = run(home, "report", kind, "--profile", PROFILE, "--json", "--html", str(page), "--resamples", "300")
        assert res.returncode == 0, res.stderr
        rep = reps[kind] = json.loads(res.stdout)
        assert rep["kind"] == kind and rep["metrics"]["trades"]["trades"] == len(rep["trades"])
        html = page.read_text(encoding="utf-8")
        # equity, drawdown, P&L histogram, net P&L by symbol, net P&L by market regime
        assert html.count("<svg") == 5 and "<script" not in html and "https://" not in html
        assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    week = reps["weekly"]["week"]
    assert set(week) >= {"win_rate_pct", "largest_loss", "largest_gain", "incidents", "positions_without_stop"}
    assert week["largest_loss"] is None or week["largest_loss"]["reason"].startswith("trend")
    assert reps["daily"]["period"]["since"] == "2026-01-05T00:00:00+00:00"
    stage = reps["stage"]
    assert stage["readiness"]["stage"] == "paper" and stage["monte_carlo"]["resamples"] == 300
    text = run(home, "report", "daily", "--profile", PROFILE)
    assert text.returncode == 0 and "daily report" in text.stdout and "closed trades" in text.stdout


def test_backtest_cli_with_walk_forward_and_paper_comparison(home):
    res = run(home, "backtest", "--profile", PROFILE, "--csv", "tests/data/bars-2sym-8h.csv", "--windows", "2",
              "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["quotes"] == 960 and Path(out["journal"]).parent == home
    assert ".backtest-" in out["journal"]
    assert out["vs_paper"]["journal"] == str(home / "paper-auto.sqlite")
    assert {r["metric"] for r in out["vs_paper"]["rows"]} >= {"win_rate_pct", "profit_factor", "max_drawdown_pct"}
    assert [w["window"] for w in out["walk_forward"]["results"]] == [1, 2]
    bad = run(home, "backtest", "--profile", PROFILE, "--csv", "README.md")
    assert bad.returncode == 2 and bad.stderr.startswith("tradeconsole: ") and bad.stderr.count("\n") == 1
    assert run(home, "backtest", "--profile", PROFILE, "--csv", "tests/data/bars-2sym-8h.csv",
               "--windows", "2", "--is-fraction", "1.5").returncode == 2
    # Without --windows there is no split to apply it to: said, not silently ignored.
    alone = run(home, "backtest", "--profile", PROFILE, "--csv", "tests/data/bars-2sym-8h.csv", "--is-fraction", "2")
    assert alone.returncode == 2 and alone.stderr == (
        "tradeconsole: backtest: --is-fraction needs --windows (it splits each walk-forward window)\n")


def test_drill_refuses_a_live_profile(monkeypatch, capsys):
    import argparse

    from console import cli_analytics
    from engine.profile import Profile

    live = Profile.model_construct(**{**Profile().__dict__, "mode": "live"})
    monkeypatch.setattr(cli_analytics, "_profile", lambda path: live)
    rc = cli_analytics._drill(argparse.Namespace(profile=None, seed=None, json=False))
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused on a live profile" in err


def test_operator_notes_appear_in_every_report_form(home, tmp_path):
    """The trading journal the checklists ask for: notes on the day, a trade or an alert are in
    the report (table, JSON and HTML), with what they are about."""
    from datetime import datetime, timezone

    from engine.analytics.journal_data import append_row

    journal = home / "paper-auto.sqlite"
    with sqlite3.connect(journal) as db:
        fill_ref, last_ts = db.execute("SELECT ref, ts FROM events WHERE kind = 'fill' ORDER BY seq LIMIT 1").fetchone()
    at = datetime.fromisoformat(last_ts)
    append_row(journal, "note", at, None, {"kind": "day", "text": "choppy open; spreads wide <b>"})
    append_row(journal, "note", at, fill_ref, {"kind": "trade", "text": "entered late, slipped"})
    page = tmp_path / "daily.html"
    res = run(home, "report", "daily", "--profile", PROFILE, "--json", "--html", str(page), "--resamples", "100")
    assert res.returncode == 0, res.stderr
    notes = json.loads(res.stdout)["notes"]
    assert [(n["about"], n["ref"], n["text"]) for n in notes] == [
        ("day", None, "choppy open; spreads wide <b>"), ("trade", fill_ref, "entered late, slipped")]
    html = page.read_text(encoding="utf-8")
    assert "<h2>Notes</h2>" in html and "spreads wide &lt;b&gt;" in html and f"trade {fill_ref}" in html
    text = run(home, "report", "daily", "--profile", PROFILE)
    assert text.returncode == 0 and "entered late, slipped" in text.stdout and "notes" in text.stdout


def test_a_drill_or_attestation_that_cannot_be_journaled_says_so(tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    (home / "paper-auto.sqlite").write_bytes(b"not a database, whatever its name says " * 8)
    res = run(home, "drill", "--profile", PROFILE, "--seed", "3")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "PASS  NOT journaled" in res.stdout  # the drill ran: its result is not lost from view
    assert res.stderr.strip().splitlines() == [
        f"tradeconsole: drill: the result could not be journaled: {home / 'paper-auto.sqlite'}: file is not a database"]
    res = run(home, "attest", "runbook_read", "--text", "read it", "--profile", PROFILE)
    assert res.returncode == 2 and res.stdout == ""  # never "attested"
    assert res.stderr.strip().splitlines() == [
        f"tradeconsole: attest: not recorded: {home / 'paper-auto.sqlite'}: file is not a database"]


@pytest.mark.parametrize("item", ["runbok_read", "bogus_item"])
def test_attest_refuses_an_item_no_stage_asks_for(tmp_path, item):
    # A typo recorded as an attestation left the real item missing while the operator saw "attested".
    res = run(tmp_path, "attest", item, "--text", "read it", "--profile", PROFILE)
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr.splitlines() == [
        f"tradeconsole: attest: unknown item {item!r}; this profile's readiness items are "
        "capital_allocation, legal_tax_review, runbook_read, support_in_place"]
    assert not (tmp_path / "paper-auto.sqlite").exists()


def test_fees_paid_in_an_asset_the_engine_cannot_price_make_fee_drag_not_measurable(home):
    path = home / "paper-auto.sqlite"
    with sqlite3.connect(path) as db:  # two fills whose fee the venue took in BNB
        for seq, data in db.execute("SELECT seq, data FROM events WHERE kind = 'fill' ORDER BY seq LIMIT 2").fetchall():
            row = json.loads(data)
            row["unbooked_fee"] = "0.1 BNB"
            db.execute("UPDATE events SET data = ? WHERE seq = ?", (json.dumps(row), seq))
    out = json.loads(run(home, "readiness", "--profile", PROFILE, "--json").stdout)
    fee = next(c for c in out["criteria"] if c["name"] == "fee_drag")
    assert fee["passed"] is False
    assert fee["detail"].startswith("not measurable: 0.2 BNB on 2 fill(s) paid in an asset the engine cannot price")
