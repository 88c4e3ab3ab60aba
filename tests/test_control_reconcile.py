"""`tradeconsole reconcile` answers a restart's differences without a screen: a real engine that
restarted into real differences (written into the paper venue's file while it was down), its
control socket served on this loop, and the CLI's own code in a thread. Each answer goes through
Engine.resolve_difference, as the console's dialog's does, and is journaled the same way."""
from __future__ import annotations

import asyncio
import os
import sqlite3
from decimal import Decimal as D
from pathlib import Path

import pytest
import yaml
from test_reconcile_safety import (
    Quiet,
    _entry_filled_while_down,
    _holding_eth,
    _restarted_with_differences,
    venue,
    warm,
)

from engine.control.client import arequest
from engine.control.differences import difference_id
from engine.control.offline import offline_halt
from engine.control.paths import socket_path
from engine.control.service import start_control
from engine.engine import Engine
from engine.models import OrderPurpose
from engine.risk.gate import TradingState


@pytest.fixture
def cli(capsys):
    """`await cli(*args)` -> (exit code, stdout, stderr) of `tradeconsole ...`, run in a thread."""
    from console.cli import main

    async def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = await asyncio.to_thread(main, list(args))
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


@pytest.fixture
async def serve():
    """`await serve(profile, tmp)` -> (engine, profile YAML path, control service): the restarted
    engine, warm, its control socket up; both closed afterwards."""
    engines: list[Engine] = []
    services: list = []

    async def start(prof, tmp: Path):
        path = tmp / "j.yaml"
        path.write_text(yaml.safe_dump(prof.model_dump(mode="json", exclude_defaults=True)))
        eng = await Engine.open(prof, seed=2)
        engines.append(eng)
        await warm(eng, Quiet())  # quotes in: adopting needs a price
        services.append(await start_control(eng))
        return eng, str(path), services[-1]

    yield start
    for svc in services:
        await svc.stop()
    for eng in engines:
        await eng.close()


def ids(eng: Engine) -> dict[str, str]:
    """kind -> id, as `reconcile` lists them."""
    return {d.kind: difference_id(d) for d in eng.reconciliation}


async def reconcile_rows(eng: Engine) -> list[dict]:
    return [r.data for r in await eng.journal.rows(["reconcile"])]


async def test_list_refusals_then_a_book_answers_the_holding_and_the_cash_and_lifts_reduce_only(tmp_path, serve, cli):
    prof, entry = await _entry_filled_while_down(tmp_path)
    eng, p, _ = await serve(prof, tmp_path)
    assert eng.state is TradingState.REDUCE_ONLY
    kid = ids(eng)
    assert set(kid) == {"closed_while_down", "quantity_mismatch", "balance_mismatch"}

    rc, out, _ = await cli("reconcile", "--profile", p)
    assert rc == 0 and "3 difference(s) between journal and venue" in out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ")}
    down = lines[kid["closed_while_down"]]
    assert entry.symbol in down and entry.client_order_id in down and "answers: book, mark-closed" in down
    assert "journal: submitted 0" in down and f"venue: filled {entry.quantity}" in down
    qty = lines[kid["quantity_mismatch"]]
    assert f"journal: 0   venue: {entry.quantity}" in qty and qty.endswith("answers: adopt, mark-closed")
    assert lines[kid["balance_mismatch"]].endswith("answers: adopt")
    assert f"--profile {p} --answer ID ACTION" in out

    # Wrong id, an answer that line does not take, an unknown word: one line each, exit 2, nothing done.
    rc, out, err = await cli("reconcile", "--profile", p, "--answer", "zzz999", "adopt")
    assert (rc, out) == (2, "") and err.strip() == (
        "tradeconsole: reconcile: no difference 'zzz999': `tradeconsole reconcile` lists the open ones and their ids")
    rc, out, err = await cli("reconcile", "--profile", p, "--answer", kid["quantity_mismatch"], "cancel")
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert f"cancel is not an answer to difference {kid['quantity_mismatch']}" in err
    assert err.strip().endswith("choose adopt, mark-closed")
    rc, _, err = await cli("reconcile", "--profile", p, "--answer", kid["balance_mismatch"], "sell")
    assert rc == 2 and err.strip() == "tradeconsole: reconcile: unknown answer 'sell'; answers: adopt, book, cancel, mark-closed"
    assert "Traceback" not in err
    assert not await reconcile_rows(eng) and not any(d.resolved for d in eng.reconciliation)

    # book: the fill booked at the venue's price with the entry's stop; it answers the holding too.
    rc, out, err = await cli("reconcile", "--profile", p, "--answer", kid["closed_while_down"].upper(), "book")
    assert rc == 0, err
    assert out.startswith(f"book: closed while down: {entry.symbol} {entry.client_order_id}")
    assert f"position      {entry.symbol} {entry.quantity}, stop {entry.protective_stop} working" in out
    # The cash matches the venue's again: that line is answered by the book too.
    assert "no differences remain: the engine has left reduce-only (trading ACTIVE)" in out
    pos = eng.portfolio.positions[entry.symbol]
    assert (pos.quantity, pos.avg_price) == (entry.quantity, entry.limit_price)
    assert eng.orders.stop_order(entry.symbol).stop_price == entry.protective_stop
    (fill,) = await eng.journal.rows(["fill"], ref=entry.client_order_id)
    assert D(fill.data["price"]) == entry.limit_price
    assert eng.state is TradingState.ACTIVE
    # Answered meanwhile (by the dialog, say): the engine refuses, exit 1.
    rc, out, _ = await cli("reconcile", "--profile", p, "--answer", kid["quantity_mismatch"], "adopt")
    assert rc == 1 and out.startswith("answer REFUSED: difference") and "already answered: book" in out

    rc, out, _ = await cli("reconcile", "--profile", p, "--answer", kid["balance_mismatch"], "adopt")
    assert rc == 1 and "already answered: book" in out
    assert eng.state is TradingState.ACTIVE
    assert eng.portfolio.cash == (await eng.broker.balances())[eng.broker.cash_currency]
    d = {r["kind"]: r for r in await reconcile_rows(eng)}
    texts = {x.kind: x.text for x in eng.reconciliation}
    assert d["closed_while_down"] == {"difference": texts["closed_while_down"], "action": "book",
                                      "kind": "closed_while_down", "symbol": entry.symbol}
    assert d["quantity_mismatch"]["action"] == "book" and d["quantity_mismatch"]["by"] == entry.client_order_id
    assert d["balance_mismatch"]["action"] == "book" and d["balance_mismatch"]["by"] == entry.client_order_id
    rc, out, _ = await cli("reconcile", "--profile", p)
    assert rc == 0 and out.startswith("no open differences between journal and venue (3 answered); trading is ACTIVE")
    rc, out, _ = await cli("status", "--profile", p)
    assert rc == 0 and "RECONCILE" not in out


async def _restart_holding(tmp_path: Path, venue_qty) -> tuple:
    """ETH held with its stop; the venue is told it holds `venue_qty(held)` instead."""
    prof, eng = await _holding_eth(tmp_path)
    pos = eng.portfolio.positions["ETH/USD"]
    held, stop_price, old_stop = pos.quantity, pos.stop_price, pos.stop_order_id
    await eng.close()
    db = venue(tmp_path)
    db.execute("UPDATE positions SET quantity = ? WHERE symbol = 'ETH/USD'", (str(venue_qty(held)),))
    db.commit()
    db.close()
    return prof, held, stop_price, old_stop


async def test_mark_closed_cancels_the_stop_and_a_halted_engine_stays_halted(tmp_path, serve, cli):
    prof, _, _, old_stop = await _restart_holding(tmp_path, lambda held: 0)
    await offline_halt(prof, "before the restart")  # `tradeconsole halt` with no engine running
    eng, p, svc = await serve(prof, tmp_path)
    assert eng.state is TradingState.HALTED
    (d,) = eng.reconciliation
    ident = difference_id(d)
    rc, out, _ = await cli("status", "--profile", p)
    assert f"  {ident}  quantity mismatch: ETH/USD" in out and "tradeconsole reconcile" in out
    path = socket_path(eng.profile)
    r = await arequest(path, {"cmd": "resolve", "difference": ident, "action": "mark-closed"})
    assert r["ok"] is False and "\"action\": one of" in r["error"]  # the protocol takes the engine's names
    # The socket's peer check holds for answers as for every command.
    svc.server.own_uid = os.geteuid() + 4242
    r = await arequest(path, {"cmd": "resolve", "difference": ident, "action": "mark_closed"})
    assert r["ok"] is False and "refused: peer uid" in r["error"] and d.resolved is None
    svc.server.own_uid = os.geteuid()

    rc, out, _ = await cli("reconcile", "--profile", p, "--answer", ident, "mark-closed")
    assert rc == 0, out
    assert out.splitlines()[0] == f"mark-closed: {d.text} — answered and journaled"
    assert "position" not in out  # flat now
    assert "no differences remain; trading stays HALTED — before the restart" in out
    assert "ETH/USD" not in eng.portfolio.positions
    assert old_stop not in eng.orders.working
    assert old_stop not in {o.client_order_id for o in await eng.broker.open_orders()}
    assert [r.data["status"] for r in await eng.journal.rows(["order"], ref=old_stop)][-1] == "cancelled"
    assert await reconcile_rows(eng) == [{"difference": d.text, "action": "mark_closed", "kind": "quantity_mismatch",
                                          "symbol": "ETH/USD"}]
    assert eng.state is TradingState.HALTED and not eng.reconcile_hold()


async def test_adopt_places_the_stop_and_journals_what_the_dialog_journals(tmp_path, serve, cli):
    answered = {}
    for via in ("dialog", "cli"):  # the same restart twice, answered each way
        tmp = tmp_path / via
        tmp.mkdir()
        prof, held, stop_price, old_stop = await _restart_holding(tmp, lambda held: held * 2)
        eng, p, _ = await serve(prof, tmp)
        (d,) = eng.reconciliation
        if via == "cli":
            rc, out, _ = await cli("reconcile", "--profile", p, "--answer", difference_id(d), "adopt")
            assert rc == 0 and out.startswith(f"adopt: {d.text} — answered and journaled")
            assert f"position      ETH/USD {held * 2}, stop {stop_price} working" in out
            assert "no differences remain: the engine has left reduce-only (trading ACTIVE)" in out
        else:  # what console/reconcile.py calls on the dialog's `a`
            assert await eng.resolve_difference(0, "adopt") is None
        await eng.orders.process_events()
        assert eng.state is TradingState.ACTIVE and eng.portfolio.positions["ETH/USD"].quantity == held * 2
        stops = [(o.quantity, o.stop_price) for o in eng.orders.working.values()
                 if o.symbol == "ETH/USD" and o.purpose is OrderPurpose.STOP]
        assert stops == [(held * 2, stop_price)] and old_stop not in eng.orders.working
        answered[via] = (await reconcile_rows(eng), [a.message for a in eng.alerts.recent()
                                                     if a.kind in ("adopted_stop", "reconciliation")])
    (row,), _ = answered["cli"]
    assert row["action"] == "adopt" and D(row["stop"]) == stop_price and "the position's stop" in row["stop_basis"]
    assert answered["cli"] == answered["dialog"]


async def test_no_engine_running_says_so_and_answers_nothing(tmp_path, cli):
    prof, _, _, _ = await _restart_holding(tmp_path, lambda held: 0)
    path = tmp_path / "j.yaml"
    path.write_text(yaml.safe_dump(prof.model_dump(mode="json", exclude_defaults=True)))
    for extra in ((), ("--answer", "abc123", "mark-closed")):
        rc, out, err = await cli("reconcile", "--profile", str(path), *extra)
        assert rc == 3 and err == ""
        assert out.strip() == (f"no engine is running for profile {prof.name!r}: nothing to reconcile. "
                               "The next start compares the journal with the venue again.")
    j = sqlite3.connect(tmp_path / "j.sqlite")
    assert not j.execute("SELECT 1 FROM events WHERE kind = 'reconcile'").fetchall()
    j.close()


async def test_two_answers_to_one_difference_at_once_act_once(tmp_path):
    """The console's dialog and `tradeconsole reconcile` can answer the same line at the same
    moment; the venue's answer takes time, and both must not adopt the position."""
    eng, _ = await _restarted_with_differences(tmp_path)
    try:
        i = next(n for n, d in enumerate(eng.reconciliation) if d.kind == "quantity_mismatch")
        ask = eng.broker.positions

        async def slow_venue():
            await asyncio.sleep(0.05)
            return await ask()
        eng.broker.positions = slow_venue
        first, second = await asyncio.gather(eng.resolve_difference(i, "adopt"), eng.resolve_difference(i, "adopt"))
        assert first is None and "being carried out" in second
        assert len([r for r in await eng.journal.rows(["reconcile"]) if r.data["kind"] == "quantity_mismatch"]) == 1
        assert await eng.resolve_difference(i, "adopt") == "already resolved (adopt)"
        assert eng.portfolio.positions["BTC/USD"].quantity == D("0.01")
    finally:
        await eng.close()
