"""engine/ knows nothing of Textual, and a paper engine never loads a venue client library."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

PROBE = r"""
import importlib, json, pkgutil, sys
import engine
imported, failed = [], {}
for info in pkgutil.walk_packages(engine.__path__, "engine."):
    try:
        importlib.import_module(info.name)
        imported.append(info.name)
    except Exception as exc:  # reported, so the test can name it
        failed[info.name] = f"{type(exc).__name__}: {exc}"
roots = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"imported": imported, "failed": failed, "roots": roots}))
"""

FORBIDDEN = ("textual", "ccxt", "alpaca", "console")


def probe(code: str) -> dict:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_importing_every_engine_module_never_loads_textual_or_venue_clients():
    out = probe(PROBE)
    assert not out["failed"], out["failed"]
    # the walk really covered the engine
    for name in ("engine.engine", "engine.orders", "engine.brokers.paper", "engine.risk.gate",
                 "engine.risk.checks", "engine.journal", "engine.headless", "engine.config_loader"):
        assert name in out["imported"]
    loaded = [r for r in out["roots"] if r.lower().startswith(FORBIDDEN)]
    assert loaded == []


def test_a_headless_paper_session_never_loads_textual_or_venue_clients(tmp_path):
    code = f"""
import asyncio, json, sys
from engine.engine import Engine
from engine.profile import Profile
async def main():
    p = Profile(journal={{"path": {str(tmp_path / 'j.sqlite')!r}}}, logging={{"path": {str(tmp_path / 'l.log')!r}}},
                feed={{"speed": 0}}, approval={{"required": False}})
    e = await Engine.open(p, seed=1)
    await e.run(duration=300)
    await e.close()
asyncio.run(main())
print(json.dumps({{"roots": sorted({{m.split(".")[0] for m in sys.modules}})}}))
"""
    out = probe(code)
    assert [r for r in out["roots"] if r.lower().startswith(FORBIDDEN)] == []
    assert "engine" in out["roots"]
