"""The evidence for leaving a stage is the record made at that stage: the sessions of the evidence
journal that ran at it (their `session` row's mode and `config.stage`), since the journal was
granted it, and, after a downgrade of the target, since that downgrade. A backtest proves nothing,
and a journal granted one mode's stage hosts no session of another mode."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from test_analytics_helpers import T0, Fills, equity, write_journal
from test_stage_integrity import granted
from test_stages import cli, one_line, profile_file, stage_rows

from engine.config_loader import load_profile
from engine.journal import Journal
from engine.stages import StageNotGranted

MIN = 6  # the minimum trades of every stage below
# Criteria a good record passes on everything but the number of trades: each test turns on that.
LOOSE = {"min_trades": MIN, "min_days": 0, "min_return_pct": -100, "min_sharpe": -1000, "min_profit_factor": 0,
         "max_drawdown_pct": 100, "max_fee_drag_pct": 100000, "win_rate_min_pct": 0, "win_rate_max_pct": 100,
         "max_single_loss_pct": 100, "attestations": [], "drill_max_age_days": None}
BINANCE = {"venue": {"name": "binance"}, "symbols": ["BTC/USDT"]}


def traded(start: datetime, trades: int, mode: str, stage: str, n: int = 1) -> list[tuple]:
    """One session as the engine journals it (its row names the mode and the config's stage), with
    `trades` round trips 8 hours apart (+60 or -20 each before fees) and equity after each."""
    f, eq = Fills(), Decimal("10000")
    rows = [("session", start, None, {"session": n, "profile": "x", "mode": mode,
                                      "config": {"stage": stage, "paper": {"starting_cash": "10000"}}}),
            equity(start, str(eq))]
    for i in range(trades):
        t = start + timedelta(hours=8 * i + 1)
        pnl = Decimal(-20) if i % 3 == 2 else Decimal(60)
        rows.append(f(t, "BTC/USDT", "buy", "0.01", "50000", "0.5"))
        rows.append(f(t + timedelta(hours=1), "BTC/USDT", "sell", "0.01", "50000", "0.5", realized=str(pnl)))
        eq += pnl - 1
        rows.append(equity(t + timedelta(hours=2), str(eq)))
    return rows


def grant(to: str, frm: str, ts: datetime, direction: str = "promote") -> tuple:
    return ("stage", ts, to, {"from": frm, "to": to, "direction": direction, "venue": "binance"})


def err_line(capsys) -> str:
    return one_line(capsys.readouterr().err)




def live_files(tmp: Path) -> dict[str, Path]:
    """The shipped layout: one live profile name (one journal), a file per stage."""
    out = {}
    for stage in ("micro", "small", "medium"):
        path = profile_file(tmp, "live", {"mode": "live", "stage": stage, **BINANCE,
                                          "readiness": {"stages": {stage: LOOSE}}})
        out[stage] = path.rename(tmp / f"live-{stage}.yaml")
    return out


# -- finding 1: leaving a live stage is judged on that stage's record, not the whole journal ------
def test_small_is_left_only_on_sessions_run_at_small_since_small_was_granted(tmp_path, capsys):
    files, journal = live_files(tmp_path), tmp_path / "live.sqlite"
    now = datetime.now(timezone.utc)
    write_journal(journal, [grant("micro", "testnet", now), *traded(now + timedelta(minutes=1), 40, "live", "micro")])
    assert cli("--to", "small", "--profile", str(files["small"]), "--from", str(files["micro"])) == 0
    assert capsys.readouterr().out.startswith("promoted 'live' from micro to small (readiness of micro: GO")
    # Forty good micro trades sit in the journal; not one was made at small.
    assert cli("--to", "medium", "--profile", str(files["medium"]), "--from", str(files["small"])) == 1
    err = err_line(capsys)
    assert err.startswith("tradeconsole: promote: refused: readiness of stage small is NO-GO (")
    assert f"no session traded at small on the journal of 'live' ({journal}) since small was granted there" in err
    # The live-micro file started on the small grant runs at micro (its caps): still not small's record.
    write_journal(journal, traded(now + timedelta(days=30), 40, "live", "micro", n=2))
    assert cli("--to", "medium", "--profile", str(files["medium"]), "--from", str(files["small"])) == 1
    assert "no session traded at small" in err_line(capsys)
    assert [r["to"] for r in stage_rows(journal)] == ["micro", "small"]


def test_exactly_the_minimum_trades_made_at_small_since_its_grant_pass(tmp_path, capsys):
    files, journal = live_files(tmp_path), tmp_path / "live.sqlite"
    now = datetime.now(timezone.utc)
    write_journal(journal, [grant("micro", "testnet", now), *traded(now, 40, "live", "micro"),
                            grant("small", "micro", now + timedelta(days=20)),
                            *traded(now + timedelta(days=21), MIN - 1, "live", "small", n=2)])
    # One short: the forty older micro trades do not make up the one missing.
    assert cli("--to", "medium", "--profile", str(files["medium"]), "--from", str(files["small"])) == 1
    err = err_line(capsys)
    assert "readiness of stage small is NO-GO" in err and "failing: trades" in err
    assert [r["to"] for r in stage_rows(journal)] == ["micro", "small"]
    write_journal(journal, traded(now + timedelta(days=24), 1, "live", "small", n=3))
    assert cli("--to", "medium", "--profile", str(files["medium"]), "--from", str(files["small"])) == 0
    assert capsys.readouterr().out.startswith("promoted 'live' from small to medium (readiness of small: GO")
    assert [r["to"] for r in stage_rows(journal)] == ["micro", "small", "medium"]


# -- finding 2: rows count for the mode and stage of the session that made them -------------------
def test_paper_sessions_in_a_testnet_journal_prove_nothing_about_testnet(tmp_path, capsys):
    tn = profile_file(tmp_path, "tn", {"mode": "testnet", "stage": "testnet", **BINANCE,
                                       "readiness": {"stages": {"testnet": LOOSE}}})
    lv = profile_file(tmp_path, "lv", {"mode": "live", "stage": "micro", **BINANCE})
    now = datetime.now(timezone.utc)
    write_journal(tmp_path / "tn.sqlite", [grant("testnet", "paper", now),
                                           *traded(now + timedelta(minutes=1), 40, "paper", "paper")])
    assert cli("--to", "micro", "--profile", str(lv), "--from", str(tn)) == 1
    assert f"no session traded at testnet on the journal of 'tn' ({tmp_path / 'tn.sqlite'}) since testnet was " \
           f"granted there" in err_line(capsys)
    assert stage_rows(tmp_path / "lv.sqlite") == []
    # Exactly the minimum made by a testnet session passes, the paper trades beside it count for nothing.
    write_journal(tmp_path / "tn.sqlite", traded(now + timedelta(days=20), MIN, "testnet", "testnet", n=2))
    assert cli("--to", "micro", "--profile", str(lv), "--from", str(tn)) == 0
    assert capsys.readouterr().out.startswith("promoted 'lv' from testnet to micro (readiness of testnet: GO")


def test_testnet_rows_in_a_live_journal_are_no_micro_record(tmp_path, capsys):
    files, journal = live_files(tmp_path), tmp_path / "live.sqlite"
    now = datetime.now(timezone.utc)
    write_journal(journal, [grant("micro", "testnet", now),
                            *traded(now + timedelta(minutes=1), 40, "testnet", "testnet")])
    assert cli("--to", "small", "--profile", str(files["small"]), "--from", str(files["micro"])) == 1
    assert "no session traded at micro on the journal of 'live'" in err_line(capsys)
    assert [r["to"] for r in stage_rows(journal)] == ["micro"]


def test_a_journal_granted_one_modes_stage_hosts_no_session_of_another_mode(tmp_path):
    now = datetime.now(timezone.utc)
    write_journal(tmp_path / "live.sqlite", [grant("micro", "testnet", now)])
    tn = profile_file(tmp_path, "tn", {"mode": "testnet", "stage": "testnet", **BINANCE,
                                       "journal": {"path": str(tmp_path / "live.sqlite")}})
    with pytest.raises(StageNotGranted) as info:
        granted(tn)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg == (f"stage testnet: the journal of profile 'tn' ({tmp_path / 'live.sqlite'}) is granted the live "
                   f"stage micro; a testnet session must not trade on a live record: give the testnet profile its "
                   f"own journal.path")
    write_journal(tmp_path / "tn.sqlite", [grant("testnet", "paper", now)])
    pp = profile_file(tmp_path, "pp", {"mode": "paper", "journal": {"path": str(tmp_path / "tn.sqlite")}})
    with pytest.raises(StageNotGranted, match=r"^paper profile 'pp': its journal \(.*tn.sqlite\) is granted "
                                              r"testnet, a testnet record; a paper session must not trade on it"):
        granted(pp)
    # Its own journal, or one downgraded to paper, is a paper profile's to use.
    write_journal(tmp_path / "tn.sqlite", [grant("paper", "testnet", now, "downgrade")])
    assert granted(pp) == "paper"


# -- finding 5: after a downgrade, going back up needs a record made after it --------------------
def test_a_downgrade_is_not_undone_by_the_record_that_earned_the_lost_stage(tmp_path, capsys):
    tn = profile_file(tmp_path, "tn", {"mode": "testnet", "stage": "testnet", **BINANCE,
                                       "readiness": {"stages": {"testnet": LOOSE}}})
    lv = profile_file(tmp_path, "lv", {"mode": "live", "stage": "micro", **BINANCE})
    old = datetime.now(timezone.utc) - timedelta(days=200)
    write_journal(tmp_path / "tn.sqlite", [grant("testnet", "paper", old),
                                           *traded(old + timedelta(minutes=1), 40, "testnet", "testnet")])
    assert cli("--to", "micro", "--profile", str(lv), "--from", str(tn)) == 0
    assert cli("--to", "testnet", "--profile", str(lv), "--reason", "live losses") == 0
    capsys.readouterr()
    assert cli("--to", "micro", "--profile", str(lv), "--from", str(tn)) == 1
    err = err_line(capsys)
    assert "'lv' was downgraded from micro to testnet at " in err
    assert f"going back up needs a record made after that; no session traded at testnet on the journal of 'tn' " \
           f"({tmp_path / 'tn.sqlite'}) since" in err
    # One trade short of the minimum made since the downgrade: the 40 older ones do not help.
    soon = datetime.now(timezone.utc) + timedelta(minutes=1)
    write_journal(tmp_path / "tn.sqlite", traded(soon, MIN - 1, "testnet", "testnet", n=2))
    assert cli("--to", "micro", "--profile", str(lv), "--from", str(tn)) == 1
    assert "failing: trades" in err_line(capsys)
    write_journal(tmp_path / "tn.sqlite", traded(soon + timedelta(days=3), 1, "testnet", "testnet", n=3))
    assert cli("--to", "micro", "--profile", str(lv), "--from", str(tn)) == 0
    assert [(r["to"], r["direction"]) for r in stage_rows(tmp_path / "lv.sqlite")] == [
        ("micro", "promote"), ("testnet", "downgrade"), ("micro", "promote")]


# -- finding 10: a backtest proves no stage -------------------------------------------------------
def test_a_backtest_journal_is_no_paper_record(tmp_path, capsys):
    pp = profile_file(tmp_path, "pp", {"mode": "paper", "readiness": {"stages": {"paper": LOOSE}}})
    tn = profile_file(tmp_path, "tn", {"mode": "testnet", "stage": "testnet", **BINANCE})
    write_journal(tmp_path / "pp.sqlite", traded(T0, 40, "paper", "paper"))
    assert cli("--to", "testnet", "--profile", str(tn), "--from", str(pp)) == 0  # a real paper record passes
    tn.unlink()
    (tmp_path / "tn.sqlite").unlink()
    tn = profile_file(tmp_path, "tn", {"mode": "testnet", "stage": "testnet", **BINANCE})

    async def mark() -> None:
        j = await Journal.open(tmp_path / "pp.sqlite")
        try:
            await j.set_meta("made_by", "backtest")
        finally:
            await j.close()

    asyncio.run(mark())
    capsys.readouterr()
    assert cli("--to", "testnet", "--profile", str(tn), "--from", str(pp)) == 2
    assert err_line(capsys) == (
        f"tradeconsole: promote: --from: the journal of 'pp' ({tmp_path / 'pp.sqlite'}) was made by tradeconsole "
        f"backtest; a backtest proves no stage: leaving paper needs the journal of a paper profile")
    assert stage_rows(tmp_path / "tn.sqlite") == []


def test_a_paper_run_on_a_journal_granted_testnet_is_refused_at_start(tmp_path, capsys):
    """`tradeconsole run` itself refuses it: one line, exit 2, and no paper session row is journaled
    into the testnet record."""
    from console.cli import main

    now = datetime.now(timezone.utc)
    write_journal(tmp_path / "tn.sqlite", [grant("testnet", "paper", now)])
    pp = profile_file(tmp_path, "pp", {"mode": "paper", "journal": {"path": str(tmp_path / "tn.sqlite")}})
    with pytest.raises(SystemExit) as info:
        main(["run", "--headless", "--profile", str(pp), "--duration", "1m"])
    assert info.value.code == 2
    assert err_line(capsys).startswith("tradeconsole: paper profile 'pp': its journal (")

    async def sessions() -> int:
        j = await Journal.open(tmp_path / "tn.sqlite")
        try:
            return await j.count("session")
        finally:
            await j.close()

    assert asyncio.run(sessions()) == 0


def test_the_readiness_command_and_the_console_line_judge_what_promote_judges(tmp_path, capsys):
    """Forty good micro trades, then small granted: `readiness` for small (and the console's
    go/no-go line, `summary`) is NO-GO on trades, as promote is; it was GO on the micro record."""
    from console.cli import main
    from engine.analytics.readiness import summary

    files, journal = live_files(tmp_path), tmp_path / "live.sqlite"
    now = datetime.now(timezone.utc)
    write_journal(journal, [grant("micro", "testnet", now), *traded(now + timedelta(minutes=1), 40, "live", "micro"),
                            grant("small", "micro", now + timedelta(days=20))])
    assert main(["readiness", "--profile", str(files["small"]), "--stage", "small", "--json",
                 "--resamples", "100"]) == 1
    rep = json.loads(capsys.readouterr().out)
    (trades,) = [c for c in rep["criteria"] if c["name"] == "trades"]
    assert rep["verdict"] == "NO-GO" and trades["measured"] == 0 and not trades["passed"]
    line = summary(load_profile(files["small"]), journal, stage="small", resamples=100)
    assert line["verdict"] == "NO-GO" and [c["measured"] for c in line["criteria"] if c["name"] == "trades"] == [0]
    # Micro's own record is still micro's: judged for micro, the forty trades count.
    line = summary(load_profile(files["micro"]), journal, stage="micro", resamples=100)
    assert [c["measured"] for c in line["criteria"] if c["name"] == "trades"] == [40]


def test_a_stage_record_that_carries_the_account_over_is_measured_from_what_it_began_with(tmp_path):
    """Micro took the account from 10,000 to 12,000; small (granted after, a restart carrying the
    account over) took it to 11,500. Small's return is -4.17 %, not +15 % counted from the
    configured starting cash, and its drawdown is 500 from 12,000."""
    from engine.analytics.journal_data import load
    from engine.analytics.metrics import compute
    from engine.stages import record_at

    now = datetime(2026, 1, 5, tzinfo=timezone.utc)
    session = lambda n, stage, at: ("session", at, None, {"session": n, "mode": "live", "config": {
        "stage": stage, "paper": {"starting_cash": "10000"}}})
    path = write_journal(tmp_path / "live.sqlite", [
        grant("micro", "testnet", now), session(1, "micro", now), equity(now + timedelta(hours=1), "10000"),
        equity(now + timedelta(days=3), "12000"), ("session_end", now + timedelta(days=3, hours=1), None, {}),
        grant("small", "micro", now + timedelta(days=4)), session(2, "small", now + timedelta(days=5)),
        ("recovery", now + timedelta(days=5), None, {}), equity(now + timedelta(days=5, hours=1), "12000"),
        equity(now + timedelta(days=9), "11500")])
    data = load(path)
    stage_rows = load(path, ("stage",)).rows
    record = record_at(data, "small", stage_rows)
    m = compute(record, capital=record.starting_capital(Decimal(10000)), ppy=365, tz="UTC")
    assert m.returns["start_equity"] == Decimal("12000") and m.returns["final_equity"] == Decimal("11500")
    assert round(m.returns["total_return_pct"], 2) == -4.17
    assert round(m.drawdown["max_drawdown_pct"], 2) == 4.17
    # Micro's own record began fresh: measured from its starting cash, +20 %.
    micro = record_at(data, "micro", stage_rows)
    assert micro.starting_capital(Decimal(1)) == Decimal("10000")
