"""Client side of the control socket: one request, one answer, every wait bounded.

`request()` is blocking (the CLI has no loop to share); `arequest()` is the same on asyncio, for
code that runs on a loop (benchmarks, tests). Both raise `NotRunning` when nothing listens
(no socket file, or a stale one) and `Unreachable` when something is there but does not answer
in time.

Neither talks to a socket it cannot trust: one whose folder or file another user owns (or could
have replaced: a symlink, a folder others can write), or whose peer runs as another user
(SO_PEERCRED). That raises `Untrusted` before a byte is sent: a fake "HALTED" from someone else's
socket must never pass for the engine's answer.
"""
from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from pathlib import Path
from typing import Any

from . import paths as _paths
from .paths import ControlPathError, sun_address
from .protocol import encode

CONNECT_TIMEOUT = 2.0
RESPONSE_TIMEOUT = 5.0
MAX_RESPONSE = 8 * 1024 * 1024  # a status with thousands of orders is well under this


class NotRunning(Exception):
    """No engine listens on the socket."""


class Unreachable(Exception):
    """Something holds the socket but did not answer properly in time."""


class Untrusted(Exception):
    """Something is at the socket's path that is not this user's: never talked to."""


def _check_path(path: Path) -> None:
    """Untrusted if the socket or its folder is not this user's alone; NotRunning if nothing is there."""
    try:
        why = _paths.untrusted_reason(path)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NotRunning(str(exc)) from None
    except PermissionError as exc:
        raise Untrusted(f"{path}: {exc.strerror}: its folder is not this user's") from None
    if why is not None:
        raise Untrusted(why)


def _check_peer(sock: socket.socket | None, path: Path) -> None:
    opt = getattr(socket, "SO_PEERCRED", None)
    if sock is None or opt is None:  # pragma: no cover - not Linux: the path checks still guard
        return
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i")))
    own = _paths.current_uid()
    if uid != own:
        raise Untrusted(f"the process listening on {path} runs as uid {uid}, not as this user ({own})")


def _decode(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Unreachable("the engine sent an answer that is not JSON") from None
    if not isinstance(obj, dict) or "ok" not in obj:
        raise Unreachable("the engine sent an answer without \"ok\"")
    return obj


def request(path: Path, payload: dict[str, Any], *, timeout: float = RESPONSE_TIMEOUT,
            connect_timeout: float = CONNECT_TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    _check_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(min(connect_timeout, timeout))
        try:
            with sun_address(path) as addr:
                sock.connect(addr)
        except (FileNotFoundError, NotADirectoryError, ConnectionRefusedError, ControlPathError) as exc:
            raise NotRunning(str(exc)) from None  # a file where a folder must be: nothing listens there
        except TimeoutError:
            raise Unreachable(f"{path}: connect timed out after {min(connect_timeout, timeout):g} s") from None
        except PermissionError as exc:
            raise Unreachable(f"{path}: {exc.strerror} (not this user's engine?)") from None
        _check_peer(sock, path)
        buf = bytearray()
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.sendall(encode(payload))
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    raise Unreachable("the engine closed the connection without answering")
                buf += chunk
                if len(buf) > MAX_RESPONSE:
                    raise Unreachable("the engine's answer is too large")
        except TimeoutError:
            raise Unreachable(f"no answer within {timeout:g} s") from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise Unreachable(f"connection lost: {exc.strerror}") from None
        return _decode(bytes(buf[: buf.index(b"\n")]))
    finally:
        sock.close()


async def arequest(path: Path, payload: dict[str, Any], *, timeout: float = RESPONSE_TIMEOUT,
                   connect_timeout: float = CONNECT_TIMEOUT) -> dict[str, Any]:
    _check_path(path)
    try:
        with sun_address(path) as addr:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(addr, limit=MAX_RESPONSE), min(connect_timeout, timeout))
    except (FileNotFoundError, NotADirectoryError, ConnectionRefusedError, ControlPathError) as exc:
        raise NotRunning(str(exc)) from None
    except TimeoutError:
        raise Unreachable(f"{path}: connect timed out") from None
    try:
        _check_peer(writer.get_extra_info("socket"), path)
        writer.write(encode(payload))
        line = await asyncio.wait_for(_answer(reader, writer), timeout)
    except TimeoutError:
        raise Unreachable(f"no answer within {timeout:g} s") from None
    except (ConnectionError, ValueError) as exc:
        raise Unreachable(f"connection failed: {exc}") from None
    finally:
        writer.close()
    if not line.endswith(b"\n"):
        raise Unreachable("the engine closed the connection without answering")
    return _decode(line)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    await writer.drain()
    return await reader.readline()
