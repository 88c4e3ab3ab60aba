"""`tradeconsole alerts test`: one real test message of each severity to the channels configured
for it (and one heartbeat ping), one attempt each, results per channel and severity.

No engine and no journal: this checks the wiring (variables, URLs, servers, credentials) before a
session relies on it. Channels are tried side by side; a channel's severities go one after another.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Mapping

from ..clock import WallClock
from .config import AlertsConfig
from .endpoint import Endpoint, Outcome, build_endpoints

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class CheckResult:
    channel: str
    label: str  # scheme and host only
    severity: str  # or "ping" for the heartbeat
    outcome: Outcome

    def line(self, width: int = 12, label_width: int = 28) -> str:
        result = "ok" if self.outcome.ok else f"failed: {self.outcome.error}"
        return f"{self.channel:<{width}} {self.label:<{label_width}} {self.severity:<8} {result}"


class ConfigProblems(Exception):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


async def send_tests(cfg: AlertsConfig, profile_name: str, environ: Mapping[str, str]) -> list[CheckResult]:
    """Raises ConfigProblems (one line per missing variable or unusable URL) before sending
    anything, so a half-configured profile is fixed first rather than half-tested."""
    if not cfg.channels and cfg.heartbeat.url_env is None:
        raise ConfigProblems(["alerts.channels: no channels configured (see docs/alerts.md)"])
    endpoints, hb, problems = build_endpoints(cfg, environ)
    if problems:
        raise ConfigProblems(problems)
    now = WallClock().now().strftime("%Y-%m-%d %H:%M:%S UTC")

    async def one_channel(name: str, ep: Endpoint) -> list[CheckResult]:
        out = []
        for sev in SEVERITIES:
            if sev not in cfg.channels[name].severities:
                continue
            title = f"tradeconsole {profile_name}: TEST {sev.upper()}"
            body = (f"Test {sev} alert from tradeconsole profile {profile_name} at {now}. "
                    f"If you read this, channel {name} works.")
            out.append(CheckResult(name, ep.label, sev, await ep.send(title, body, sev)))
        return out

    async def ping(ep: Endpoint) -> list[CheckResult]:
        body = f"tradeconsole {profile_name} alive (test ping at {now})"
        return [CheckResult("heartbeat", ep.label, "ping", await ep.send(f"tradeconsole {profile_name}: alive", body, "info"))]

    jobs = [one_channel(n, ep) for n, ep in endpoints.items()] + ([ping(hb)] if hb is not None else [])
    results: list[CheckResult] = []
    for group in await asyncio.gather(*jobs):
        results.extend(group)
    return results
