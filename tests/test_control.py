"""The control socket against a real in-process engine (paper broker, simulated market, SimClock):
permissions, one instance per profile, stale sockets, the protocol's commands, malformed and
hostile requests, the peer-uid check, and the signal policy. Subprocess CLI runs are in
test_control_cli.py."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
from pathlib import Path

import pytest
from conftest import LOOSE_RISK

from engine.control import service as control_service
from engine.control.client import NotRunning, arequest
from engine.control.paths import ControlPathError, lock_path, socket_path
from engine.control.protocol import MAX_LINE
from engine.control.server import check_peer, peer_uid
from engine.control.service import ControlStartError, start_control
from engine.control.signals import SignalPolicy, policy_for
from engine.risk.gate import TradingState


@pytest.fixture(autouse=True)
def quick_lock(monkeypatch):
    # A second instance is refused after LOCK_WAIT; the tests need not wait the full 2 s.
    monkeypatch.setattr(control_service, "LOCK_WAIT", 0.2)


@pytest.fixture
async def served(make_profile, open_engine):
    """`await served(**profile_sections)` -> (engine, service) with the control socket up."""
    services = []

    async def start(server_options=None, **sections):
        eng = await open_engine(make_profile(risk=LOOSE_RISK, **sections))
        await eng.run(duration=60)  # quotes for every symbol
        svc = await start_control(eng, **(server_options or {}))
        services.append(svc)
        return eng, svc

    yield start
    for svc in services:
        await svc.stop()


async def raw(path: Path, data: bytes, *, expect: int | None = None, timeout: float = 5) -> list[bytes]:
    """Send raw bytes on a fresh connection; the answer lines, `expect` of them or until the
    server closes the connection."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(data)
        await writer.drain()
        lines: list[bytes] = []
        while expect is None or len(lines) < expect:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line:
                break
            lines.append(line)
        return lines
    finally:
        writer.close()


async def test_run_dir_0700_socket_0600_and_removed_on_stop(served):
    eng, svc = await served()
    path = socket_path(eng.profile)
    assert path == Path(eng.journal.path).parent / "run" / f"{eng.profile.name}.sock"
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()
    assert (await arequest(path, {"cmd": "ping"}))["pid"] == os.getpid()
    await svc.stop()
    assert not path.exists()
    with pytest.raises(NotRunning):
        await arequest(path, {"cmd": "ping"})


async def test_loose_run_dir_is_tightened_and_a_shared_custom_dir_refused(make_profile, open_engine, tmp_path):
    (tmp_path / "run").mkdir(mode=0o755)
    os.chmod(tmp_path / "run", 0o755)
    eng = await open_engine(make_profile())
    svc = await start_control(eng)
    assert stat.S_IMODE(os.stat(tmp_path / "run").st_mode) == 0o700
    await svc.stop()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    eng2 = await open_engine(make_profile("k", control={"socket_path": str(shared / "k.sock")}))
    with pytest.raises(ControlPathError, match="lets other users in"):
        await start_control(eng2)
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755  # a user's own directory is not chmod-ed


async def test_second_instance_refused_stale_socket_replaced(served, open_engine, make_profile):
    eng, svc = await served()
    path = socket_path(eng.profile)
    other = await open_engine(make_profile())  # same profile, same journal: a second engine
    with pytest.raises(ControlStartError, match="another engine .*pid"):
        await start_control(other)
    await svc.stop()
    # Something answers on the socket path without holding the lock (an older build, say): refused too.
    squatter = await asyncio.start_unix_server(lambda r, w: w.close(), path=str(path))
    with pytest.raises(ControlStartError, match="answers on"):
        await start_control(other)
    squatter.close()
    await squatter.wait_closed()
    path.unlink(missing_ok=True)  # newer Pythons remove it on close, 3.11 does not
    # A socket file left by a kill -9 (nobody listens): removed and replaced.
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()
    assert path.exists()
    svc2 = await start_control(other)
    try:
        assert (await arequest(path, {"cmd": "ping"}))["ok"]
    finally:
        await svc2.stop()
    # A file that is not a socket is never deleted.
    path.write_text("not a socket")
    with pytest.raises(ControlPathError, match="not a socket"):
        await start_control(other)
    assert path.read_text() == "not a socket"


async def test_long_socket_path_goes_through_proc_fd(make_profile, open_engine, tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    eng = await open_engine(make_profile(journal={"path": str(deep / "j.sqlite")}))
    svc = await start_control(eng)
    try:
        path = socket_path(eng.profile)
        assert len(os.fsencode(str(path))) > 107
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        assert (await arequest(path, {"cmd": "status"}))["running"]
    finally:
        await svc.stop()
    assert not path.exists()


async def test_status_halt_close_all_rearm_round_trip(served):
    eng, _ = await served(orders={"limit_offset_bps": 50, "limit_timeout_seconds": 7200})
    path = socket_path(eng.profile)
    while not eng.portfolio.positions:
        await eng.run(duration=30)
    s = await arequest(path, {"cmd": "status", "id": 7})
    assert s["ok"] and s["id"] == 7 and s["trading_state"] == "active"
    assert len(s["positions"]) == len(eng.portfolio.positions)
    assert isinstance(s["equity"], str)  # Decimal as its exact string
    assert {b["name"] for b in s["breakers"]} >= {"daily_loss", "drawdown_stop"}
    h = await arequest(path, {"cmd": "halt", "reason": "3 a.m.\n  test"})
    assert h["ok"] and h["state"] == "halted" and h["persisted"] and h["cancels_done"]
    assert h["halt_reason"] == "3 a.m. test" and h["working_entries"] == 0
    assert eng.state is TradingState.HALTED
    rows = await eng.journal.rows(["halt"])
    assert rows[-1].data["source"] == "cli" and rows[-1].data["reason"] == "3 a.m. test"
    # the stops stayed: one working stop per position
    stops = [o for o in eng.orders.working.values() if o.purpose.value == "stop"]
    assert len(stops) == len(eng.portfolio.positions) > 0
    c = await arequest(path, {"cmd": "close_all"})
    assert c["ok"] and c["positions"] >= 1 and c["exit_orders"]
    for _ in range(20):
        if not eng.portfolio.positions:
            break
        await eng.run(duration=5)
    assert not eng.portfolio.positions
    assert (await eng.journal.rows(["close_all"]))[-1].data["source"] == "cli"
    r = await arequest(path, {"cmd": "rearm", "reason": "checked"})
    assert r == {"ok": True, "state": "active", "note": ""}
    assert (await eng.journal.rows(["rearm"]))[-1].data["reason"] == "checked"


async def test_rearm_refused_while_a_breaker_is_over_its_limit(served):
    eng, _ = await served(breakers={"api_failure_limit": 1})
    path = socket_path(eng.profile)
    eng.api_failures.record()
    eng._evaluate_breakers(eng.clock.now())  # api_failures trips and halts
    await asyncio.sleep(0.05)
    assert eng.state is TradingState.HALTED
    r = await arequest(path, {"cmd": "rearm", "reason": "try"})
    assert r["ok"] is False and r["refused"] and "api_failures" in r["error"] and r["state"] == "halted"


@pytest.mark.parametrize("data, message", [
    (b"garbage\n", "not JSON"),
    (b"[1, 2]\n", "JSON object"),
    (b"{}\n", "needs \"cmd\""),
    (b'{"cmd": "sell_everything"}\n', "unknown cmd"),
    (b'{"cmd": "halt"}\n', "non-empty \"reason\""),
    (b'{"cmd": "halt", "reason": "   "}\n', "non-empty \"reason\""),
    (b'{"cmd": "rearm", "reason": 5}\n', "non-empty \"reason\""),
    (b'{"cmd": "status", "force": true}\n', "unknown field"),
    (b'{"cmd": "halt", "reason": "' + b"x" * 600 + b'"}\n', "longer than 500"),
    (b'\xff\xfe{"cmd"\n', "not UTF-8"),
])
async def test_malformed_request_gets_an_error_and_the_connection_goes_on(served, data, message):
    eng, _ = await served()
    path = socket_path(eng.profile)
    lines = await raw(path, data + b'{"cmd": "ping"}\n', expect=2)
    assert len(lines) == 2, lines
    first, second = (json.loads(x) for x in lines)
    assert first["ok"] is False and message in first["error"]
    assert second["pong"] is True
    assert eng.state is TradingState.ACTIVE  # nothing malformed ever halts (or does anything)


async def test_huge_line_slow_client_and_flood_never_hurt_the_engine(served):
    eng, svc = await served(server_options={"read_timeout": 0.3, "max_clients": 2})
    path = socket_path(eng.profile)
    huge = await raw(path, b'{"cmd": "status", "pad": "' + b"x" * (MAX_LINE + 10_000) + b'"}\n')
    assert len(huge) == 1 and b"longer than" in huge[0]  # answered, then closed
    # A client that sends half a line and stalls is answered and dropped after the read timeout.
    slow = await raw(path, b'{"cmd": "sta')
    assert len(slow) == 1 and b"read timeout" in slow[0]
    idle = await raw(path, b"")
    assert len(idle) == 1 and b"read timeout" in idle[0]
    # Connect-and-vanish clients and a burst of requests on one connection.
    for _ in range(20):
        _, w = await asyncio.open_unix_connection(str(path))
        w.close()
    burst = await raw(path, b'{"cmd": "ping"}\n' * 200, expect=200)
    assert len(burst) == 200 and all(b'"pong":true' in x for x in burst)
    # More connections at once than max_clients: the extra one is told so and closed.
    held = [await asyncio.open_unix_connection(str(path)) for _ in range(2)]
    await asyncio.sleep(0.05)
    busy = await raw(path, b'{"cmd": "ping"}\n')
    assert len(busy) == 1 and b"busy" in busy[0]
    for _, w in held:
        w.close()
    ticks = eng.counters["ticks"]
    await eng.run(duration=30)
    assert eng.counters["ticks"] > ticks
    assert (await arequest(path, {"cmd": "status"}))["trading_state"] == "active"
    assert svc.server.errors >= 3


async def test_peer_of_another_uid_is_refused(served, monkeypatch):
    assert check_peer(os.geteuid(), os.geteuid()) is None
    assert "uid 1234" in check_peer(1234, 0)
    assert "uid 0" in check_peer(0, 1000)  # root is not special either
    assert check_peer(None, 0) is None  # no SO_PEERCRED: the file modes still guard
    a, b = socket.socketpair(socket.AF_UNIX)
    try:
        assert peer_uid(a) == os.geteuid()
    finally:
        a.close()
        b.close()
    eng, svc = await served()
    path = socket_path(eng.profile)
    # The kernel reports our uid; make the server belong to somebody else to see the refusal.
    svc.server.own_uid = os.geteuid() + 4242
    lines = await raw(path, b'{"cmd": "halt", "reason": "intruder"}\n')
    assert len(lines) == 1 and b"refused: peer uid" in lines[0]
    assert eng.state is TradingState.ACTIVE
    assert not await eng.journal.rows(["halt"])


async def test_cli_halt_between_open_and_service_start_is_not_lost(make_profile, open_engine):
    from engine.control.offline import offline_halt

    profile = make_profile()
    eng = await open_engine(profile)
    assert eng.state is TradingState.ACTIVE
    await offline_halt(profile, "written while the engine was opening")
    svc = await start_control(eng)
    try:
        assert eng.state is TradingState.HALTED and "while the engine was opening" in eng.halt_reason
        assert lock_path(profile).exists()
    finally:
        await svc.stop()


async def test_signal_policy(make_profile, open_engine):
    eng = await open_engine(make_profile(control={"on_sighup": "ignore", "on_sigterm": "shutdown"}))
    stops: list[int] = []
    policy = SignalPolicy(eng, lambda: stops.append(1))
    policy.handle("SIGHUP")
    assert eng.state is TradingState.ACTIVE and not stops
    policy.handle("SIGTERM")
    assert eng.state is TradingState.ACTIVE and stops == [1] and await policy.settle(1)
    eng2 = await open_engine(make_profile("k"))
    stops.clear()
    policy = SignalPolicy(eng2, lambda: stops.append(1))
    policy.handle("SIGINT")
    assert eng2.state is TradingState.HALTED and stops == [1]
    policy.handle("SIGINT")  # a second one while stopping: no second stop
    assert stops == [1] and await policy.settle(2)
    halts = await eng2.journal.rows(["halt"])
    assert [r.data["source"] for r in halts] == ["signal"] and "SIGINT" in halts[0].data["reason"]


async def test_a_signal_before_the_runner_attaches_halts_and_ends_it_on_attach(make_profile, open_engine):
    # The control service installs the policy as the socket comes up (ending = Engine.stop); the
    # runner attaches later. A SIGHUP in between halts at once and ends the runner as it attaches.
    eng = await open_engine(make_profile())
    svc = await start_control(eng, install_signals=True)
    try:
        policy = policy_for(eng)
        assert svc.signals is policy and not policy.attached
        policy.handle("SIGHUP")
        assert eng.state is TradingState.HALTED and policy.stopping
        ended: list[str] = []
        assert policy_for(eng, lambda: ended.append("runner")) is policy
        assert ended == ["runner"] and policy.attached
        assert await policy.settle(2)
        assert (await eng.journal.rows(["halt"]))[-1].data["source"] == "signal"
    finally:
        await svc.stop()
        policy_for(eng).uninstall()


async def test_with_no_runner_attached_a_signal_still_ends_the_process_after_the_halt(make_profile, open_engine,
                                                                                      monkeypatch):
    # An app that never attaches (a console without the hook) must not live on with a stopped
    # engine: once the halt is committed, the process ends as the signal would have ended it.
    from engine.control import signals as signals_mod

    monkeypatch.setattr(signals_mod, "ATTACH_GRACE", 0.05)
    eng = await open_engine(make_profile())
    policy = policy_for(eng)
    killed: list[tuple[int, int]] = []
    policy._kill = lambda pid, sig: killed.append((pid, sig))
    policy.handle("SIGTERM")
    await asyncio.wait_for(policy._unattended, 5)
    assert killed == [(os.getpid(), signal.SIGTERM)]
    assert (await eng.journal.rows(["halt"]))[-1].data["reason"] == "SIGTERM received: orderly shutdown"
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
