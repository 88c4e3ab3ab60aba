"""`tradeconsole promote --to STAGE --profile PATH [--from PATH]`: move a journal along the stages.

Up one stage only when the readiness report of the current stage says GO; down at once. The
change is a `stage` row in the profile's journal, which the engine honours at its next start
(engine/stages.py). Exit codes: 0 done (or nothing to do), 1 refused (readiness NO-GO, a stage
skipped), 2 usage or profile errors; every message is one line.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from console.cli_analytics import MAX_RESAMPLES, int_in

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("promote", help="move a profile to another stage: up only when the current stage's "
                                       "readiness passes, down at once")
    p.add_argument("--to", required=True, metavar="STAGE",
                   help="paper, testnet, micro, small, medium or standard")
    p.add_argument("--profile", required=True, metavar="PATH",
                   help="the profile that will trade at STAGE; its journal records the change")
    p.add_argument("--from", dest="evidence", metavar="PATH",
                   help="the profile whose journal proves the current stage (default: --profile); "
                        "e.g. the testnet profile when a live profile is promoted to micro")
    p.add_argument("--reason", default="", metavar="TEXT", help="why; goes into the journal")
    p.add_argument("--resamples", type=int_in(1, MAX_RESAMPLES), default=2000, metavar="N",
                   help="bootstrap resamples (default 2000)")
    p.set_defaults(handler=cmd_promote)


def _fail(msg: str, code: int = EXIT_USAGE) -> int:
    print(f"tradeconsole: {msg}", file=sys.stderr)
    return code


def _read(path: Path, kinds: tuple[str, ...] | None = None) -> Any:
    """The journal's rows, or None when the profile has never run (no journal file yet)."""
    from engine.analytics.journal_data import KINDS, load

    if not path.exists():
        return None
    return load(path, kinds or KINDS)


def cmd_promote(args: argparse.Namespace) -> int:
    from console.cli import load_or_exit
    from engine.analytics.journal_data import JournalReadError, append_row, read_meta
    from engine.journal_errors import JournalError
    from engine.profile import journal_path
    from engine.stages import (
        PromotionError,
        current_stage,
        grant_for,
        plan,
        same_journal,
    )

    target = load_or_exit(args.profile)
    evidence = load_or_exit(args.evidence) if args.evidence else target
    tpath, epath = journal_path(target), journal_path(evidence)
    shared = same_journal(target, evidence)
    try:
        # Stage rows carry the operator's wall-clock time: read apart from the market rows the
        # readiness report measures; the venue rows say which venue a grant belongs to.
        tstages = _read(tpath, ("stage", "venue"))
        estages = tstages if shared else _read(epath, ("stage", "venue"))
        edata = _read(epath)
        # A backtest marks its journal (engine/analytics/backtest.py): plan() refuses it as evidence.
        made_by = read_meta(epath, "made_by") if edata is not None else None
    except JournalReadError as exc:
        return _fail(f"promote: {exc}")
    tcur = current_stage(target, grant_for(target, tstages.rows)[0] if tstages else None)
    ecur = current_stage(evidence, grant_for(evidence, estages.rows)[0] if estages else None)
    try:
        decided = plan(target, tcur, args.to, evidence, ecur, edata, resamples=args.resamples,
                       target_stages=tstages.rows if tstages else (),
                       evidence_stages=estages.rows if estages else (), made_by=made_by)
    except PromotionError as exc:
        return _fail(f"promote: {exc}")
    if decided.action == "refused":
        return _fail(f"promote: {decided.message}", EXIT_REFUSED)
    if decided.action == "none":
        print(decided.message)
        return EXIT_OK
    reason = " ".join(args.reason.split())
    try:
        append_row(tpath, "stage", datetime.now(timezone.utc), decided.target, decided.row(evidence, epath, reason))
    except JournalError as exc:  # read-only, locked, disk full: the journal's own line names the file
        return _fail(f"promote: {exc}")
    print(decided.message + _running_note(target))
    return EXIT_OK


def _running_note(profile: Any) -> str:
    """A running engine keeps the stage it started with; say so rather than let it look applied."""
    try:
        from engine.control.offline import engine_pid

        pid = engine_pid(profile)
    except (ImportError, OSError):
        return ""
    if pid is None:
        return ""
    return " (the running engine keeps its stage until it restarts; halt it first if this cannot wait)"
