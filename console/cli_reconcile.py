"""`tradeconsole reconcile`: the restart's differences between journal and venue, answered from
any shell of the user, as the console's dialog answers them (a headless engine has no dialog).

It talks to the running engine over its control socket (engine/control/): the list, then one
answer at a time through Engine.resolve_difference, which does the work and journals it. With
no engine running there is nothing to answer: the next start compares journal and venue again.

Exit codes as `status`/`halt`/`rearm` (cli_control.py): 0 listed or answered; 1 the engine refused
the answer (no price for the symbol yet, answered meanwhile, still running); 2 usage or profile
error, an id the engine does not list or an answer that line does not take (nothing was done);
3 no engine is running; 4 an engine holds the profile but its socket does not answer.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.control.differences import shown as _shown

from .cli_control import (
    EXIT_NOT_RUNNING,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    _ask,
    _emit_json,
    _usage,
)

ANSWERS = ("adopt", "book", "cancel", "mark-closed")  # the dialog's a / b / x / m


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconcile", help="list the running engine's restart differences, or answer one (--answer)")
    p.add_argument("--answer", nargs=2, metavar=("ID", "ACTION"),
                   help=f"answer difference ID with one of {', '.join(ANSWERS)} (those its line lists)")
    p.add_argument("--profile", metavar="PATH", help="YAML profile of the running engine (default: built-in paper)")
    p.add_argument("--json", action="store_true", help="print the engine's answer as JSON")
    p.set_defaults(handler=cmd_reconcile)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from console.cli import load_or_exit

    payload: dict[str, Any] = {"cmd": "reconcile"}
    if args.answer:
        ident, action = (x.strip() for x in args.answer)
        if action.lower() not in ANSWERS:
            return _usage(f"reconcile: unknown answer {action!r}; answers: {', '.join(ANSWERS)}")
        if not ident:
            return _usage("reconcile: the difference ID must not be empty (`tradeconsole reconcile` lists them)")
        payload = {"cmd": "resolve", "difference": ident, "action": action.lower().replace("-", "_")}
    profile = load_or_exit(args.profile)
    reply, code = _ask(profile, payload)
    if reply is None:
        if code == EXIT_NOT_RUNNING:
            print(f"no engine is running for profile {profile.name!r}: nothing to reconcile. "
                  "The next start compares the journal with the venue again.")
        return code
    rc = _exit_code(reply)
    if args.json:
        _emit_json(reply)
    elif args.answer:
        _print_answer(reply, args.profile)
    elif reply.get("ok"):
        print("\n".join(difference_lines(reply, args.profile)))
    else:
        print(f"tradeconsole: reconcile failed: {reply.get('error')}", file=sys.stderr)
    return rc


def _exit_code(reply: dict[str, Any]) -> int:
    if reply.get("ok"):
        return EXIT_OK
    return EXIT_USAGE if reply.get("invalid") else EXIT_REFUSED


def _again(profile_arg: str | None, tail: str = "") -> str:
    where = f" --profile {profile_arg}" if profile_arg else ""
    return f"tradeconsole reconcile{where}{tail}"


def difference_lines(r: dict[str, Any], profile_arg: str | None) -> list[str]:
    open_ = [d for d in r["differences"] if not d["resolved"]]
    answered = len(r["differences"]) - len(open_)
    done = f" ({answered} answered)" if answered else ""
    if not open_:
        return [f"no open differences between journal and venue{done}; trading is {_state(r)}"]
    lines = [f"{len(open_)} difference(s) between journal and venue{done}; reduce-only until each is answered:"]
    for d in open_:
        what = d["kind"].replace("_", " ") + (f" {d['client_order_id']}" if d["client_order_id"] else "")
        lines.append(f"  {d['id']}  {d['symbol']:<10} {what:<18} journal: {d['journal']}   venue: {d['venue']}   "
                     f"answers: {', '.join(_shown(a) for a in d['actions'])}")
    lines.append(f"answer one: {_again(profile_arg, ' --answer ID ACTION')}")
    return lines


def _state(r: dict[str, Any]) -> str:
    state = str(r["state"]).upper().replace("_", "-")
    return state + (f" — {r['halt_reason']}" if r.get("halt_reason") else "")


def _print_answer(r: dict[str, Any], profile_arg: str | None) -> None:
    if not r.get("ok"):
        if r.get("refused"):
            print(f"answer REFUSED: {r.get('error')}")
        else:
            print(f"tradeconsole: reconcile: {r.get('error')}", file=sys.stderr)
        return
    print(f"{_shown(r['action'])}: {r['text']} — answered and journaled")
    pos = r.get("position")
    if pos is not None:
        stop = (f"stop {pos['stop_working_price']} working ({pos['stop_order']})" if pos["stop_order"]
                else "NO STOP working (see the alerts; place one on the venue if it stays so)")
        print(f"position      {pos['symbol']} {pos['quantity']}, {stop}")
    if r["open"]:
        print(f"{r['open']} difference(s) still open: reduce-only until each is answered; {_again(profile_arg)} lists them")
    elif r["state"] == "active":
        print("no differences remain: the engine has left reduce-only (trading ACTIVE)")
    elif r["state"] == "halted":
        print(f"no differences remain; trading stays {_state(r)}: re-arm once status agrees with the venue")
    else:
        print(f"no differences remain, but trading stays {_state(r)}")
