"""`tradeconsole promote`: up one stage only when the current stage's readiness report passes,
down at once; every change a `stage` row in the journal, which the engine honours at start."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from test_analytics_helpers import T0, hand_worked_rows, write_journal

from console.cli import main
from engine.config_loader import load_profile
from engine.journal import Journal
from engine.profile import journal_path
from engine.stages import StageNotGranted, require_granted

# Criteria the hand-worked journal (5 round trips over 3 days, +0.6 %) passes.
PASSABLE = {"min_trades": 5, "min_days": 1, "min_return_pct": 0, "min_sharpe": -100, "min_profit_factor": 1,
            "max_drawdown_pct": 10, "max_fee_drag_pct": 100, "win_rate_min_pct": 0, "win_rate_max_pct": 100,
            "max_single_loss_pct": 5, "attestations": [], "drill_max_age_days": None}


def profile_file(tmp: Path, name: str, data: dict) -> Path:
    data = {"name": name, "journal": {"path": str(tmp / f"{name}.sqlite")},
            "logging": {"path": str(tmp / f"{name}.log")}, **data}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def pp_file(tmp: Path, passable: bool) -> Path:
    data: dict = {"mode": "paper"}
    if passable:
        data["readiness"] = {"stages": {"paper": PASSABLE}}
    path = profile_file(tmp, "pp", data)
    write_journal(tmp / "pp.sqlite", hand_worked_rows())
    return path


def tn_file(tmp: Path, passable: bool = True, journal: bool = True) -> Path:
    data: dict = {"mode": "testnet", "stage": "testnet", "venue": {"name": "binance"}, "symbols": ["BTC/USDT"]}
    if passable:
        data["readiness"] = {"stages": {"testnet": PASSABLE}}
    path = profile_file(tmp, "tn", data)
    if journal:  # promoted from paper, then traded
        write_journal(tmp / "tn.sqlite", [("stage", T0, "testnet", {"from": "paper", "to": "testnet"}),
                                          *hand_worked_rows()])
    return path


def lv_file(tmp: Path, stage: str = "micro") -> Path:
    return profile_file(tmp, "lv", {"mode": "live", "stage": stage, "venue": {"name": "binance"},
                                    "symbols": ["BTC/USDT"]})


def cli(*args: str) -> int:
    try:
        return main(["promote", *args, "--resamples", "100"])
    except SystemExit as exc:  # a bad profile file exits from the loader
        return int(exc.code)


def stage_rows(path: Path) -> list[dict]:
    async def go() -> list[dict]:
        j = await Journal.open(path)
        try:
            return [r.data for r in await j.rows(kinds=["stage"])]
        finally:
            await j.close()

    return asyncio.run(go()) if path.exists() else []


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_promotion_is_refused_while_readiness_says_no_go(tmp_path, capsys):
    src, dst = pp_file(tmp_path, passable=False), tn_file(tmp_path, journal=False)
    assert cli("--to", "testnet", "--profile", str(dst), "--from", str(src)) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith("tradeconsole: promote: refused: readiness of stage paper is NO-GO (")
    assert "failing: trades" in err
    assert stage_rows(tmp_path / "tn.sqlite") == []


def test_a_passing_stage_is_promoted_and_journaled(tmp_path, capsys):
    src, dst = pp_file(tmp_path, passable=True), tn_file(tmp_path, journal=False)
    assert cli("--to", "testnet", "--profile", str(dst), "--from", str(src), "--reason", "two weeks clean") == 0
    out = capsys.readouterr().out
    assert out.startswith("promoted 'tn' from paper to testnet (readiness of paper: GO, 10/10)")
    (row,) = stage_rows(tmp_path / "tn.sqlite")
    assert row["from"] == "paper" and row["to"] == "testnet" and row["direction"] == "promote"
    assert row["verdict"] == "GO" and row["evidence_profile"] == "pp" and row["reason"] == "two weeks clean"
    # Asking again changes nothing.
    assert cli("--to", "testnet", "--profile", str(dst)) == 0
    assert "already at stage testnet" in capsys.readouterr().out
    assert len(stage_rows(tmp_path / "tn.sqlite")) == 1


def test_a_testnet_profile_needs_its_grant_from_paper(tmp_path, capsys):
    tn = load_profile(tn_file(tmp_path, journal=False))
    with pytest.raises(StageNotGranted, match="promote into it from your paper profile first"):
        asyncio.run(granted(tn))
    assert cli("--to", "testnet", "--profile", str(tmp_path / "tn.yaml")) == 2  # no evidence: --from is needed
    assert "has no stage granted yet" in one_line(capsys.readouterr().err)
    # Nor can it vouch for a live profile before it was promoted itself.
    assert cli("--to", "micro", "--profile", str(lv_file(tmp_path)), "--from", str(tmp_path / "tn.yaml")) == 2
    assert "neither 'lv' nor the evidence profile 'tn' has a stage granted yet" in one_line(capsys.readouterr().err)


def test_the_road_to_live_goes_one_stage_at_a_time(tmp_path, capsys):
    tn, lv = tn_file(tmp_path), lv_file(tmp_path)
    lv_profile = load_profile(lv)
    # Nobody promoted the live journal: the engine will not start it.
    with pytest.raises(StageNotGranted, match="no stage is granted"):
        asyncio.run(granted(lv_profile))
    assert cli("--to", "small", "--profile", str(lv), "--from", str(tn)) == 1
    assert "one stage at a time; from testnet the next stage is micro" in one_line(capsys.readouterr().err)
    assert cli("--to", "micro", "--profile", str(lv), "--from", str(tn)) == 0
    assert "promoted 'lv' from testnet to micro" in capsys.readouterr().out
    assert asyncio.run(granted(lv_profile)) == "micro"
    # Leaving micro needs micro's own record, in the live journal: there is none yet.
    assert cli("--to", "small", "--profile", str(lv)) == 1
    assert "readiness of stage micro is NO-GO" in one_line(capsys.readouterr().err)
    assert [r["to"] for r in stage_rows(tmp_path / "lv.sqlite")] == ["micro"]


def test_a_downgrade_needs_no_evidence_and_binds_the_next_start(tmp_path, capsys):
    lv = lv_file(tmp_path, "small")
    write_journal(tmp_path / "lv.sqlite", [("stage", T0, "small", {"from": "micro", "to": "small",
                                                                      "direction": "promote"})])
    assert asyncio.run(granted(load_profile(lv))) == "small"
    assert cli("--to", "micro", "--profile", str(lv), "--reason", "drawdown") == 0
    assert capsys.readouterr().out.startswith("downgraded 'lv' from small to micro: from its next start this journal trades at micro at most")
    assert stage_rows(tmp_path / "lv.sqlite")[-1] == {"from": "small", "to": "micro", "direction": "downgrade",
                                                      "venue": "binance", "evidence_profile": "lv", "reason": "drawdown"}
    with pytest.raises(StageNotGranted, match="grants micro only"):
        asyncio.run(granted(load_profile(lv)))
    assert cli("--to", "testnet", "--profile", str(lv)) == 0
    assert "a live profile on this journal will not start until it is promoted again" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "fragment"), [
    (("--to", "huge"), "promote: --to: unknown stage 'huge'; stages are paper, testnet, micro, small, medium, standard"),
    (("--to", "testnet"), "promote: --profile: stage testnet needs a testnet profile; 'pp' is mode paper"),
    ((), "the following arguments are required: --to"),
])
def test_usage_errors_are_one_line_and_exit_2(tmp_path, capsys, args, fragment):
    src = pp_file(tmp_path, passable=True)
    assert cli(*args, "--profile", str(src)) == 2
    assert fragment in one_line(capsys.readouterr().err)


def test_a_stage_without_criteria_or_a_bad_file_is_a_usage_error(tmp_path, capsys):
    tn = tn_file(tmp_path, passable=False)
    lv = lv_file(tmp_path)
    data = yaml.safe_load(tn.read_text())
    data["readiness"] = {"stages": {"paper": PASSABLE}}  # nothing for testnet
    tn.write_text(yaml.safe_dump(data))
    assert cli("--to", "micro", "--profile", str(lv), "--from", str(tn)) == 2
    assert "readiness.stages.testnet: profile 'tn' has no readiness criteria" in one_line(capsys.readouterr().err)
    assert cli("--to", "micro", "--profile", str(tmp_path / "nope.yaml")) == 2
    assert one_line(capsys.readouterr().err).endswith("nope.yaml: no such file")


async def granted(profile) -> str | None:
    j = await Journal.open(journal_path(profile))
    try:
        return await require_granted(profile, j)
    finally:
        await j.close()


async def test_a_wall_clock_row_does_not_move_a_simulated_sessions_clock(tmp_path):
    # `attest`, `drill` and `promote` write the wall's time; a simulated profile's next start
    # continues from its own clock, or readiness counted months of "time trading" after hours.
    import asyncio
    from datetime import datetime, timedelta, timezone

    from conftest import build_profile
    from engine.analytics.journal_data import append_row
    from engine.engine import Engine

    prof = build_profile(tmp_path)
    eng = await Engine.open(prof, seed=1)
    await eng.run(duration=3600)
    ended = eng.clock.now()
    await eng.close()
    assert ended < datetime(2026, 6, 1, tzinfo=timezone.utc)  # the simulated market's own time
    await asyncio.to_thread(append_row, prof.journal.path, "attestation", datetime.now(timezone.utc), "runbook_read",
                            {"by": "test"})
    again = await Engine.open(prof, seed=2)
    try:
        assert ended <= again.clock.now() <= ended + timedelta(minutes=2)
    finally:
        await again.close()
