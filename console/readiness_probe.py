"""Measure the readiness verdict in a child process, so the console's loop and its GIL never carry
it: reading a long journal and bootstrapping it is seconds of Python, and a thread doing that
would still take the interpreter from the screen in 5 ms slices while a key waits.

The child is a fresh interpreter (`python -m console.readiness_probe JOURNAL`), started with
asyncio's own subprocess support: nothing blocks the loop, and nothing of the parent is
inherited but the pipes (forking a process that runs threads can deadlock the child, and
multiprocessing wants a real stderr, which the console has taken over). The profile goes in on
stdin (pickled: a profile built in code need not round-trip through its YAML), the answer comes
back on stdout as JSON, and the child's stderr goes nowhere: the terminal is the console's.

This module imports nothing heavy at the top: the child runs it, and the child never imports
Textual.
"""
from __future__ import annotations

import asyncio
import os
import pickle
import sys
from pathlib import Path
from typing import Any

TIMEOUT = 120.0  # a check that takes longer than this is abandoned (and its process killed)
REAP_SECONDS = 2.0  # a killed child is waited for this long
ROOT = Path(__file__).resolve().parents[1]


class Probe:
    """One check at a time; `stop()` kills a check still running (the console is quitting)."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None

    async def ask(self, profile: Any, journal: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        import orjson

        env = dict(os.environ)
        # The child imports this project as the parent does, whether or not it is installed.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "console.readiness_probe", journal, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env)
        self._proc = proc
        try:
            out, _ = await asyncio.wait_for(proc.communicate(pickle.dumps(profile)), timeout)
        except asyncio.TimeoutError:
            return {"stage": _stage_label(profile), "error": f"readiness check took over {timeout:g} s; abandoned"}
        finally:
            self.stop()
            self._proc = None
            # Reaped here, even when this check was cancelled (the console quitting): a child left
            # to the garbage collector outlives the loop that should close its pipes.
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), REAP_SECONDS)
                except asyncio.TimeoutError:
                    pass
        try:
            return orjson.loads(out)
        except orjson.JSONDecodeError:
            return {"stage": _stage_label(profile),
                    "error": f"readiness check ended without an answer (exit {proc.returncode})"}

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.kill()


def _stage_label(profile: Any) -> str:
    """The stage a check that gave no answer was for, without reading the journal: a paper profile
    is judged at paper whatever its `stage:` (engine/stages.py::current_stage), others at theirs."""
    from engine.stages import current_stage

    return current_stage(profile, None) or profile.stage


def main(argv: list[str]) -> int:
    """The child: a pickled profile on stdin, the journal's path as the argument, JSON out."""
    import orjson

    profile = pickle.load(sys.stdin.buffer)
    try:
        from engine.analytics.readiness import summary

        answer = summary(profile, argv[0])
    except Exception as exc:  # any failure is the console's to show, as text
        answer = {"stage": getattr(profile, "stage", ""), "error": f"readiness check failed: {exc!r}"}
    sys.stdout.buffer.write(orjson.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
