"""The control protocol: one JSON object per line each way.

Requests                                        Responses
  {"cmd": "ping"}                                 {"ok": true, "pong": true, "pid": 123}
  {"cmd": "status"}                               {"ok": true, "trading_state": ..., ...}
  {"cmd": "halt", "reason": "why"}                {"ok": true, "state": "halted", "persisted": true, ...}
  {"cmd": "close_all"}                            {"ok": true, "positions": 2, "exit_orders": [...], ...}
  {"cmd": "rearm", "reason": "why"}               {"ok": true, "state": "active"} or
                                                  {"ok": false, "refused": true, "error": "cannot re-arm: ..."}
  {"cmd": "reconcile"}                            {"ok": true, "differences": [{"id": "3f9a2c", ...}], "open": 1, ...}
  {"cmd": "resolve", "difference": "3f9a2c",      {"ok": true, "action": "adopt", "open": 0, "state": "active", ...} or
   "action": "adopt"}                             {"ok": false, "invalid": true, "error": "..."} (unknown id, an
                                                  answer the line does not allow), or "refused": true (the engine's
                                                  own refusal, e.g. no price yet)
Anything wrong with a request: {"ok": false, "error": "..."}. An optional "id" is echoed back.
Money travels as decimal strings, never floats.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

MAX_LINE = 64 * 1024  # bytes, newline included; longer lines are refused and the connection closed
MAX_REASON = 500  # characters: a reason is a sentence for the journal, not a document
MAX_DIFFERENCE_ID = 40  # characters: ids are 6 hex digits (engine/control/differences.py)
# A reconciliation difference's answers, as Engine.resolve_difference names them.
ACTIONS = ("adopt", "book", "cancel", "mark_closed")
COMMANDS = {"ping": (), "status": (), "halt": ("reason",), "close_all": (), "rearm": ("reason",),
            "reconcile": (), "resolve": ("difference", "action")}
_ALLOWED = {"cmd", "id", "reason", "difference", "action"}


class ProtocolError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Request:
    cmd: str
    reason: str | None = None
    id: Any = None
    difference: str | None = None  # resolve: the id `reconcile` listed
    action: str | None = None  # resolve: one of ACTIONS


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact: the client parses it back with Decimal
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, default=_default, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def parse_request(line: bytes) -> Request:
    """A validated request, or ProtocolError with a sentence the client can show."""
    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError("request is not UTF-8") from None
    except ValueError as exc:
        raise ProtocolError(f"request is not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("request must be a JSON object like {\"cmd\": \"status\"}")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise ProtocolError("request needs \"cmd\" (a string)")
    if cmd not in COMMANDS:
        raise ProtocolError(f"unknown cmd {cmd[:40]!r}; commands: {', '.join(COMMANDS)}")
    extra = sorted(set(obj) - _ALLOWED)
    if extra:
        raise ProtocolError(f"unknown field(s) for {cmd}: {', '.join(k[:40] for k in extra[:5])}")
    rid = obj.get("id")
    if rid is not None and not isinstance(rid, (str, int)):
        raise ProtocolError("\"id\" must be a string or an integer")
    reason = obj.get("reason")
    if "reason" in COMMANDS[cmd]:
        if not isinstance(reason, str) or not reason.strip():
            raise ProtocolError(f"{cmd} needs a non-empty \"reason\"")
        reason = " ".join(reason.split())  # one line in the journal and the log, whatever was typed
        if len(reason) > MAX_REASON:
            raise ProtocolError(f"reason is longer than {MAX_REASON} characters")
    for name in ("reason", "difference", "action"):
        if name not in COMMANDS[cmd] and obj.get(name) is not None:
            raise ProtocolError(f"{cmd} takes no \"{name}\"")
    difference, action = obj.get("difference"), obj.get("action")
    if "difference" in COMMANDS[cmd]:
        if not isinstance(difference, str) or not difference.strip():
            raise ProtocolError(f"{cmd} needs a non-empty \"difference\" (an id `reconcile` lists)")
        difference = difference.strip().lower()
        if len(difference) > MAX_DIFFERENCE_ID:
            raise ProtocolError(f"difference is longer than {MAX_DIFFERENCE_ID} characters")
    if "action" in COMMANDS[cmd] and action not in ACTIONS:
        raise ProtocolError(f"{cmd} needs \"action\": one of {', '.join(ACTIONS)}")
    return Request(cmd, reason, rid, difference, action)


def error(message: str, rid: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": False, "error": message, **extra}
    if rid is not None:
        out["id"] = rid
    return out
