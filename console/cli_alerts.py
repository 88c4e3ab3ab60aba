"""`tradeconsole alerts test [--profile PATH]`: send a test alert of each severity to the channels
configured for it and print one line per channel and severity.

Exit 0 when every delivery worked, 1 when any failed, 2 for a config problem (a missing
environment variable is named, its would-be value never printed).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    alerts = subparsers.add_parser("alerts", help="outbound alert channels (email, chat, webhooks)")
    alerts.set_defaults(handler=_no_action)
    sub = alerts.add_subparsers(dest="alerts_command", parser_class=type(alerts))
    test = sub.add_parser("test", help="send a test alert of each severity to the configured channels")
    test.add_argument("--profile", metavar="PATH", help="YAML profile (default: built-in paper profile)")
    test.set_defaults(handler=_test)


def _no_action(args: argparse.Namespace) -> int:
    print("tradeconsole alerts: say what to do, e.g. `tradeconsole alerts test --profile PATH`", file=sys.stderr)
    return 2


def _test(args: argparse.Namespace) -> int:
    from console.cli import load_or_exit
    from engine.notify.check import ConfigProblems, send_tests

    profile = load_or_exit(args.profile)
    try:
        results = asyncio.run(send_tests(profile.alerts, profile.name, os.environ))
    except ConfigProblems as exc:
        for line in exc.lines:
            print(f"tradeconsole: {line}", file=sys.stderr)
        return 2
    width = max(len(r.channel) for r in results)
    label_width = max(len(r.label) for r in results)
    for r in results:
        print(r.line(width, label_width), flush=True)
    return 0 if all(r.outcome.ok for r in results) else 1
