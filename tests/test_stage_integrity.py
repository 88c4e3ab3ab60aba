"""The road to live cannot be shortened by editing files: a paper record proves paper only, a live
stage's built-in caps can be tightened but never loosened, and a stage grant belongs to the venue
it was earned on, not to the journal file that carries it."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from conftest import cli_cmd, cli_env
from emulators.bybit import BybitEmulator
from test_analytics_helpers import T0, hand_worked_rows, write_journal
from test_stages import PASSABLE, cli, one_line, profile_file, stage_rows

from engine.config_loader import load_profile
from engine.engine import Engine
from engine.journal import Journal
from engine.profile import journal_path
from engine.stages import StageNotGranted, require_granted
from engine.venue_wiring import VenueStartError

REPO = Path(__file__).resolve().parent.parent
NEXT = {"paper": "testnet", "testnet": "micro", "micro": "small", "small": "medium", "medium": "standard"}
LK, LS = "bybitLIVEkey01234567", "bybitLIVEsecret0123456789"


def paper_claiming(tmp: Path, stage: str) -> Path:
    """A paper profile whose `stage:` was edited by hand, with a journal that passes any criteria."""
    path = profile_file(tmp, "pp", {"mode": "paper", "stage": stage,
                                    "readiness": {"stages": {"paper": PASSABLE, stage: PASSABLE}}})
    write_journal(tmp / "pp.sqlite", hand_worked_rows())
    return path


def live(tmp: Path, stage: str, venue: str = "binance", name: str = "lv", **extra) -> Path:
    return profile_file(tmp, name, {"mode": "live", "stage": stage, "venue": {"name": venue},
                                    "symbols": ["BTC/USDT"], **extra})


def tn_profile(tmp: Path, venue: str = "binance", name: str = "tn") -> Path:
    path = profile_file(tmp, name, {"mode": "testnet", "stage": "testnet", "venue": {"name": venue},
                                    "symbols": ["BTC/USDT"], "readiness": {"stages": {"testnet": PASSABLE}}})
    write_journal(tmp / f"{name}.sqlite", [("stage", T0, "testnet", {"from": "paper", "to": "testnet",
                                                                       "direction": "promote", "venue": venue}),
                                           *hand_worked_rows()])
    return path


def granted(path: Path) -> str | None:
    profile = load_profile(path)

    async def go() -> str | None:
        j = await Journal.open(journal_path(profile))
        try:
            return await require_granted(profile, j)
        finally:
            await j.close()

    return asyncio.run(go())


# -- defect 1: a paper record proves paper, whatever the paper profile's `stage:` says -------------
@pytest.mark.parametrize("claimed", ["testnet", "micro", "small"])
def test_a_paper_profile_edited_to_a_later_stage_cannot_promote_a_fresh_live_journal(tmp_path, capsys, claimed):
    pp, lv = paper_claiming(tmp_path, claimed), live(tmp_path, NEXT[claimed])
    assert cli("--to", NEXT[claimed], "--profile", str(lv), "--from", str(pp)) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith("tradeconsole: promote: refused: one stage at a time; from paper the next stage is testnet: "
                          f"'pp' is a paper profile, which stands at paper whatever its `stage: {claimed}` says; ")
    assert err.endswith(f"{NEXT[claimed]} needs the journal of a "
                        f"{'testnet' if claimed == 'testnet' else 'live'} profile on binance granted {claimed}")
    assert stage_rows(tmp_path / "lv.sqlite") == []
    with pytest.raises(StageNotGranted, match="no stage is granted"):
        granted(lv)


def test_a_granted_live_journal_cannot_leave_its_stage_on_a_paper_record(tmp_path):
    pp, lv = paper_claiming(tmp_path, "micro"), live(tmp_path, "small")
    write_journal(tmp_path / "lv.sqlite", [("stage", T0, "micro", {"from": "testnet", "to": "micro",
                                                                    "direction": "promote", "venue": "binance"})])
    # Through the real command line, as the operator would type it.
    done = subprocess.run(cli_cmd("promote", "--to", "small", "--profile", str(lv), "--from", str(pp),
                                  "--resamples", "50"), env=cli_env(tmp_path / "home"), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert one_line(done.stderr) == (
        "tradeconsole: promote: --from: leaving stage micro needs the journal of a live profile on binance granted "
        "micro; 'pp' is a paper profile, which stands at paper whatever its `stage: micro` says")
    assert [r["to"] for r in stage_rows(tmp_path / "lv.sqlite")] == ["micro"]
    with pytest.raises(StageNotGranted, match="grants micro only"):
        granted(lv)


def test_a_paper_profile_whatever_its_stage_field_still_proves_paper(tmp_path, capsys):
    pp, tn = paper_claiming(tmp_path, "micro"), profile_file(
        tmp_path, "tn", {"mode": "testnet", "stage": "testnet", "venue": {"name": "binance"}, "symbols": ["BTC/USDT"]})
    assert cli("--to", "testnet", "--profile", str(tn), "--from", str(pp)) == 0
    assert capsys.readouterr().out.startswith("promoted 'tn' from paper to testnet (readiness of paper: GO")
    (row,) = stage_rows(tmp_path / "tn.sqlite")
    assert (row["from"], row["to"], row["venue"], row["evidence_profile"]) == ("paper", "testnet", "binance", "pp")


def test_leaving_a_live_stage_needs_a_live_record_at_that_stage_on_the_same_venue(tmp_path, capsys):
    lv = live(tmp_path, "small")
    write_journal(tmp_path / "lv.sqlite", [("stage", T0, "micro", {"from": "testnet", "to": "micro",
                                                                    "direction": "promote", "venue": "binance"})])
    # A testnet record does not prove micro.
    assert cli("--to", "small", "--profile", str(lv), "--from", str(tn_profile(tmp_path))) == 2
    assert one_line(capsys.readouterr().err).endswith(
        "leaving stage micro needs the journal of a live profile on binance granted micro; "
        "'tn' is a testnet profile on binance, granted testnet")
    # Nor does another venue's micro record, nor a live journal at another stage.
    other = live(tmp_path, "micro", venue="bybit", name="by",
                 readiness={"stages": {"micro": PASSABLE}})
    write_journal(tmp_path / "by.sqlite", [("stage", T0, "micro", {"from": "testnet", "to": "micro",
                                                                    "direction": "promote", "venue": "bybit"}),
                                           *hand_worked_rows()])
    assert cli("--to", "small", "--profile", str(lv), "--from", str(other)) == 2
    assert "'by' is a live profile on bybit, granted micro" in one_line(capsys.readouterr().err)
    ahead = live(tmp_path, "small", name="ahead", readiness={"stages": {"micro": PASSABLE}})
    write_journal(tmp_path / "ahead.sqlite", [("stage", T0, "small", {"from": "micro", "to": "small",
                                                                       "direction": "promote", "venue": "binance"}),
                                              *hand_worked_rows()])
    assert cli("--to", "small", "--profile", str(lv), "--from", str(ahead)) == 1
    assert one_line(capsys.readouterr().err).endswith("'ahead' is a live profile on binance, granted small")
    assert [r["to"] for r in stage_rows(tmp_path / "lv.sqlite")] == ["micro"]


# -- defect 2: a live stage's caps are ceilings ---------------------------------------------------
def check_config(tmp: Path, text: str) -> subprocess.CompletedProcess:
    path = tmp / "edited.yaml"
    path.write_text(text)
    return subprocess.run(cli_cmd("check-config", str(path)), env=cli_env(tmp / "home"), capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("old", "new", "line"), [
    ("max_capital_usd: 500 ", "max_capital_usd:     ", "stages.micro.max_capital_usd: must be at most 500, stage micro's "
                                                       "built-in limit: a live profile may tighten it, never loosen or "
                                                       "remove it (got null)"),
    ("max_position_usd: 10 ", "max_position_usd: 11 ", "stages.micro.max_position_usd: must be at most 10, stage micro's "
                                                       "built-in limit: a live profile may tighten it, never loosen or "
                                                       "remove it (got 11)"),
    ("min_confidence: 0.75", "min_confidence: 0.7", "stages.micro.min_confidence: must be at least 0.75, stage micro's "
                                                    "built-in limit: a live profile may tighten it, never loosen or "
                                                    "remove it (got 0.7)"),
])
def test_a_live_profile_cannot_loosen_or_blank_its_stage_caps(tmp_path, old, new, line):
    src = (REPO / "config" / "live-micro.yaml").read_text()
    assert old in src
    done = check_config(tmp_path, src.replace(old, new))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert one_line(done.stderr) == f"{tmp_path / 'edited.yaml'}: {line}"


def test_a_live_profile_may_tighten_its_stage_caps(tmp_path):
    src = (REPO / "config" / "live-micro.yaml").read_text()
    done = check_config(tmp_path, src.replace("max_capital_usd: 500 ", "max_capital_usd: 300 ")
                        .replace("min_edge: 0.1", "min_edge: 0.2"))
    assert done.returncode == 0, done.stderr
    limits = load_profile(tmp_path / "edited.yaml").stage_limits()
    assert (limits.max_capital_usd, limits.max_position_usd, limits.min_edge) == (300, 10, 0.2)


def test_a_live_profile_cannot_raise_a_stage_it_is_not_at_either(tmp_path):
    # The live files share one journal: a loose medium section would apply the day stage: says medium.
    data = yaml.safe_load((REPO / "config" / "live-micro.yaml").read_text())
    data["stages"]["medium"] = {"max_capital_usd": 10000}
    done = check_config(tmp_path, yaml.safe_dump(data))
    assert done.returncode == 2
    assert one_line(done.stderr).endswith("stages.medium.max_capital_usd: must be at most 2500, stage medium's "
                                          "built-in limit: a live profile may tighten it, never loosen or remove it "
                                          "(got 10000)")


# -- defect 3: a grant belongs to the venue it was earned on --------------------------------------
def binance_rows(recorded: bool = True) -> list[tuple]:
    """A Binance live journal promoted micro -> small, as `promote` writes it (`recorded`) or as it
    wrote it before grants named their venue."""
    venue = {"venue": "binance"} if recorded else {}
    now = datetime.now(timezone.utc)
    return [("venue", now, "binance", {"venue": "binance", "mode": "live", "environment": "live"}),
            ("stage", now, "micro", {"from": "testnet", "to": "micro", "direction": "promote", **venue}),
            ("stage", now, "small", {"from": "micro", "to": "small", "direction": "promote", **venue})]


def binance_journal(path: Path, *, recorded: bool = True) -> None:
    write_journal(path, binance_rows(recorded))


@pytest.mark.parametrize("recorded", [True, False], ids=["grant-names-venue", "old-grant-row"])
async def test_a_copied_binance_journal_does_not_start_a_bybit_account(tmp_path, monkeypatch, recorded):
    for var in ("BYBIT_LIVE_API_KEY", "BYBIT_LIVE_API_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BYBIT_LIVE_API_KEY", LK)
    monkeypatch.setenv("BYBIT_LIVE_API_SECRET", LS)
    j = await Journal.open(tmp_path / "binance.sqlite")
    for kind, ts, ref, data in binance_rows(recorded):
        j.append(kind, ts, ref, data)
    await j.close()
    shutil.copy(tmp_path / "binance.sqlite", tmp_path / "by.sqlite")
    emu = await BybitEmulator({LK: LS}, env="live").start()
    try:
        by = load_profile(profile_file(tmp_path, "by", {
            "mode": "live", "stage": "small", "venue": {"name": "bybit", "base_url": emu.url},
            "symbols": ["BTC/USDT"], "control": {"socket": False}}))
        with pytest.raises(VenueStartError) as info:
            await Engine.open(by)
    finally:
        await emu.stop()
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("bybit: stage small: the journal of profile 'by' (")
    assert "holds a grant of stage small earned on binance, not bybit; a grant counts only on the venue it was " \
           "earned on; earn it on bybit: promote this profile to micro from your bybit testnet profile" in msg


def test_the_grant_counts_on_its_own_venue_and_promote_records_it(tmp_path, capsys):
    binance_journal(tmp_path / "lv.sqlite")
    assert granted(live(tmp_path, "small")) == "small"
    # An old grant row without a venue counts where the journal's venue rows all agree.
    binance_journal(tmp_path / "old.sqlite", recorded=False)
    assert granted(live(tmp_path, "small", name="old")) == "small"
    # A Bybit profile given the Binance journal earns its own grant from a Bybit testnet record;
    # from then on the journal is Bybit's and Binance's grant no longer counts in it.
    shutil.copy(tmp_path / "lv.sqlite", tmp_path / "by.sqlite")
    by = live(tmp_path, "micro", venue="bybit", name="by")
    with pytest.raises(StageNotGranted, match="earned on binance, not bybit"):
        granted(by)
    assert cli("--to", "micro", "--profile", str(by), "--from", str(tn_profile(tmp_path, venue="bybit"))) == 0
    assert capsys.readouterr().out.startswith("promoted 'by' from testnet to micro")
    assert stage_rows(tmp_path / "by.sqlite")[-1]["venue"] == "bybit"
    assert granted(by) == "micro"
