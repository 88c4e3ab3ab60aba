"""SSH drops: the console's terminal disappears under it. The profile's default (control.on_sighup:
halt) latches the halt, closes the engine (checkpoint, session end, logs) and the process ends:
it must not linger holding the profile's lock, which would refuse the trader's next start."""
from __future__ import annotations

import os
import pty
import select
import signal
import sqlite3
import subprocess
import time

from conftest import REPO, cli_cmd, cli_env


def _drain(fd: int, seconds: float) -> bytes:
    out, end = b"", time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_the_console_halts_closes_and_exits_when_its_terminal_is_gone(tmp_path):
    home = tmp_path / "home"
    master, slave = pty.openpty()
    env = dict(cli_env(home), TERM="xterm-256color", COLUMNS="100", LINES="30")
    proc = subprocess.Popen(cli_cmd("--speed", "60"), stdin=slave, stdout=slave, stderr=slave, env=env,
                            cwd=REPO, start_new_session=True)
    os.close(slave)
    try:
        journal = home / "paper.sqlite"
        screen = b""
        deadline = time.monotonic() + 60
        while b"ACTIVE" not in screen:  # the first screen is up
            assert proc.poll() is None and time.monotonic() < deadline, "the console never painted"
            screen += _drain(master, 0.5)
        _drain(master, 1.0)
        # Nobody reads the terminal for a while (a dead SSH link), so its buffer fills and the
        # console's writes block; then the terminal goes and the session leader gets SIGHUP.
        time.sleep(3)
        os.close(master)
        master = -1
        proc.send_signal(signal.SIGHUP)
        proc.wait(timeout=30)
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with sqlite3.connect(journal) as db:
        kinds = [k for (k,) in db.execute("SELECT kind FROM events ORDER BY seq")]
    assert "halt" in kinds and kinds[-1] == "session_end" and "checkpoint" in kinds[-3:]
    # The lock went with the process: the next start is not refused as a second engine.
    again = subprocess.run(cli_cmd("run", "--headless", "--duration", "1m"), capture_output=True, text=True,
                           env=cli_env(home), cwd=REPO, timeout=120)
    assert again.returncode == 0, again.stderr
