"""Who the control socket's client and server trust.

The client never talks to a socket that is not this user's alone (its folder or file owned by
someone else, a folder others can write, a symlink, a peer of another uid): it says so in one
line, and `tradeconsole halt` latches the journal instead and exits non-zero, never printing a
stranger's "HALTED". The engine refuses such a folder and, trading without a socket, raises a
critical alert. A halt whose latch is not journaled yet exits non-zero; a socket halt never
goes through with an empty reason."""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from pathlib import Path

import pytest
import yaml
from conftest import LOOSE_RISK

from engine.config_loader import load_profile
from engine.control import paths as control_paths
from engine.control import service as control_service
from engine.control.client import Untrusted, arequest, request
from engine.control.paths import lock_holder, lock_path, sun_address
from engine.control.protocol import Request
from engine.control.service import start_control
from engine.engine import Engine
from engine.risk.gate import TradingState

FAKE = {"ok": True, "state": "halted", "was": "active", "halt_reason": "fake", "persisted": True,
        "cancels_done": True, "still_open": [], "working_entries": 0, "positions": 0}


@pytest.fixture(autouse=True)
def quick_lock(monkeypatch):
    monkeypatch.setattr(control_service, "LOCK_WAIT", 0.2)


class FakeEngine:
    """Something else listening at the socket's path, answering every request with a fake HALTED."""

    def __init__(self, path: Path, mode: int = 0o600) -> None:
        self.received = bytearray()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with sun_address(path) as addr:
            self.sock.bind(addr)
        os.chmod(path, mode)
        self.sock.listen(4)
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    self.received += conn.recv(65536)
                    conn.sendall((json.dumps(FAKE) + "\n").encode())
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def fake(tmp_path):
    made: list[FakeEngine] = []

    def make(folder_mode: int = 0o700, sock_mode: int = 0o600) -> Path:
        folder = tmp_path / "sh"
        folder.mkdir()
        os.chmod(folder, folder_mode)
        path = folder / "e.sock"
        made.append(FakeEngine(path, sock_mode))
        return path

    yield make
    for f in made:
        f.close()
    for f in made:
        assert bytes(f.received) == b"", "a request reached a socket the client must not trust"


def write_profile(tmp: Path, name: str, **extra) -> Path:
    doc = {"name": name, "journal": {"path": str(tmp / f"{name}.sqlite")}, "logging": {"path": str(tmp / f"{name}.log")},
           "approval": {"required": False}, "risk": dict(LOOSE_RISK), **extra}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def halt_rows(journal: Path) -> list[dict]:
    if not journal.exists():
        return []
    with sqlite3.connect(journal) as db:
        return [json.loads(d) for (d,) in db.execute("SELECT data FROM events WHERE kind = 'halt' ORDER BY seq")]


def test_a_socket_in_a_folder_other_users_can_write_is_never_talked_to(fake):
    path = fake(folder_mode=0o777)
    with pytest.raises(Untrusted, match="other users can put a socket there"):
        request(path, {"cmd": "halt", "reason": "x"})


def test_a_folder_or_socket_owned_by_another_user_is_never_talked_to(fake, monkeypatch):
    path = fake()
    monkeypatch.setattr(control_paths, "current_uid", lambda: os.geteuid() + 4242)
    with pytest.raises(Untrusted, match="owned by uid"):
        request(path, {"cmd": "status"})


def test_a_loose_socket_and_symlinks_are_never_talked_to(fake, tmp_path):
    path = fake(sock_mode=0o777)
    with pytest.raises(Untrusted, match="mode 0777"):
        request(path, {"cmd": "status"})
    link_dir = tmp_path / "ln"
    link_dir.symlink_to(path.parent)
    with pytest.raises(Untrusted, match="symlink"):
        request(link_dir / path.name, {"cmd": "status"})
    own = tmp_path / "own"
    own.mkdir(mode=0o700)
    (own / "e.sock").symlink_to(path)
    with pytest.raises(Untrusted, match="symlink"):
        request(own / "e.sock", {"cmd": "status"})


async def test_a_peer_running_as_another_user_is_not_believed(fake, monkeypatch):
    path = fake()
    # The kernel reports our own uid for the fake; make "this user" someone else past the path checks.
    monkeypatch.setattr(control_paths, "untrusted_reason", lambda p: None)
    monkeypatch.setattr(control_paths, "current_uid", lambda: os.geteuid() + 4242)
    with pytest.raises(Untrusted, match="runs as uid"):
        request(path, {"cmd": "status"})
    with pytest.raises(Untrusted, match="runs as uid"):
        await arequest(path, {"cmd": "status"})


def test_cli_halt_on_a_fake_socket_latches_the_journal_and_exits_non_zero(fake, tmp_path, capsys):
    from console.cli import main

    path = fake(folder_mode=0o777)
    prof = write_profile(tmp_path, "fk", control={"socket_path": str(path)})
    rc = main(["halt", "--reason", "3am", "--profile", str(prof)])
    out, err = capsys.readouterr()
    assert rc != 0
    assert "HALTED: fake" not in out and "latch journaled: yes" not in out
    assert len(err.strip().splitlines()) == 1 and "NOT talking to the control socket" in err
    assert [r["source"] for r in halt_rows(tmp_path / "fk.sqlite")] == ["cli"]
    rc = main(["status", "--profile", str(prof)])
    out, err = capsys.readouterr()
    assert rc != 0 and "NOT talking" in err and "next start    HALTED" in out


async def test_engine_refusing_a_shared_folder_raises_a_critical_alert_and_keeps_its_lock(tmp_path, capsys):
    import asyncio

    from console.cli import main

    shared = tmp_path / "sh"
    shared.mkdir()
    os.chmod(shared, 0o777)  # e.g. /tmp/tc, which any user could have made first
    prof = write_profile(tmp_path, "sv", control={"socket_path": str(shared / "e.sock")})
    eng = await Engine.open(load_profile(str(prof)))
    svc = None
    try:
        svc = await control_service.start(eng)  # the runners' path
        assert svc is not None and svc.server is None and not (shared / "e.sock").exists()
        crit = [a for a in eng.alerts.recent() if a.severity == "critical"]
        assert any("NO control socket" in a.message and "kill -HUP" in a.message for a in crit), crit
        assert lock_holder(lock_path(eng.profile)) == os.getpid()  # still the one engine of this journal
        # No socket, but the halt still lands: the engine reads it from its journal within a second.
        rc = await asyncio.to_thread(main, ["halt", "--reason", "no socket", "--profile", str(prof)])
        out = capsys.readouterr().out
        assert rc == 0 and "read the halt from the journal" in out and eng.state.value == "halted"
    finally:
        if svc is not None:
            await svc.stop()
        await eng.close()


async def test_cli_halt_whose_latch_is_not_journaled_yet_exits_non_zero(tmp_path, capsys):
    import asyncio

    from console.cli import main

    prof = write_profile(tmp_path, "nj")
    eng = await Engine.open(load_profile(str(prof)))
    svc = await start_control(eng, command_budget=0.0)  # the answer goes before the commit lands
    try:
        rc = await asyncio.to_thread(main, ["halt", "--reason", "slow disk", "--profile", str(prof)])
        out, err = capsys.readouterr()
        assert eng.state is TradingState.HALTED
        assert "latch journaled: NOT YET" in out and "NOT journaled yet" in err
        assert rc == 1
    finally:
        await svc.stop()
        await eng.close()


async def test_a_socket_halt_never_goes_through_with_an_empty_reason(tmp_path):
    prof = write_profile(tmp_path, "er")
    eng = await Engine.open(load_profile(str(prof)))
    svc = await start_control(eng)
    try:
        reply = await svc.server._cmd_halt(Request("halt", "   "))
        assert reply["ok"] and eng.state is TradingState.HALTED
        assert eng.halt_reason.strip() and "control socket" in eng.halt_reason
    finally:
        await svc.stop()
        await eng.close()
