"""Real receivers on 127.0.0.1 for the alert tests: an SMTP server (aiosmtpd) and an HTTP server
for apprise's json:// webhooks, each in its own thread so the engine's loop never carries them.

The HTTP receiver can answer ok, fail (HTTP 500), hang (hold the request without answering) or
be slow (answer ok after a while).
Both stop by themselves at the end of each test (fixtures), hung requests included.
"""
from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpReceiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[dict[str, Any]] = []
        self.mode = "ok"  # ok | fail | hang | slow
        self.hang_seconds = 10.0
        self.hits = 0
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str = "hook/T0KENsecret42", auth: str = "") -> str:
        return f"json://{auth + '@' if auth else ''}127.0.0.1:{self.port}/{path}"

    def start(self) -> "HttpReceiver":
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                rx.hits += 1
                if rx.mode == "hang":
                    rx._release.wait(rx.hang_seconds)
                    return  # never answers; the client gives up first
                if rx.mode == "slow":  # a slow provider: answers, after hang_seconds
                    rx._release.wait(rx.hang_seconds)
                if rx.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"raw": raw.decode(errors="replace")}
                rx.received.append({"path": self.path, "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self._release.clear()
        srv = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        srv.daemon_threads = True
        self._server = srv
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def messages(self) -> list[str]:
        return [r["body"].get("message", "") for r in self.received]

    def titles(self) -> list[str]:
        return [r["body"].get("title", "") for r in self.received]


class SmtpReceiver:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.messages: list[email.message.EmailMessage] = []
        rx = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                rx.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from=bot@example.com&to=ops@example.com"

    def start(self) -> "SmtpReceiver":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def bodies(self) -> list[str]:
        out = []
        for m in self.messages:
            part = m.get_body(preferencelist=("plain",))
            out.append(part.get_content() if part is not None else "")
        return out


@pytest.fixture
def http_receiver() -> Iterator[Callable[..., HttpReceiver]]:
    made: list[HttpReceiver] = []

    def make(start: bool = True, port: int | None = None) -> HttpReceiver:
        rx = HttpReceiver(port)
        made.append(rx)
        return rx.start() if start else rx

    yield make
    for rx in made:
        rx.stop()


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    rx = SmtpReceiver().start()
    yield rx
    rx.stop()


async def wait_for(pred: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll (yielding to the loop) until `pred()` holds; fail the test after `timeout` wall seconds
    (generous: what it waits for takes milliseconds, but CI shares two cores)."""
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            pytest.fail(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.02)


async def wait_async(fetch: Callable[[], Any], pred: Callable[[Any], bool], timeout: float = 20.0,
                     what: str = "condition") -> Any:
    """Like wait_for, for a value that takes an await to read (journal rows)."""
    end = time.monotonic() + timeout
    while True:
        value = await fetch()
        if pred(value):
            return value
        if time.monotonic() > end:
            pytest.fail(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.02)


class FakeWall:
    """A wall clock the test moves by hand (rate limits)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t
