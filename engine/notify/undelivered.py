"""Alerts a shutdown kept from their channels: journaled as undelivered, sent again at the next start.

At close a channel may still hold messages: queued, given up on because the engine was stopping,
or cut off mid-attempt when the grace ran out. Each channel gets one `delivery` row, result
`dropped`, reason `shutdown`, that counts them and carries the critical ones in full (their text
is an alert's text, already redacted). The next start reads the rows of the session before it and
queues those criticals on the same channel again, marked as a repeat. They go straight to the
channel, not through the alert bus: no new alert row, no new pin (restart.py pins unacknowledged
criticals again on its own), and nothing that could come back round. A repeat that is again cut
off is journaled again by that session's close, so it is carried until it goes out. One cut off
mid-attempt may have reached the provider after all (its thread outlives the cut): a duplicate
is the price of never losing one silently.
"""
from __future__ import annotations

import logging
from datetime import datetime

from ..journal import Journal
from .routing import Message

log = logging.getLogger("tradeconsole.notify")

CARRY_MAX = 50  # critical messages carried per channel row; criticals are rare, this is a fuse
REPEAT_MARK = "(not delivered before the last shutdown; sent again) "


def shutdown_row(msgs: list[Message], endpoint: str) -> dict:
    parts = [p for m in msgs for p in (m.parts or [m])]
    critical = [p for p in parts if p.severity == "critical"]
    return {"result": "dropped", "reason": "shutdown", "messages": len(parts), "endpoint": endpoint,
            "alerts": [s for p in parts for s in p.seqs][:CARRY_MAX],
            "undelivered": [{"severity": p.severity, "kind": p.kind, "text": p.text, "ts": p.ts.isoformat()}
                            for p in critical[:CARRY_MAX]]}


async def left_by_last_session(journal: Journal) -> dict[str, list[Message]]:
    """Critical messages the session before this one journaled as undelivered, by channel."""
    sessions = await journal.rows(["session"])
    if len(sessions) < 2:
        return {}
    prev, cur = sessions[-2].seq, sessions[-1].seq
    out: dict[str, list[Message]] = {}
    for r in await journal.rows(["delivery"], after_seq=prev, before_seq=cur, where=("reason", "shutdown")):
        if not r.data.get("undelivered") or r.ref is None:
            continue
        for u in r.data["undelivered"]:
            text = u["text"] if u["text"].startswith(REPEAT_MARK) else REPEAT_MARK + u["text"]
            out.setdefault(r.ref, []).append(
                Message(u["severity"], u["kind"], text, datetime.fromisoformat(u["ts"])))
    return out
