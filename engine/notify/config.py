"""Profile section `alerts:`. Channel URLs carry tokens, so the profile names the environment
variable that holds each URL, never the URL itself.

Keys of `channels` name the channels (they appear in the journal, the CLI and routing rules);
keys of `routes` are alert kinds (`Alert.kind`: halt, breaker, gate_refused, daily_summary,
delivery_failed, ...). See docs/alerts.md.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from ..profile_base import Strict, bad, raise_problems

Severity = Literal["info", "warning", "critical"]

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
KIND_NAME = re.compile(r"^[a-z0-9_]{1,64}$")


class ChannelConfig(Strict):
    url_env: str = Field(..., pattern=ENV_NAME, description="environment variable holding the apprise URL")
    severities: list[Severity] = Field(default_factory=lambda: ["critical"], min_length=1,
                                       description="severities this channel receives")
    rate_limit_per_minute: int = Field(10, ge=1, le=600, description="most messages a minute on this channel; "
                                       "the excess waits and goes as one digest")
    timeout_seconds: float = Field(10, gt=0, le=120, description="one delivery attempt gives up after this long")


class RouteRule(Strict):
    add: list[str] = Field(default_factory=list, description="channels that also get this event kind")
    mute: list[str] = Field(default_factory=list, description="channels that never get this event kind")


class HeartbeatConfig(Strict):
    url_env: str | None = Field(None, pattern=ENV_NAME,
                                description="environment variable holding the dead-man's-switch URL")
    interval_seconds: float = Field(60, ge=5, le=86400, description="seconds between alive pings")


class AlertsConfig(Strict):
    channels: dict[str, ChannelConfig] = Field(default_factory=dict, description="channel name -> channel")
    routes: dict[str, RouteRule] = Field(default_factory=dict, description="event kind -> extra or muted channels")
    coalesce_seconds: float = Field(60, ge=0, le=86400,
                                    description="identical alerts within this window become one, with a count")
    queue_size: int = Field(1000, ge=10, le=100000,
                            description="alerts waiting for delivery before the oldest info ones are dropped")
    retry_attempts: int = Field(5, ge=1, le=50, description="delivery attempts per message before it counts as lost")
    retry_backoff_seconds: float = Field(2, gt=0, le=600, description="first retry delay; doubles per attempt")
    heartbeat: HeartbeatConfig = Field(default_factory=HeartbeatConfig)
    daily_summary: bool = Field(True, description="send a summary at the venue's day close")

    @model_validator(mode="after")
    def _names(self) -> "AlertsConfig":
        problems = []
        for name in self.channels:
            if not CHANNEL_NAME.match(name):
                problems.append(bad(f"channels.{name}", "channel names are 1-40 letters, digits, '_', '.' or '-'"))
        for kind, rule in self.routes.items():
            if not KIND_NAME.match(kind):
                problems.append(bad(f"routes.{kind}", "event kinds are lower-case letters, digits and '_' (e.g. breaker)"))
            for name in [*rule.add, *rule.mute]:
                if name not in self.channels:
                    problems.append(bad(f"routes.{kind}", f"names unknown channel {name!r}"))
            both = sorted(set(rule.add) & set(rule.mute))
            if both:
                problems.append(bad(f"routes.{kind}", f"channel {both[0]!r} is both added and muted"))
        envs: dict[str, str] = {}
        for name, ch in self.channels.items():
            if ch.url_env in envs:
                # Two channels on one URL would deliver every alert twice.
                problems.append(bad(f"channels.{name}.url_env", f"{ch.url_env} is already used by channel {envs[ch.url_env]!r}"))
            envs[ch.url_env] = name
        raise_problems("AlertsConfig", problems)
        return self
