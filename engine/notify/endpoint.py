"""One apprise URL and how a message reaches it without ever holding up the event loop.

apprise is synchronous (requests, smtplib): every attempt runs in its own daemon thread and the
loop only waits on a future, with a timeout. A channel has at most one thread in flight: a URL
that hangs costs one parked thread, not one per alert, and a daemon thread never holds up the
process at exit. The plugin's own socket timeouts are cut to the attempt timeout so the parked
thread frees itself soon after we stop waiting.

apprise logs its errors (and at debug level, full URLs) to the `apprise` logger. That logger is
cut off from the root logger, so nothing of it reaches stderr or the screen; a handler collects
the warnings of the thread doing the attempt, and they come back redacted as the error text.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from .redact import EnvProblem, Redactor, label, resolve_url

if TYPE_CHECKING:
    from .config import AlertsConfig

NOTIFY_TYPES = {"info": "info", "warning": "warning", "critical": "failure"}
MAX_ERROR_CHARS = 300
HEARTBEAT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    error: str = ""  # redacted; empty when ok


class _ThreadCapture(logging.Handler):
    """Collects apprise's warnings per thread, so concurrent channels keep their own errors."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._by_thread: dict[int, list[str]] = {}

    def begin(self) -> list[str]:
        lines: list[str] = []
        self._by_thread[threading.get_ident()] = lines
        return lines

    def end(self) -> None:
        self._by_thread.pop(threading.get_ident(), None)

    def emit(self, record: logging.LogRecord) -> None:
        lines = self._by_thread.get(record.thread or 0)
        if lines is not None:
            try:
                lines.append(record.getMessage())
            except Exception:  # noqa: BLE001 - a bad log call must not fail the delivery
                pass


_capture = _ThreadCapture()
_apprise: Any = None


def load_apprise() -> Any:
    """Import apprise on first use (a profile without channels never pays for it) and fence off
    its logger."""
    global _apprise
    if _apprise is None:
        import apprise

        lg = logging.getLogger("apprise")
        lg.propagate = False
        if _capture not in lg.handlers:
            lg.addHandler(_capture)
        _apprise = apprise
    return _apprise


class Endpoint:
    def __init__(self, name: str, url: str, timeout: float, min_spacing: float | None = None) -> None:
        ap = load_apprise()
        self.name = name
        self.label = label(url)
        self.redact = Redactor([url])
        asset = _asset(ap)
        try:
            plugin = ap.Apprise.instantiate(url, asset=asset)
        except Exception:  # noqa: BLE001 - its message could quote the URL: say nothing of it
            plugin = None
        if plugin is None:
            raise ValueError("not a URL apprise can load (check the scheme and its fields)")
        for attr in ("socket_connect_timeout", "socket_read_timeout"):
            current = getattr(plugin, attr, None)
            if isinstance(current, (int, float)):
                setattr(plugin, attr, min(float(current) if current > 0 else timeout, timeout))
        # apprise paces each service itself (a sleep before a send: 5.5 s between emails by
        # default). It may be no stricter than the channel's own rate limit, and the attempt's
        # timeout allows for it, so pacing is never mistaken for a dead channel.
        pace = getattr(plugin, "request_rate_per_sec", 0)
        if isinstance(pace, (int, float)) and pace > 0 and min_spacing is not None and min_spacing < pace:
            plugin.request_rate_per_sec = pace = min_spacing
        self.timeout = timeout + (pace if isinstance(pace, (int, float)) and pace > 0 else 0)
        self._ap = ap.Apprise(asset=asset)
        self._ap.add(plugin)
        self._inflight: asyncio.Future[Outcome] | None = None

    @property
    def busy(self) -> bool:
        return self._inflight is not None and not self._inflight.done()

    def send_blocking(self, title: str, body: str, severity: str) -> Outcome:
        """The synchronous call; runs in a worker thread (or in a CLI with nothing else to do)."""
        lines = _capture.begin()
        try:
            result = self._ap.notify(body=body, title=title, notify_type=NOTIFY_TYPES.get(severity, "info"))
            ok = bool(result)
        except Exception as exc:  # noqa: BLE001 - a plugin bug is a failed delivery, not a crash
            ok, result = False, None
            lines.append(f"{type(exc).__name__}: {exc}")
        finally:
            _capture.end()
        if ok:
            return Outcome(True)
        if not lines and hasattr(result, "logs"):  # apprise 2.x also keeps them on the result
            lines = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        seen: list[str] = []
        for line in lines:
            if line not in seen:
                seen.append(line)
        text = "; ".join(seen) or "the service refused the message (no detail)"
        return Outcome(False, self.redact(text)[:MAX_ERROR_CHARS])

    async def send(self, title: str, body: str, severity: str) -> Outcome:
        """One attempt, bounded by the timeout, on a daemon thread."""
        if self.busy:
            # The last attempt's thread is still stuck: wait for it inside this attempt's time
            # rather than start a second thread against the same dead URL.
            try:
                await asyncio.wait_for(asyncio.shield(self._inflight), self.timeout)  # type: ignore[arg-type]
            except TimeoutError:
                return Outcome(False, f"previous delivery still hung after {self.timeout:g}s")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Outcome] = loop.create_future()

        def work() -> None:
            out = self.send_blocking(title, body, severity)
            try:
                loop.call_soon_threadsafe(_settle, fut, out)
            except RuntimeError:
                pass  # the loop is gone (shutdown): nobody waits for this answer any more

        threading.Thread(target=work, name=f"tc-notify-{self.name}", daemon=True).start()
        self._inflight = fut
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        except TimeoutError:
            return Outcome(False, f"timed out after {self.timeout:g}s")


def _asset(ap: Any) -> Any:
    """An apprise asset that makes the plugin run in the calling thread. apprise would otherwise
    hand the call to its own thread pool (async mode; in 2.x also whenever a service timeout is
    set), where neither our timeout bookkeeping nor the per-thread error capture can follow it,
    and whose non-daemon threads would hold up the process at exit behind a hung URL."""
    try:
        return ap.AppriseAsset(async_mode=False, service_timeout=0)
    except TypeError:  # apprise 1.x: no service timeout, calls already run in the caller
        return ap.AppriseAsset(async_mode=False)


def _settle(fut: "asyncio.Future[Outcome]", out: Outcome) -> None:
    if not fut.done():
        fut.set_result(out)


def build_endpoints(cfg: "AlertsConfig", environ: Mapping[str, str]) -> tuple[dict[str, Endpoint], Endpoint | None, list[str]]:
    """The channels and heartbeat a profile's environment makes usable, and one line for each
    that it does not (the variable's name, never its value)."""
    endpoints: dict[str, Endpoint] = {}
    problems: list[str] = []
    for name, ch in cfg.channels.items():
        where = f"alerts.channels.{name}.url_env"
        try:
            endpoints[name] = Endpoint(name, resolve_url(ch.url_env, environ, where), ch.timeout_seconds,
                                       60.0 / ch.rate_limit_per_minute)
        except EnvProblem as exc:
            problems.append(str(exc))
        except ValueError as exc:
            problems.append(f"{where}: {ch.url_env}: {exc}")
    hb = None
    if cfg.heartbeat.url_env is not None:
        where = "alerts.heartbeat.url_env"
        timeout = min(HEARTBEAT_TIMEOUT_SECONDS, cfg.heartbeat.interval_seconds / 2)
        try:
            hb = Endpoint("heartbeat", resolve_url(cfg.heartbeat.url_env, environ, where), timeout)
        except EnvProblem as exc:
            problems.append(str(exc))
        except ValueError as exc:
            problems.append(f"{where}: {cfg.heartbeat.url_env}: {exc}")
    return endpoints, hb, problems
