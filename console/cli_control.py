"""`tradeconsole status | halt | close-all | rearm`: out-of-band control from any shell of the user.

They talk to the running engine over its Unix socket (engine/control/). With no engine running,
`status` reads the journal and `halt` writes the latch into it, so the next start comes up halted.

Exit codes: 0 done; 1 the engine refused or could not finish (rearm refused, positions still open
or an entry still working after close-all, a halt whose latch is not journaled yet); 2 usage or
profile errors; 3 no engine is running; 4 an engine holds the profile but its socket does not answer in time (or is switched off),
or the socket is not this user's alone (never talked to: `halt` latches the journal instead, which
a running engine reads within a second: 0 once the CLI sees it halted).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from decimal import Decimal
from typing import Any, Coroutine

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NOT_RUNNING, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
CLOSE_WAIT_DEFAULT = 15.0
CLOSE_WAIT_MAX = 300.0


def register(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", metavar="PATH", help="YAML profile of the running engine (default: built-in paper)")
        p.add_argument("--json", action="store_true", help="print the engine's answer as JSON")

    p = sub.add_parser("status", help="trading state, equity, positions, orders, breakers of the running engine")
    common(p)
    p.set_defaults(handler=cmd_status)
    p = sub.add_parser("halt", help="halt the running engine (or latch the next start halted)")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why; goes into the journal")
    common(p)
    p.set_defaults(handler=cmd_halt)
    p = sub.add_parser("close-all", help="flatten every position of the running engine at market")
    p.add_argument("--yes", action="store_true", help="confirm: close every position now")
    p.add_argument("--wait", type=float, default=CLOSE_WAIT_DEFAULT, metavar="SECONDS",
                   help=f"watch the exits fill for up to this long (default {CLOSE_WAIT_DEFAULT:g}, max {CLOSE_WAIT_MAX:g})")
    common(p)
    p.set_defaults(handler=cmd_close_all)
    p = sub.add_parser("rearm", help="re-arm a halted engine (it may refuse while a breaker is over its limit)")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why it is safe to trade again")
    common(p)
    p.set_defaults(handler=cmd_rearm)


# -- plumbing ------------------------------------------------------------------------------------
def _usage(message: str) -> int:
    print(f"tradeconsole: {message}", file=sys.stderr)
    return EXIT_USAGE


def _reason(args: argparse.Namespace) -> str | None:
    text = " ".join((args.reason or "").split())
    return text or None


def _ask(profile, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, int | None]:
    """(reply, None) from the engine, or (None, exit code) after saying why there is none."""
    from engine.control.client import NotRunning, Unreachable, Untrusted, request
    from engine.control.paths import socket_path

    path = socket_path(profile)
    try:
        return request(path, payload), None
    except NotRunning:
        why = f"listens on no socket at {path} (control.socket off?)"
    except Untrusted as exc:
        print(f"tradeconsole: NOT talking to the control socket, it is not this user's alone: {exc}", file=sys.stderr)
        return None, EXIT_UNREACHABLE
    except Unreachable as exc:
        print(f"tradeconsole: the engine on {path} did not answer: {exc}", file=sys.stderr)
        return None, EXIT_UNREACHABLE
    except OSError as exc:  # the socket's path cannot be reached at all: no engine answers there
        why = f"cannot be reached on its socket {path} ({exc.strerror or exc})"
    pid = _holder(profile)
    if pid is None:
        return None, EXIT_NOT_RUNNING
    print(f"tradeconsole: an engine ({_pid(pid)}) holds profile {profile.name!r} but {why}", file=sys.stderr)
    return None, EXIT_UNREACHABLE


def _holder(profile) -> int | None:
    from engine.control.offline import engine_pid

    try:
        return engine_pid(profile)
    except OSError:  # no lock file can be there (a file where its folder must be): nobody holds it
        return None


def _offline(work: Coroutine[Any, Any, dict[str, Any]], what: str) -> dict[str, Any] | None:
    """What the journal says (no engine running), or None after one line on why it cannot be read."""
    import sqlite3
    from pathlib import Path

    from engine.control.paths import ControlPathError
    from engine.journal_errors import JournalError, why_unusable

    try:
        return asyncio.run(work)
    except (JournalError, ControlPathError, sqlite3.Error) as exc:  # damaged, locked by a stuck engine, unsafe run dir
        problem = str(exc)
    except OSError as exc:  # its folder, or the run folder beside it, is out of reach
        problem = f"{exc.filename}: {why_unusable(Path(exc.filename), exc)}" if exc.filename else str(exc)
    print(f"tradeconsole: could not {what} the journal: {problem}", file=sys.stderr)
    return None


def _pid(pid: int) -> str:
    return f"pid {pid}" if pid > 0 else "pid unknown"


def _emit_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _usd(text: Any) -> str:
    from engine.money import fmt_usd

    if text is None:
        return "-"
    return fmt_usd(Decimal(str(text)))


def _not_running(profile, what: str) -> int:
    print(f"no engine is running for profile {profile.name!r}: nothing to {what}.")
    return EXIT_NOT_RUNNING


# -- status --------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from console.cli import load_or_exit
    from engine.control.offline import offline_status

    profile = load_or_exit(args.profile)
    reply, code = _ask(profile, {"cmd": "status"})
    if reply is None:
        info = _offline(offline_status(profile), "read")
        if info is None:
            return EXIT_USAGE
        if args.json:
            _emit_json(info)
        else:
            print("\n".join(offline_lines(info, code == EXIT_UNREACHABLE and info["engine_pid"] is not None)))
        return code or EXIT_NOT_RUNNING
    if not reply.get("ok"):
        print(f"tradeconsole: status failed: {reply.get('error')}", file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        _emit_json(reply)
    else:
        print("\n".join(status_lines(reply)))
    return EXIT_OK


def status_lines(r: dict[str, Any]) -> list[str]:
    state = str(r["trading_state"]).upper()
    lines = [
        (f"engine        running, pid {r['pid']}, profile {r['profile']} ({r['mode']}, venue {r['venue']}), "
         f"session {r['session']}, engine time {r['engine_time']}"),
        f"trading       {state}" + (f" — {r['halt_reason']}" if r.get("halt_reason") else ""),
        f"venue         {'connected' if r['connected'] else 'DISCONNECTED'}",
        (f"equity        {_usd(r['equity'])}   cash {_usd(r['cash'])}   today {_usd(r['pnl_today'])}   "
         f"week {_usd(r['pnl_week'])}"),
        f"P&L           realized {_usd(r['realized_pnl'])}   unrealized {_usd(r['unrealized_pnl'])}   fees {_usd(r['fees'])}",
        f"positions     {len(r['positions'])}",
    ]
    for p in r["positions"]:
        stop = "NO STOP" if p["stop_price"] is None else f"stop {p['stop_price']} ({p['stop_distance_pct']} % away)"
        if p["stop_price"] is not None and not p.get("stop_working", True):
            stop = f"NO STOP working (planned {p['stop_price']})"
        lines.append(f"  {p['symbol']:<10} {p['side']:<5} {p['quantity']} @ {p['avg_price']}   last {p['last_price']}   "
                     f"uPnL {_usd(p['unrealized_pnl'])}   {stop}")
    if r.get("dust"):
        lines.append("dust          " + ", ".join(f"{d['symbol']} {d['quantity']} (~{_usd(d['value'])})" for d in r["dust"])
                     + "   below the venue's minimum order: no stop, not tradable")
    orders = r["open_orders"]
    kinds: dict[str, int] = {}
    for o in orders:
        kinds[o["purpose"]] = kinds.get(o["purpose"], 0) + 1
    lines.append(f"open orders   {len(orders)}" + (f" ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})" if kinds else ""))
    for o in orders[:50]:
        lines.append(f"  {o['client_order_id']:<24} {o['symbol']:<10} {o['side']:<4} {o['type']:<6} {o['purpose']:<6} "
                     f"{o['filled_qty']}/{o['quantity']} @ {o['price'] if o['price'] is not None else 'market'}  {o['status']}")
    if len(orders) > 50:
        lines.append(f"  ... {len(orders) - 50} more (--json lists all)")
    lines.append(f"approvals     {r['approvals']} pending")
    if r.get("cancels_outstanding"):
        lines.append(f"NOT CANCELLED {', '.join(r['cancels_outstanding'])} (the venue refused; retry halt or cancel on the venue)")
    open_diffs = [d for d in r.get("reconciliation", []) if not d["resolved"]]
    if open_diffs:
        lines.append(f"RECONCILE     {len(open_diffs)} difference(s) between journal and venue; reduce-only until "
                     "each is answered in the console or with `tradeconsole reconcile`:")
        lines.extend(f"  {d['id']}  {d['text']}" for d in open_diffs)
    lines.append("breakers")
    for b in r["breakers"]:
        lines.append(f"  {b['state']:<8} {b['text'].strip()}")
    lines.append(f"journal       {r['journal']}")
    return lines


def offline_lines(info: dict[str, Any], locked: bool) -> list[str]:
    head = (f"engine        NOT ANSWERING: {_pid(info['engine_pid'])} holds the profile but its socket does not answer"
            if locked else f"engine        no engine is running for profile {info['profile']!r}")
    lines = [head, f"journal       {info['journal']}" + ("" if info["journal_exists"] else " (none yet: never started)")]
    if info["latched"]:
        lines.append(f"next start    HALTED — {info['halt_reason']} (by {info['halt_source']} at {info['latch_ts']}); "
                     f"re-arm after it starts")
    else:
        lines.append("next start    armed (no halt latched)")
    last = info.get("last_session")
    if last:
        if last["ended_cleanly"]:
            lines.append(f"last session  {last['session']} ended cleanly at {last['ended']}: equity {_usd(last['equity'])}, "
                         f"{last['positions']} position(s) open, state {last['state']}")
        else:
            lines.append(f"last session  {last['session']} started {last['started']} and DID NOT END CLEANLY (crash or kill): "
                         f"the next start reconciles the journal with the venue")
    eq = info.get("last_equity")
    if eq:
        lines.append(f"last equity   {_usd(eq['equity'])} with {eq['positions']} position(s) at {eq['ts']}")
    return lines


# -- halt ----------------------------------------------------------------------------------------
def cmd_halt(args: argparse.Namespace) -> int:
    from console.cli import load_or_exit
    from engine.control.offline import offline_halt

    reason = _reason(args)
    if reason is None:
        return _usage("halt: --reason must not be empty")
    profile = load_or_exit(args.profile)
    reply, code = _ask(profile, {"cmd": "halt", "reason": reason})
    if reply is None:
        info = _offline(offline_halt(profile, reason), "latch the halt in")
        if info is None:
            return EXIT_USAGE
        if args.json:
            _emit_json({"ok": True, "running": False, "latched_in_journal": True, **info})
        elif info["engine_pid"] is not None and info.get("engine_halted"):
            print(f"HALTED: the running engine ({_pid(info['engine_pid'])}) did not answer on its control socket, "
                  f"but read the halt from the journal {info['journal']} and halted (entries cancelled, stops "
                  "kept). Fix its control socket: see `tradeconsole status`.")
        elif info["engine_pid"] is not None:
            pid = info["engine_pid"]
            print(f"halt latched in the journal {info['journal']} for the NEXT start only: the running engine "
                  f"({_pid(pid)}) did not answer (one still starting picks it up and halts). Halt it now with its "
                  f"console's F12, or: kill -HUP {pid if pid > 0 else '<pid>'}")
        else:
            print(f"no engine is running; halt latched in the journal {info['journal']}: "
                  f"the next start comes up HALTED ({'already was' if info['was_halted'] else 'was armed'}).")
        if info.get("engine_halted"):
            return EXIT_OK
        return EXIT_UNREACHABLE if info["engine_pid"] is not None or code == EXIT_UNREACHABLE else EXIT_OK
    if args.json:
        _emit_json(reply)
        return EXIT_OK if reply.get("ok") and reply.get("persisted") else EXIT_REFUSED
    if not reply.get("ok"):
        print(f"tradeconsole: halt failed: {reply.get('error')}", file=sys.stderr)
        return EXIT_REFUSED
    already = " (it already was)" if reply["was"] == "halted" else ""
    print(f"HALTED{already}: {reply['halt_reason']}")
    print(f"latch journaled: {'yes' if reply['persisted'] else 'NOT YET (commit still running; check status)'}")
    if reply["cancels_done"] and not reply["still_open"]:
        print(f"working entry orders cancelled; {reply['positions']} position(s) kept with their stops")
    else:
        still = ", ".join(reply["still_open"]) or f"{reply['working_entries']} entries"
        print(f"cancels STILL IN PROGRESS ({still}); the engine keeps retrying — check `tradeconsole status`")
    print("to trade again: tradeconsole rearm --reason '...'")
    if not reply.get("persisted"):
        # Halted in memory, but a crash before the commit lands would start armed.
        print("tradeconsole: the halt is NOT journaled yet: the engine is halted now, but a crash before the "
              "commit lands starts it armed; check `tradeconsole status` and the engine's alerts", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


# -- close-all -----------------------------------------------------------------------------------
def cmd_close_all(args: argparse.Namespace) -> int:
    from console.cli import load_or_exit

    if not args.yes:
        return _usage("close-all flattens every position at market; add --yes to confirm")
    if not 0 <= args.wait <= CLOSE_WAIT_MAX:
        return _usage(f"close-all: --wait must be between 0 and {CLOSE_WAIT_MAX:g} seconds")
    profile = load_or_exit(args.profile)
    reply, code = _ask(profile, {"cmd": "close_all"})
    if reply is None:
        return _not_running(profile, "close") if code == EXIT_NOT_RUNNING else code
    if not reply.get("ok"):
        print(f"tradeconsole: close-all failed: {reply.get('error')}", file=sys.stderr)
        return EXIT_REFUSED
    if not args.json:
        print(f"close-all: {reply['positions']} position(s); exit orders working: {len(reply['exit_orders'])}"
              + ("" if reply["done"] else " (still sending; the engine carries on)"))
        if reply["still_open"]:
            print(f"entries NOT cancelled yet: {', '.join(reply['still_open'])}")
    left = _watch_flat(profile, args.wait, reply)
    # An entry the venue did not cancel can open a new position the moment the operator leaves:
    # never "flat", never exit 0 (an engine from before this field: its still_open list).
    entries = reply["still_open"]
    if args.json:
        _emit_json({**reply, "positions_open_after_wait": left})
    elif left == 0 and entries:
        print(f"no open positions, but NOT flat: {len(entries)} entry order(s) still working at the venue: "
              f"{', '.join(entries)}; cancel them, or `tradeconsole halt --reason ...` (it keeps retrying)")
    elif left == 0:
        print("flat: no open positions.")
    elif left is None:
        print("could not watch the exits fill (engine stopped answering); check `tradeconsole status`")
    else:
        print(f"STILL OPEN after {args.wait:g} s: {left} position(s); check `tradeconsole status`, the exits keep working")
    if reply["state"] != "halted" and not args.json:
        print("note: trading is not halted, the strategy may open new positions; `tradeconsole halt --reason ...` stops that")
    return EXIT_OK if left == 0 and not entries else EXIT_REFUSED


def _watch_flat(profile, wait: float, reply: dict[str, Any]) -> int | None:
    """Open positions once the exits had up to `wait` seconds to fill (fills come with quotes)."""
    left: int | None = reply.get("positions_open")
    deadline = time.monotonic() + wait
    while left and time.monotonic() < deadline:
        time.sleep(0.25)
        status, _ = _ask(profile, {"cmd": "status"})
        if status is None or not status.get("ok"):
            return None
        left = len(status["positions"])
    return left


# -- rearm ---------------------------------------------------------------------------------------
def cmd_rearm(args: argparse.Namespace) -> int:
    from console.cli import load_or_exit

    reason = _reason(args)
    if reason is None:
        return _usage("rearm: --reason must not be empty")
    profile = load_or_exit(args.profile)
    reply, code = _ask(profile, {"cmd": "rearm", "reason": reason})
    if reply is None:
        if code == EXIT_NOT_RUNNING:
            print(f"no engine is running for profile {profile.name!r}: nothing to re-arm. "
                  "A halt latched in the journal stays until you re-arm the started engine.")
        return code
    if args.json:
        _emit_json(reply)
    elif reply.get("ok"):
        print(f"re-armed: trading is {reply['state']}" + (f" ({reply['note']})" if reply.get("note") else ""))
    else:
        print(f"re-arm REFUSED: {reply.get('error')}")
    return EXIT_OK if reply.get("ok") else EXIT_REFUSED
