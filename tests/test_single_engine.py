"""Two engines must never trade one profile: the second start is refused with one line, exit 2."""
import os
import subprocess
import sys
import time

import yaml


def test_a_second_engine_on_the_same_profile_is_refused(tmp_path):
    prof = tmp_path / "p.yaml"
    prof.write_text(yaml.safe_dump({"name": "once", "journal": {"path": str(tmp_path / "once.sqlite")},
                                    "approval": {"required": False}}))
    env = dict(os.environ, TRADECONSOLE_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, "-m", "console", "run", "--headless", "--profile", str(prof), "--speed", "1"]
    first = subprocess.Popen(cmd + ["--duration", "1h"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        sock = tmp_path / "run" / "once.sock"
        deadline = time.monotonic() + 20
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sock.exists(), first.stderr.read().decode() if first.poll() is not None else "no socket"
        second = subprocess.run(cmd + ["--duration", "1m"], capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 2, second.stderr
        (line,) = second.stderr.strip().splitlines()
        assert "already running" in line and "Traceback" not in second.stderr
    finally:
        first.terminate()
        first.wait(timeout=20)
