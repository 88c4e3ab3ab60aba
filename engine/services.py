"""Services that run beside the engine (the control socket, outbound alerts, ...).

Each service module exposes `async def start(engine) -> Service | None` (None: not configured).
The runners (console and headless) start them after `Engine.open`; `Engine.close` stops them in
reverse order. A service that fails to start is reported as a warning alert, never a reason the
engine will not start: the trader's halt key matters more than any side channel. The one
exception is a service that marks its error `fatal` (a second engine on the same profile).
"""
from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("tradeconsole.services")

SERVICE_MODULES = ("engine.control.service", "engine.notify.service")


class Service(Protocol):
    name: str

    async def stop(self) -> None: ...


async def start_services(engine: "Engine", modules: tuple[str, ...] = SERVICE_MODULES) -> None:
    for name in modules:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that service is not part of this build
            raise
        try:
            svc = await mod.start(engine)
        except Exception as exc:  # noqa: BLE001 - reported, fatal only when the service says so
            if getattr(exc, "fatal", False):
                raise  # e.g. another engine already runs this profile: two must never trade it
            log.exception("service %s failed to start", name)
            engine.alerts.publish("warning", "service_failed", f"{name} did not start: {exc}", engine.clock.now())
            continue
        if svc is not None:
            engine.services.append(svc)


async def stop_services(engine: "Engine") -> None:
    while engine.services:
        svc = engine.services.pop()
        try:
            await svc.stop()
        except Exception:  # noqa: BLE001 - shutting down: log and go on
            log.exception("service %s failed to stop", getattr(svc, "name", svc))
