"""The `tradeconsole` command line. Usage and config errors: one line on stderr, exit 2."""
from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import importlib
import os
import sys
from typing import Sequence

# Further subcommands live with their features; each module has `register(subparsers)` and
# sets `handler=` on its parsers. A module not in this build is skipped.
COMMAND_MODULES = ("console.cli_control", "console.cli_reconcile", "console.cli_alerts", "console.cli_analytics",
                   "console.cli_stage")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not a usage dump
        raise UsageError(f"{self.prog}: {message}")


def _parser(commands: bool = True) -> argparse.ArgumentParser:
    """commands=False leaves out the feature modules' subcommands (see main)."""
    p = _Parser(prog="tradeconsole", description="Operator console for a risk-gated trading engine.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="open the console (default) or run headless")
    run.add_argument("--profile", metavar="PATH", help="YAML profile (default: built-in paper profile)")
    run.add_argument("--headless", action="store_true", help="no screen: log lines on stdout, summary at the end")
    run.add_argument("--duration", metavar="SIM_TIME", help="stop after this much simulated time (e.g. 90s, 30m, 6h)")
    run.add_argument("--seed", type=market_seed, metavar="N", help="seed of the simulated market (reproducible runs)")
    run.add_argument("--speed", metavar="X", help="simulated seconds per wall second, or 'max'")
    run.add_argument("--live", action="store_true", help="required to run a live profile (asks a typed confirmation)")
    run.add_argument("--no-mouse", action="store_true",
                     help="console: no mouse reporting, which floods slow SSH links (= TRADECONSOLE_NO_MOUSE=1)")
    run.add_argument("--theme", metavar="NAME",
                     help="console: colour theme, e.g. ansi (the terminal's own 16 colours), ansi-light, "
                          "textual-dark (= TRADECONSOLE_THEME)")
    chk = sub.add_parser("check-config", help="validate a profile and print the effective config")
    chk.add_argument("path", metavar="PATH")
    for name in COMMAND_MODULES if commands else ():
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        mod.register(sub)
    return p


def _feed_bound(field: str, which: str):
    """A bound (`ge`, `le`) of a feed setting as the profile schema declares it: the flag that
    overrides the setting takes exactly what the profile would."""
    from engine.profile import FeedConfig

    return next(getattr(m, which) for m in FeedConfig.model_fields[field].metadata if hasattr(m, which))


def market_seed(text: str) -> int:
    """--seed: an integer within feed.seed's bounds (the journal holds 64 bits)."""
    low, high = _feed_bound("seed", "ge"), _feed_bound("seed", "le")
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer (got {text!r})") from None
    if not low <= v <= high:
        raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high} (got {text})")
    return v


def _speed(text: str | None) -> float | None:
    if text is None:
        return None
    if text.lower() == "max":
        return 0.0
    from engine.profile import MIN_SPEED

    top = _feed_bound("speed", "le")
    expected = (f"tradeconsole: --speed: expected 'max' (or 0, as feed.speed) or a number from {MIN_SPEED:g} "
                f"to {top:g} (got {text!r})")
    try:
        v = float(text)
    except ValueError:
        raise UsageError(expected) from None
    if v == 0:  # any spelling of zero ("0", "0.0", "-0"): flat out, as `feed.speed: 0` means
        return 0.0
    if not MIN_SPEED <= v <= top:  # NaN fails this too
        raise UsageError(expected)
    return v


def _check_home() -> None:
    """TRADECONSOLE_HOME, when set, is an absolute folder: a relative one named another journal
    (and another halt latch) in every folder a command was run from, and "   " made a folder of
    spaces."""
    raw = os.environ.get("TRADECONSOLE_HOME")
    if raw is None or raw == "":
        return
    if not raw.strip() or not os.path.isabs(os.path.expanduser(raw)):
        raise UsageError(f"tradeconsole: TRADECONSOLE_HOME: expected an absolute path such as /home/you/tradeconsole "
                         f"(got {raw!r})")


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in or (args_in[0].startswith("-") and args_in[0] not in ("-h", "--help")):
        args_in.insert(0, "run")
    try:
        _check_home()
        # `run` (also what no command means) is parsed by its own subparser: the other commands'
        # modules are not imported just to be listed, which the console's start would pay for.
        args = _parser(commands=args_in[0] != "run").parse_args(args_in)
        handler = getattr(args, "handler", None)
        if handler is not None:
            code = handler(args)
        elif args.command == "check-config":
            code = _check_config(args.path)
        else:
            code = _run(args)
        # Flushed here, not at exit: a reader gone by then (`| head -1`) would turn it into
        # "Exception ignored ... BrokenPipeError" and exit 120.
        sys.stdout.flush()
        return code
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader left: what it did not read is nobody's error (whatever a command journaled
        # was journaled before it printed). stdout goes to devnull so the interpreter's own flush
        # at exit cannot raise again (Python docs, "Note on SIGPIPE"); 141 is what a shell shows
        # for a command killed by SIGPIPE, and 1 already means "refused" here.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        # Ctrl-C before an engine was open (while modules load) or a second one while it closes:
        # whatever was journaled is committed; say so in one line, not a traceback.
        print("tradeconsole: interrupted", file=sys.stderr)
        return 130


def load_or_exit(path: str | None):
    """The profile, or its problems on stderr (one line each) and exit code 2."""
    return _load(path)


def _load(path: str | None):
    from engine.config_loader import ConfigError, load_profile

    try:
        return load_profile(path)
    except ConfigError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        raise SystemExit(2) from None


def keymap_refusals(profile, path: str | None) -> list[str]:
    """The profile's `keys:` problems as `run` refuses them, one line each naming the file. The
    console's check (console/bindings.py): the engine does not import Textual."""
    from console.bindings import keymap_problems

    source = path or "built-in profile"
    return [f"{source}: {line}" for line in keymap_problems(profile.keys)]


def _check_config(path: str) -> int:
    from engine.config_loader import effective_yaml, preflight

    profile = _load(path)
    # What `run` would refuse at its start (a missing or malformed CSV, an unknown exchange
    # calendar, a key map that leaves a key unreachable) is not "valid" either.
    problems = preflight(profile, path) + keymap_refusals(profile, path)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 2
    print(f"# {path}: valid ({profile.mode} profile {profile.name!r})")
    print(effective_yaml(profile), end="")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.headless or not gc.isenabled():
        return _start(args, gc_paused=False)
    # Automatic garbage collection is off for the console's start and back on after its first
    # frame (why: console/refresh.py, _end_start_gc); on every other way out, here.
    gc.disable()
    _no_collections_at_exit()
    try:
        return _start(args, gc_paused=True)
    finally:
        gc.enable()


def _no_collections_at_exit() -> None:
    """Freeze the heap at the process's exit (an atexit handler), before the interpreter's shutdown.

    That shutdown runs full collections over everything the console built: 150-250 ms between the
    screen closing and the shell prompt on a small machine, against 15-30 ms with the heap frozen.
    Nothing is owed to them: the engine closes its journal, venue store and services itself,
    logging flushes and closes its files in its own atexit handler (frozen or not), and garbage
    cycles left are the operating system's to reclaim. Registered once per process, however often
    main() runs in it (tests)."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


def _start(args: argparse.Namespace, gc_paused: bool) -> int:
    from engine.headless import parse_duration

    if args.headless and (args.no_mouse or args.theme is not None):
        raise UsageError("tradeconsole: --no-mouse and --theme are for the console, not --headless")
    theme = _theme(args.theme)  # a typo is told before a live profile asks for its confirmation
    profile = _load(args.profile)
    if not args.headless:  # the key map, before the journal or the venue is opened
        refusals = keymap_refusals(profile, args.profile)
        for line in refusals:
            print(line, file=sys.stderr)
        if refusals:
            return 2
    _confirm_live(profile, args.live)
    speed = _speed(args.speed)
    try:
        duration = parse_duration(args.duration) if args.duration is not None else None
    except ValueError as exc:
        raise UsageError(f"tradeconsole: {exc}") from None
    if args.headless:
        return asyncio.run(_headless(profile, args.seed, speed, duration))
    return _console(profile, args.seed, speed, duration, mouse=False if args.no_mouse else None, theme=theme,
                    start_gc_paused=gc_paused)


def _theme(name: str | None) -> str | None:
    """--theme, checked before anything is opened; None leaves it to TRADECONSOLE_THEME."""
    if name is None:
        return None
    from console.app import known_theme

    problem = known_theme(name)
    if problem:
        raise UsageError(f"tradeconsole: --theme: {problem}")
    return name


def _confirm_live(profile, flag: bool) -> None:
    """Live money is never a default: a live profile, --live, and the profile's name typed back."""
    if profile.mode != "live":
        if flag:
            raise UsageError(f"tradeconsole: --live given but profile {profile.name!r} is mode {profile.mode}")
        return
    if not flag:
        raise UsageError(f"tradeconsole: profile {profile.name!r} trades real money: add --live to run it")
    if not sys.stdin.isatty():
        raise UsageError("tradeconsole: live mode needs a typed confirmation on a terminal")
    typed = input(f"LIVE trading with real money on {profile.venue.name}. Type the profile name "
                  f"({profile.name}) to continue: ").strip()
    if typed != profile.name:
        raise UsageError("tradeconsole: live confirmation did not match; nothing started")


def _close_failed(exc: BaseException) -> int:
    """The run ended but its last writes did not land: one line, and an exit status that says so."""
    print(f"tradeconsole: {exc}", file=sys.stderr)
    return 1


async def _headless(profile, seed, speed, duration) -> int:
    from console.cli_open import open_engine
    from engine.engine import EngineCloseError
    from engine.headless import run_headless

    # Simulated and replayed markets run flat out headless unless --speed says otherwise.
    engine = await open_engine(profile, seed, 0.0 if speed is None else speed, stdout=True)
    try:
        return await run_headless(engine, duration)
    except EngineCloseError as exc:
        return _close_failed(exc)


def _console(profile, seed, speed, duration, *, mouse: bool | None = None, theme: str | None = None,
             start_gc_paused: bool = False) -> int:
    import os

    from console.app import TradeConsoleApp
    from console.cli_open import open_engine
    from engine.engine import EngineCloseError

    exit_when_ready = os.environ.get("TRADECONSOLE_EXIT_WHEN_READY") == "1"

    async def go() -> int:
        engine = await open_engine(profile, seed, speed, stdout=False)
        try:
            app = TradeConsoleApp(engine, exit_when_ready=exit_when_ready, mouse=mouse, theme=theme,
                                  duration=duration, start_gc_paused=start_gc_paused)
        except ValueError as exc:  # a bad TRADECONSOLE_THEME (the key map was checked before the open)
            await engine.close()
            print(f"tradeconsole: {exc}", file=sys.stderr)
            return 2
        await app.run_async()
        try:
            await engine.close()  # done already unless the app never got to it
        except EngineCloseError as exc:
            return _close_failed(exc)
        if app.engine_close_error is not None:
            return _close_failed(app.engine_close_error)
        return app.return_code or 0

    return asyncio.run(go())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
