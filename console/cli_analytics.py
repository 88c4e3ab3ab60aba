"""CLI commands on the journal: readiness, attest, backtest, report, drill.

The work is done by engine.analytics (plain synchronous functions); this module parses
arguments, loads the profile, and renders: rich tables on a terminal, JSON with --json. Usage
and input errors are one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from . import cli_tables as tables


# Bounds of the integer arguments: a bootstrap seed is non-negative (numpy) and goes into JSON
# (64 bits); resamples cost memory and time in proportion (1e11 asked numpy for 745 GiB).
MAX_RESAMPLES = 100_000
MAX_SEED = 2**63 - 1


def int_in(low: int, high: int | None = None):
    """An argparse type: an integer from `low` to `high` (no upper bound when None); a value out
    of range is a usage error that says the range."""
    expected = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < low or (high is not None and v > high):
            raise argparse.ArgumentTypeError(f"expected {expected} (got {text!r})")
        return v

    return parse


def register(sub: argparse._SubParsersAction) -> None:
    from console.cli import market_seed

    resamples, seed = int_in(1, MAX_RESAMPLES), int_in(0, MAX_SEED)

    r = sub.add_parser("readiness", help="go/no-go of a stage from the journal's record")
    r.add_argument("--profile", metavar="PATH")
    r.add_argument("--stage", metavar="NAME", help="stage whose criteria to check (default: the stage promote "
                   "judges: paper for a paper profile, the journal's grant for a testnet or live one)")
    r.add_argument("--json", action="store_true", help="JSON instead of a table")
    r.add_argument("--resamples", type=resamples, default=2000, metavar="N", help="bootstrap resamples (default 2000)")
    r.add_argument("--seed", type=seed, default=0, metavar="N", help="bootstrap seed (default 0)")
    r.set_defaults(handler=_no_traceback("readiness", _readiness))

    a = sub.add_parser("attest", help="journal an operator attestation for a readiness item")
    a.add_argument("item", metavar="ITEM", help="an item the readiness criteria list, e.g. runbook_read")
    a.add_argument("--text", required=True, metavar="TEXT", help="what the operator attests")
    a.add_argument("--profile", metavar="PATH")
    a.set_defaults(handler=_no_traceback("attest", _attest))

    b = sub.add_parser("backtest", help="replay a CSV through the engine and measure it")
    b.add_argument("--profile", metavar="PATH")
    b.add_argument("--csv", required=True, metavar="FILE", help="quotes or OHLCV bars (see docs/metrics.md)")
    b.add_argument("--journal", metavar="PATH", help="backtest journal (default: <journal>.backtest-<time>.sqlite)")
    b.add_argument("--windows", type=int_in(1), metavar="N", help="walk-forward: N rolling in/out-of-sample windows")
    b.add_argument("--is-fraction", type=float, metavar="F", help="in-sample share of a window (0.7; with --windows)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(handler=_no_traceback("backtest", _backtest))

    p = sub.add_parser("report", help="daily, weekly or stage report from the journal")
    p.add_argument("kind", choices=("daily", "weekly", "stage"))
    p.add_argument("--profile", metavar="PATH")
    p.add_argument("--json", action="store_true")
    p.add_argument("--html", metavar="PATH", help="also write a self-contained HTML report with charts")
    p.add_argument("--resamples", type=resamples, default=2000, metavar="N")
    p.add_argument("--seed", type=seed, default=0, metavar="N")
    p.set_defaults(handler=_no_traceback("report", _report))

    d = sub.add_parser("drill", help="halt/cancel/close-all drill on the paper broker and a simulated market "
                                     "(never the venue)")
    d.add_argument("--profile", metavar="PATH")
    d.add_argument("--simulated", action="store_true",
                   help="a live profile's drill: run its limits, symbols and strategy on the paper broker and a "
                        "simulated market (no venue call, no key); required for a live profile")
    d.add_argument("--seed", type=market_seed, metavar="N", help="seed of the simulated market")
    d.add_argument("--json", action="store_true")
    d.set_defaults(handler=_no_traceback("drill", _drill))


# -- helpers ---------------------------------------------------------------------------------------
def _no_traceback(command: str, handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`handler`, whose unforeseen failure is one line and exit 2: never a traceback, and never
    exit 1, which `readiness` says for NO-GO and `drill` for a failed drill."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except BrokenPipeError:
            raise  # the reader went away: cli.main's quiet exit 141
        except Exception as exc:  # noqa: BLE001 - anything else is an error, said in one line
            return _fail(f"{command}: failed: {type(exc).__name__}: {exc}")

    return guarded


def _fail(msg: str) -> int:
    print(f"tradeconsole: {msg}", file=sys.stderr)
    return 2


def _profile(path: str | None):
    from console.cli import load_or_exit

    return load_or_exit(path)


def _journal(profile) -> Any:
    from engine.analytics.journal_data import load
    from engine.profile import journal_path

    return load(journal_path(profile))


def _dump(obj: Any) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")


# -- readiness and attest --------------------------------------------------------------------------
def _readiness(args: argparse.Namespace) -> int:
    from engine.analytics.journal_data import JournalReadError
    from engine.analytics.readiness import evaluate, judged_stage, stage_record
    from engine.profile import journal_path

    profile = _profile(args.profile)
    # By default the stage `promote` judges: a paper profile stands at paper whatever its `stage:`.
    stage = args.stage or judged_stage(profile, journal_path(profile))
    if stage not in profile.readiness.stages:
        return _fail(f"readiness: no criteria for stage {stage!r} (profile has: {', '.join(profile.readiness.stages)})")
    try:
        rep = evaluate(profile, stage_record(_journal(profile), stage), stage, resamples=args.resamples,
                       seed=args.seed)
    except JournalReadError as exc:
        return _fail(str(exc))
    if args.json:
        _dump(rep)
    else:
        tables.print_readiness(rep)
    return 0 if rep["verdict"] == "GO" else 1


def _attest(args: argparse.Namespace) -> int:
    from engine.analytics.journal_data import append_row
    from engine.journal_errors import JournalError
    from engine.profile import journal_path

    profile = _profile(args.profile)
    # Only items a stage's criteria name: a typo (runbok_read) journaled as an attestation said
    # "attested" while the real item stayed missing from the go/no-go.
    known = sorted({item for crit in profile.readiness.stages.values() for item in crit.attestations})
    if args.item not in known:
        listed = ", ".join(known) if known else "none (no stage under readiness.stages lists attestations)"
        return _fail(f"attest: unknown item {args.item!r}; this profile's readiness items are {listed}")
    text = args.text.strip()
    if not text:
        return _fail("attest: --text must not be empty")
    now = datetime.now(timezone.utc)
    try:
        append_row(journal_path(profile), "attestation", now, args.item, {"item": args.item, "text": text,
                                                                           "at": now.isoformat()})
    except JournalError as exc:
        return _fail(f"attest: not recorded: {exc}")
    stages = [s for s, c in profile.readiness.stages.items() if args.item in c.attestations]
    print(f"attested {args.item} at {now:%Y-%m-%d %H:%M:%S} UTC (required by: {', '.join(stages)})")
    return 0


# -- backtest --------------------------------------------------------------------------------------
def _backtest(args: argparse.Namespace) -> int:
    from engine.analytics import backtest as bt
    from engine.analytics.journal_data import JournalReadError, load
    from engine.analytics.metrics import compute, periods_per_year
    from engine.feeds.csv_replay import CsvFeedError
    from engine.profile import journal_path

    profile = _profile(args.profile)
    if not Path(args.csv).is_file():
        return _fail(f"backtest: --csv: no such file: {args.csv}")
    if args.is_fraction is None:
        args.is_fraction = 0.7
    elif args.windows is None:
        # Silently ignored before: the operator would read a plain backtest as the split they asked.
        return _fail("backtest: --is-fraction needs --windows (it splits each walk-forward window)")
    paper_path = journal_path(profile)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    journal = Path(args.journal) if args.journal else paper_path.with_name(f"{paper_path.stem}.backtest-{stamp}.sqlite")
    if journal.resolve() == paper_path.resolve():
        return _fail("backtest: --journal must not be the profile's own journal")
    batches = None
    try:
        # Every refusal comes before anything is written: the journal, then the windows against
        # the data (a 1-row CSV with --windows 2 ran the whole backtest first, journal and log).
        bt.check_journal(journal)
        if args.windows is not None:
            batches = bt.read_batches(args.csv)
            bt.window_bounds(len(batches), args.windows, args.is_fraction)
        res, m = bt.run_backtest(profile, args.csv, journal)
        windows = None
        if batches is not None:
            with tempfile.TemporaryDirectory(prefix="tc-walkforward-") as tmp:
                windows = bt.walk_forward(profile, args.csv, tmp, args.windows, args.is_fraction, batches)
                for w in windows:
                    w.pop("journal", None)  # in the temporary directory, gone with it
    except CsvFeedError as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(f"backtest: {exc}")
    out: dict[str, Any] = {"profile": profile.name, "csv": args.csv, "journal": str(journal), "quotes": res.quotes,
                           "wall_seconds": res.wall_seconds, "counters": res.counters, "metrics": m.as_dict()}
    try:
        paper = load(paper_path)
        pm = compute(paper, capital=paper.starting_capital(profile.paper.starting_cash),
                     ppy=periods_per_year(profile), tz=profile.venue.timezone)
        out["vs_paper"] = {"journal": str(paper_path), "factor": str(profile.readiness.backtest_divergence_factor),
                           "rows": bt.compare(m, pm, profile.readiness.backtest_divergence_factor)}
    except JournalReadError:
        out["vs_paper"] = None
    if windows is not None:
        out["walk_forward"] = {"windows": args.windows, "is_fraction": args.is_fraction, "results": windows}
    if args.json:
        _dump(out)
        return 0
    c = tables.terminal()
    c.print(f"backtest of profile {profile.name} on {args.csv}: {res.quotes:,} quotes in {res.wall_seconds:.2f} s, "
            f"journal {journal}")
    for t in tables.metrics_tables(out["metrics"]):
        c.print(t)
    tables.print_vs_paper(c, out["vs_paper"])
    if windows is not None:
        tables.print_windows(c, windows)
    return 0


# -- report and drill ------------------------------------------------------------------------------
def _report(args: argparse.Namespace) -> int:
    from engine.analytics import html, report
    from engine.analytics.journal_data import JournalReadError

    profile = _profile(args.profile)
    try:
        rep, m = report.build(profile, _journal(profile), args.kind, resamples=args.resamples, seed=args.seed)
    except JournalReadError as exc:
        return _fail(str(exc))
    if args.html:
        try:
            Path(args.html).write_text(html.render(rep, m), encoding="utf-8")
        except OSError as exc:
            return _fail(f"report: --html: cannot write {args.html}: {exc.strerror or exc}")
    if args.json:
        _dump(rep)
        return 0
    c = tables.terminal()
    per = rep["period"]
    c.print(f"[bold]{args.kind} report[/]: profile {rep['profile']} (stage {rep['stage']}), "
            f"{per['since'] or per['first_row']} .. {per['until'] or per['last_row']}")
    for t in tables.metrics_tables(rep["metrics"]):
        c.print(t)
    review = rep.get("week") or rep.get("review")
    if review:
        for key in ("largest_gain", "largest_loss"):
            t = review[key]
            c.print(f"{key.replace('_', ' ')}: " + ("none" if t is None else f"{t['symbol']} {tables.cell(t['net'])} — {t['reason']}"))
        inc = review["incidents"]
        c.print(f"incidents: {len(inc['breakers'])} breaker critical/trips, {len(inc['halts'])} halts, "
                f"{len(inc['venue_errors'])} venue errors; positions without a stop: "
                f"{review['positions_without_stop']['count']}")
    if rep["notes"]:
        from rich.table import Table

        t = Table(title="notes", title_justify="left")
        for col in ("when", "about", "text"):
            t.add_column(col)
        for n in rep["notes"]:
            about = n["about"] if not n["ref"] else f"{n['about']} {n['ref']}"
            t.add_row(str(n["ts"]), about, n["text"])
        c.print(t)
    if rep.get("readiness"):
        tables.print_readiness(rep["readiness"])
    if args.html:
        c.print(f"HTML report: {args.html}")
    return 0


def _drill(args: argparse.Namespace) -> int:
    import asyncio

    from engine.analytics.drill import run_drill
    from engine.analytics.journal_data import append_row
    from engine.journal_errors import JournalError
    from engine.profile import journal_path

    profile = _profile(args.profile)
    if profile.mode == "live" and not getattr(args, "simulated", False):
        # Said, not run: the drill never touches the venue, and a live profile's operator must not
        # take it for a drill of the live account.
        return _fail("drill: refused on a live profile without --simulated: the drill never touches the venue; "
                     "`tradeconsole drill --simulated --profile PATH` runs this profile's limits, symbols and "
                     "strategy on the paper broker and a simulated market and journals it for the drill criterion")
    main = journal_path(profile)
    stamp = datetime.now(timezone.utc)
    scratch = main.with_name(f"{main.stem}.drill-{stamp:%Y%m%dT%H%M%SZ}.sqlite")
    res = asyncio.run(run_drill(profile, scratch, seed=args.seed))
    # The row names the profile judged and its mode (readiness counts only a profile's own drills),
    # and says where it ran: the paper broker on a simulated market, whatever the profile's venue.
    out = {"profile": profile.name, "mode": profile.mode, "stage": profile.stage, "broker": "paper",
           "market": "simulated", **res.as_dict()}
    try:
        append_row(main, "drill", datetime.now(timezone.utc), "pass" if res.passed else "fail", out)
        unrecorded = None
    except JournalError as exc:  # the result is still shown; the readiness record lacks it
        unrecorded = exc
    if args.json:
        _dump(out)
    else:
        from rich.table import Table

        t = Table(title=f"drill: profile {profile.name} ({profile.mode}), on the paper broker and a simulated market",
                  title_justify="left")
        for col in ("step", "result", "ms", "detail"):
            t.add_column(col, justify="right" if col == "ms" else "left")
        for s in out["steps"]:
            t.add_row(s["name"], "[green]ok[/]" if s["ok"] else "[red]FAILED[/]", f"{s['ms']:.1f}", s["detail"])
        c = tables.terminal()
        c.print(t)
        where = f"journaled in {main}" if unrecorded is None else "NOT journaled"
        c.print(f"[bold {'green' if res.passed else 'red'}]{'PASS' if res.passed else 'FAIL'}[/]  "
                f"{where}; drill journal {scratch}")
    if unrecorded is not None:
        return _fail(f"drill: the result could not be journaled: {unrecorded}")
    return 0 if res.passed else 1
