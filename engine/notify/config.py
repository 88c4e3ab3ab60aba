"""Profile section `alerts:`. Channel URLs carry tokens, so the profile names the environment
variable that holds each URL, never the URL itself."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..profile_base import Strict, bad

Severity = Literal["info", "warning", "critical"]


class ChannelConfig(Strict):
    url_env: str = Field(..., pattern=r"^[A-Z_][A-Z0-9_]*$", description="environment variable holding the apprise URL")
    severities: list[Severity] = Field(default_factory=lambda: ["critical"], min_length=1,
                                       description="severities this channel receives")
    rate_limit_per_minute: int = Field(10, ge=1, description="most messages a minute on this channel")


class RouteRule(Strict):
    add: list[str] = Field(default_factory=list, description="channels that also get this event kind")
    mute: list[str] = Field(default_factory=list, description="channels that never get this event kind")


class HeartbeatConfig(Strict):
    url_env: str | None = Field(None, description="environment variable holding the dead-man's-switch URL")
    interval_seconds: float = Field(60, ge=5, description="seconds between alive pings")


class AlertsConfig(Strict):
    channels: dict[str, ChannelConfig] = Field(default_factory=dict, description="channel name -> channel")
    routes: dict[str, RouteRule] = Field(default_factory=dict, description="event kind -> extra or muted channels")
    coalesce_seconds: float = Field(60, ge=0, description="identical alerts within this window become one, with a count")
    queue_size: int = Field(1000, ge=10, description="alerts waiting for delivery before the oldest info ones are dropped")
    retry_attempts: int = Field(5, ge=1, le=50)
    retry_backoff_seconds: float = Field(2, gt=0, description="first retry delay; doubles per attempt")
    heartbeat: HeartbeatConfig = Field(default_factory=HeartbeatConfig)
    daily_summary: bool = Field(True, description="send a summary at the venue's day close")

    @model_validator(mode="after")
    def _routes_name_channels(self) -> "AlertsConfig":
        for kind, rule in self.routes.items():
            for name in [*rule.add, *rule.mute]:
                if name not in self.channels:
                    raise bad(f"routes.{kind}", f"names unknown channel {name!r}")
        return self
