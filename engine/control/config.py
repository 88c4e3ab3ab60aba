"""Profile section `control:`."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..profile_base import Strict


class ControlConfig(Strict):
    socket: bool = Field(True, description="listen on a Unix socket for status/halt/close-all/rearm")
    socket_path: str | None = Field(None, description="relative to the profile file; default: <journal dir>/run/<profile name>.sock "
                                                    "(its directory must be private, 0700)")
    on_sighup: Literal["halt", "ignore"] = Field("halt", description="SSH dropped: halt (cancel entries, keep stops), persist, exit")
    on_sigterm: Literal["halt", "shutdown"] = Field("halt", description="halt then exit, or exit leaving orders as they are")
