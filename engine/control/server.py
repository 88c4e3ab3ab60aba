"""The control socket's server: reads requests, calls one Engine command each, answers.

It runs on the engine's own loop, so every handler must stay short and every wait is bounded:
a slow or hostile client gets an error and a closed connection, never a stuck engine. Commands
are the same Engine methods F12 and the console keys call; nothing here decides trading.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from ..models import OrderPurpose
from ..risk.gate import TradingState
from . import differences
from .protocol import MAX_LINE, ProtocolError, Request, encode, error, parse_request

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("tradeconsole.control")

READ_TIMEOUT = 10.0  # seconds a connection may sit between requests (or mid-line) before it is closed
WRITE_TIMEOUT = 2.0  # seconds a client may take to read an answer
# How long a command may run before we answer "still working": under the CLI's 5 s response
# timeout, and long enough for the halt's cancel retries (0.2 + 0.4 + 0.8 + 1.6 s) in most cases.
COMMAND_BUDGET = 3.5
MAX_CLIENTS = 16


def peer_uid(sock: Any) -> int | None:
    """The connecting process's uid from the kernel (SO_PEERCRED), or None where unsupported."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:  # pragma: no cover - not Linux; the 0700 dir and 0600 socket still guard
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return uid


def check_peer(uid: int | None, own_uid: int) -> str | None:
    """None if the peer may talk to us, else why not. Only our own user: root is not special,
    because a root shell that means it can signal the process anyway."""
    if uid is None:
        return None
    if uid != own_uid:
        return f"refused: peer uid {uid} is not the engine's user ({own_uid})"
    return None


class ControlServer:
    def __init__(self, engine: Engine, *, read_timeout: float = READ_TIMEOUT,
                 command_budget: float = COMMAND_BUDGET, max_clients: int = MAX_CLIENTS) -> None:
        self.engine = engine
        self.read_timeout = read_timeout
        self.command_budget = command_budget
        self.max_clients = max_clients
        self.own_uid = os.geteuid()
        self.requests = 0
        self.errors = 0
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task] = set()
        self._background: set[asyncio.Task] = set()  # commands that outlived their budget
        self._answering = asyncio.Lock()  # one reconciliation answer at a time, late ones included

    async def serve(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_unix_server(self._on_connect, sock=sock, limit=MAX_LINE)

    async def close(self, timeout: float = 2.0) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._conns):
            t.cancel()
        pending = [t for t in self._conns | self._background if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout)
            self._server = None

    # -- one connection ---------------------------------------------------------------------
    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        try:
            await self._connection(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("control connection failed")
        finally:
            if task is not None:
                self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), WRITE_TIMEOUT)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            why = check_peer(peer_uid(writer.get_extra_info("socket")), self.own_uid)
        except OSError as exc:
            why = f"refused: cannot read peer credentials ({exc.strerror})"
        if why is not None:
            log.warning("control: %s", why)
            self.errors += 1
            await self._send(writer, error(why))
            return
        if len(self._conns) > self.max_clients:
            self.errors += 1
            await self._send(writer, error(f"busy: more than {self.max_clients} control connections"))
            return
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), self.read_timeout)
            except TimeoutError:
                self.errors += 1
                await self._send(writer, error(f"read timeout: no complete request within {self.read_timeout:g} s"))
                return
            except ValueError:  # StreamReader's limit: the line is over MAX_LINE
                self.errors += 1
                await self._send(writer, error(f"request line longer than {MAX_LINE} bytes"))
                return
            if not line:
                return  # the client closed
            if not line.endswith(b"\n"):
                self.errors += 1
                await self._send(writer, error("request must end with a newline"))
                return
            if not line.strip():
                continue
            reply = await self.handle_line(line)
            if not await self._send(writer, reply):
                return

    async def _send(self, writer: asyncio.StreamWriter, reply: dict[str, Any]) -> bool:
        try:
            writer.write(encode(reply))
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
            return True
        except (TimeoutError, ConnectionError, OSError):
            return False

    # -- one request ------------------------------------------------------------------------
    async def handle_line(self, line: bytes) -> dict[str, Any]:
        self.requests += 1
        try:
            req = parse_request(line)
        except ProtocolError as exc:
            self.errors += 1
            return error(str(exc))
        try:
            reply = await getattr(self, f"_cmd_{req.cmd}")(req)
        except Exception as exc:
            self.errors += 1
            log.exception("control %s failed", req.cmd)
            reply = error(f"{req.cmd} failed: {type(exc).__name__}: {exc}")
        if req.id is not None:
            reply["id"] = req.id
        return reply

    async def _bounded(self, work: asyncio.Future[Any] | asyncio.Task[Any], budget: float) -> bool:
        """Wait for `work` up to `budget` s; it keeps running (and is kept referenced) if late."""
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=max(0.0, budget))
        if task in done:
            task.result()  # re-raise its error here, where it is answered
            return True
        self._background.add(task)
        task.add_done_callback(self._late_done)
        return False

    def _late_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("control command failed after answering", exc_info=task.exception())

    async def _cmd_ping(self, req: Request) -> dict[str, Any]:
        return {"ok": True, "pong": True, "pid": os.getpid(), "profile": self.engine.profile.name}

    async def _cmd_status(self, req: Request) -> dict[str, Any]:
        return status_reply(self.engine)

    async def _cmd_halt(self, req: Request) -> dict[str, Any]:
        e = self.engine
        t0 = time.monotonic()
        was = e.state.value
        # The protocol refuses an empty reason; a halt is never refused here for want of one.
        reason = " ".join((req.reason or "").split()) or "halt over the control socket (no reason given)"
        task = e.halt("cli", reason)
        log.warning("control: halt requested over the socket: %s", reason)
        # The halt task commits the latch first, then cancels entries; answer when both are done,
        # or say honestly which part is still running when the budget is up.
        try:
            persisted = await self._bounded(e.journal.flush(), self.command_budget)
            finished = await self._bounded(task, self.command_budget - (time.monotonic() - t0))
        except Exception as exc:
            log.exception("control: halt latched but did not complete")
            return error(f"latched in memory, but the halt did not complete: {type(exc).__name__}: {exc}",
                         state=e.state.value, still_open=list(e.cancels_outstanding))
        return {
            "ok": True, "state": e.state.value, "was": was, "halt_reason": e.halt_reason,
            "persisted": persisted, "cancels_done": finished, "still_open": list(e.cancels_outstanding),
            "working_entries": sum(1 for o in e.orders.working.values() if o.purpose is OrderPurpose.ENTRY),
            "positions": len(e.portfolio.positions), "elapsed_ms": round((time.monotonic() - t0) * 1000, 3),
        }

    async def _cmd_close_all(self, req: Request) -> dict[str, Any]:
        e = self.engine
        t0 = time.monotonic()
        before = len(e.portfolio.positions)
        log.warning("control: close-all requested over the socket")
        finished = await self._bounded(e.close_all("cli"), self.command_budget)
        exits = [o.client_order_id for o in e.orders.working.values() if o.purpose is OrderPurpose.EXIT]
        return {
            "ok": True, "positions": before, "positions_open": len(e.portfolio.positions), "done": finished,
            "exit_orders": exits, "still_open": list(e.cancels_outstanding), "state": e.state.value,
            "elapsed_ms": round((time.monotonic() - t0) * 1000, 3),
        }

    async def _cmd_rearm(self, req: Request) -> dict[str, Any]:
        e = self.engine
        if e.state is not TradingState.HALTED:
            # Re-arming an armed engine would still reset rearm-type breakers: say what it is instead.
            note = f"trading is {e.state.value}, not halted"
        else:
            note = ""
        task = asyncio.ensure_future(e.rearm(req.reason or ""))
        if not await self._bounded(task, self.command_budget):
            return error("re-arm is taking longer than expected; check status", state=e.state.value)
        refusal = task.result()
        if refusal:
            return error(refusal, refused=True, state=e.state.value, halt_reason=e.halt_reason)
        log.warning("control: re-armed over the socket: %s", req.reason)
        return {"ok": True, "state": e.state.value, "note": note}

    async def _cmd_reconcile(self, req: Request) -> dict[str, Any]:
        return differences.reconcile_reply(self.engine)

    async def _cmd_resolve(self, req: Request) -> dict[str, Any]:
        """One reconciliation difference answered through Engine.resolve_difference, the method
        the console's dialog calls: it does the work, journals the answer and lifts reduce-only
        with the last one. Only the answers the dialog would offer for the line are taken."""
        e, ident, action = self.engine, req.difference or "", req.action or ""
        found = differences.find(e, ident)
        if found is None:
            return error(f"no difference {ident!r}: `tradeconsole reconcile` lists the open ones and their ids",
                         invalid=True, **differences.trading(e))
        index, d = found
        if d.resolved:
            return error(f"difference {ident} ({d.text}) is already answered: {differences.shown(d.resolved)}",
                         refused=True, **differences.trading(e))
        if action not in d.actions:
            allowed = ", ".join(differences.shown(a) for a in d.actions)
            return error(f"{differences.shown(action)} is not an answer to difference {ident} "
                         f"({d.kind.replace('_', ' ')} {d.symbol}); choose {allowed}",
                         invalid=True, **differences.trading(e))
        task = asyncio.ensure_future(self._answer(index, action))
        if not await self._bounded(task, self.command_budget):
            return error("the answer is taking longer than expected; `tradeconsole reconcile` shows when it lands",
                         **differences.trading(e))
        problem = task.result()
        if problem:
            return error(problem, refused=True, **differences.trading(e))
        log.warning("control: reconciliation difference %s answered over the socket: %s (%s)", ident, action, d.text)
        return {"ok": True, "difference": ident, "action": action, "text": d.text, "resolved": d.resolved,
                "position": differences.holding(e, d.symbol), **differences.trading(e)}

    async def _answer(self, index: int, action: str) -> str | None:
        async with self._answering:
            return await self.engine.resolve_difference(index, action)


def status_reply(e: Engine) -> dict[str, Any]:
    s = e.snapshot()
    return {
        "ok": True, "running": True, "pid": os.getpid(), "profile": s.profile, "mode": s.mode, "venue": s.venue,
        "session": e.session, "engine_time": s.ts, "trading_state": s.trading_state, "halt_reason": s.halt_reason,
        "connected": s.connected, "equity": s.equity, "cash": s.cash, "realized_pnl": s.realized_pnl,
        "unrealized_pnl": s.unrealized_pnl, "pnl_today": s.pnl_today, "pnl_week": s.pnl_week, "fees": s.fees,
        "positions": [
            {"symbol": p.symbol, "side": p.side, "quantity": p.quantity, "avg_price": p.avg_price,
             "last_price": p.last_price, "unrealized_pnl": p.unrealized_pnl, "stop_price": p.stop_price,
             "stop_distance_pct": p.stop_distance_pct, "stop_working": p.stop_working}
            for p in s.positions],
        # Remainders below the venue's minimum order: held and valued, but not positions.
        "dust": [{"symbol": d.symbol, "quantity": d.quantity, "last_price": d.last_price, "value": d.value}
                 for d in s.dust],
        "open_orders": [
            {"client_order_id": o.client_order_id, "symbol": o.symbol, "side": o.side, "type": o.type,
             "purpose": o.purpose, "quantity": o.quantity, "filled_qty": o.filled_qty, "price": o.price,
             "status": o.status}
            for o in s.open_orders],
        "approvals": len(s.approvals),
        "breakers": [{"name": b.name, "state": b.state, "value": b.value, "limit": b.limit, "text": b.text}
                     for b in s.breakers],
        "cancels_outstanding": list(e.cancels_outstanding),
        "counters": dict(s.counters),
        # Differences found between journal and venue at start: reduce-only until each is answered
        # (in the console's reconciliation modal, or `tradeconsole reconcile` by its id).
        "reconciliation": [differences.difference_row(d) for d in getattr(e, "reconciliation", ())],
        "journal": str(e.journal.path),
    }
