"""The operator console: renders engine snapshots on a timer and turns keys into engine commands.

It holds no trading rule. Every pane gets the same `EngineSnapshot` once per tick (panes never call
the engine), and every key calls exactly one `Engine` method (console/actions.py). Failures of the
engine loop or of a command surface as an error modal through one handler, never as a traceback
that kills the screen while positions are open.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.worker import Worker, WorkerState

from engine.control.signals import SignalPolicy, policy_for

from .actions import ConsoleActions
from .quit_actions import QUIT_HALT_WAIT, QuitActions
from .view_actions import ViewActions
from .bindings import BINDINGS, display_key, effective_keys, validate_keymap
from .palette import OperatorCommandsProvider
from .refresh import SnapshotRefresh
from .widgets import (
    AlertPane, ApprovalPane, BreakerPane, CapitalPane, KeyBar, LogTail, OrdersPane, PnlPane, PositionsPane,
    StatusHeader,
)
from .widgets.readiness import ReadinessLine

if TYPE_CHECKING:
    from engine.engine import Engine

log = logging.getLogger("tradeconsole.console")

ENGINE_STOP_WAIT = 5.0
# Environment switches, for terminals where the mouse or colours get in the way (a CLI flag can set
# the same through the constructor).
NO_MOUSE_ENV = "TRADECONSOLE_NO_MOUSE"
THEME_ENV = "TRADECONSOLE_THEME"
THEME_ALIASES = {"ansi": "ansi-dark", "ansi-dark": "ansi-dark", "ansi-light": "ansi-light", "default": "textual-dark"}
# Below these sizes the layout drops what matters least (see theme.tcss: .-short, .-narrow).
SHORT_ROWS = 32
NARROW_COLUMNS = 100
# The dialogs and full screens are not on the first screen, so they are not imported before it
# (console/actions.py imports each where it opens); this long after the first paint a thread
# imports them (`_import_dialogs`), so the first key that opens one does not wait for its import.
DIALOG_MODULES = ("console.modals", "console.screens", "console.order_form")
DIALOG_IMPORT_DELAY = 1.0


def resolve_theme(name: str | None) -> str | None:
    if not name:
        return None
    return THEME_ALIASES.get(name.strip().lower(), name.strip())


def known_theme(name: str) -> str | None:
    """Why `name` is not a theme the console has (None when it is), without starting an app."""
    from textual.theme import BUILTIN_THEMES

    wanted = resolve_theme(name)
    if wanted in BUILTIN_THEMES:
        return None
    return f"unknown theme {name!r}; try ansi, ansi-light or one of: {', '.join(sorted(BUILTIN_THEMES))}"


class TradeConsoleApp(SnapshotRefresh, ConsoleActions, QuitActions, ViewActions, App[None]):
    # Absolute: Textual resolves a relative path against the module of the class, which for a
    # subclass elsewhere (a benchmark, a test) is the wrong directory.
    CSS_PATH = Path(__file__).with_name("theme.tcss")
    BINDINGS = BINDINGS
    TITLE = "tradeconsole"
    # The palette lists the operator's commands only (each runs the same method its key runs), not
    # Textual's system commands: a second, unvetted way to change the screen is not wanted here.
    COMMANDS = {OperatorCommandsProvider}

    def __init__(self, engine: "Engine", *, refresh_hz: float = 4.0, exit_when_ready: bool = False,
                 mouse: bool | None = None, theme: str | None = None, start_engine: bool = True,
                 duration: float | None = None, start_gc_paused: bool = False) -> None:
        if refresh_hz <= 0:
            raise ValueError(f"refresh_hz must be > 0 (got {refresh_hz})")
        # Validate before anything runs: a bad remap is a configuration error, not a runtime one.
        keymap = validate_keymap(engine.profile.keys)
        super().__init__()
        self.engine = engine
        self.refresh_hz = refresh_hz
        self.exit_when_ready = exit_when_ready
        self.start_engine = start_engine
        self.duration = duration  # simulated seconds the engine trades for (None: until quit)
        self.mouse_enabled = (os.environ.get(NO_MOUSE_ENV, "") not in ("1", "true", "yes")) if mouse is None else mouse
        wanted = resolve_theme(theme if theme is not None else os.environ.get(THEME_ENV))
        if wanted is not None:
            if self.get_theme(wanted) is None:
                raise ValueError(f"unknown theme {wanted!r}; try ansi, ansi-light or one of: "
                                 f"{', '.join(sorted(self.available_themes))}")
            self.theme = wanted
        self.keymap = keymap
        self.set_keymap(keymap)
        # start_gc_paused: the caller turned automatic garbage collection off for the start, and
        # it comes back on after the first frame (console/refresh.py, _end_start_gc).
        self._init_refresh(start_gc_paused)
        self.engine_close_error: BaseException | None = None
        self._engine_worker: Worker | None = None
        self._exiting = False
        self._background: set[asyncio.Task] = set()
        self._signals: SignalPolicy | None = None

    async def run_async(self, *, mouse: bool = True, **kwargs: Any) -> None:
        # The one place Textual takes the mouse switch; the constructor's choice wins.
        return await super().run_async(mouse=mouse and self.mouse_enabled, **kwargs)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        # Panes are kept as attributes: the refresh timer and the actions reach them directly,
        # whichever screen (a modal, say) is on top.
        self.header = StatusHeader(id="header")
        self.positions = PositionsPane(id="positions", classes="pane")
        self.orders = OrdersPane(id="orders", classes="pane")
        self.approvals = ApprovalPane(id="approvals", classes="pane")
        self.pnl = PnlPane(id="pnl", classes="pane")
        self.capital = CapitalPane(id="capital", classes="pane")
        self.breakers = BreakerPane(id="breakers", classes="pane")
        self.alerts = AlertPane(id="alerts", classes="pane")
        self.log_tail = LogTail(Path(self.engine.log_path), id="log", classes="pane")
        # The go/no-go verdict (engine/analytics/readiness.py), measured off the loop by the line itself.
        self.readiness_line = ReadinessLine(self.engine, id="readiness")
        self._panes = [self.header, self.positions, self.orders, self.approvals, self.pnl, self.capital,
                       self.breakers, self.alerts, self.readiness_line]
        self.header.rearm_key = self.key_for("rearm")
        self.header.quit_key = self.key_for("quit")
        self.readiness_line.key = self.key_for("performance")
        yield self.header
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield self.positions
                yield self.orders
                yield self.approvals
            with Vertical(id="right"):
                yield self.pnl
                yield self.readiness_line
                yield self.capital
                yield self.breakers
                yield self.alerts
        yield self.log_tail
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        # SIGHUP (SSH dropped), SIGTERM and SIGINT follow the profile's control section, as
        # headless does: the halt is latched and committed, then the app leaves as q does.
        self._signals = policy_for(self.engine, self._signal_exit)
        self._signals.install(asyncio.get_running_loop())
        self.set_interval(1 / self.refresh_hz, self._tick, name="snapshot")
        self.screen_change_signal.subscribe(self, self._screen_changed)
        self.approvals.table.focus()
        self._fit(self.size.width, self.size.height)
        # The panes get the engine's state before the screen is first painted, rather than a whole
        # interval later: the first frame is the full screen, all at once whatever it costs, and
        # not empty panes that a second full frame then fills. Only after it does the engine
        # start (its warm-up would otherwise delay that frame).
        self._collect_garbage()
        self.refresh_snapshot()
        self.log_tail.poll()
        self.call_after_refresh(self._first_paint)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        if self.screen_stack:
            main = self.screen_stack[0]
            main.set_class(height < SHORT_ROWS, "-short")
            main.set_class(width < NARROW_COLUMNS, "-narrow")

    def _first_paint(self) -> None:
        """The first frame, with the engine's state in it, is on the screen."""
        self._end_start_gc()
        # Stage P&L needs the journal's earlier sessions; read once, off the key path.
        # Workers get the functions, not coroutines: one cancelled before it starts (quitting at
        # once) then leaves no coroutine that was never awaited.
        if hasattr(self.engine, "load_stage_history"):
            self.run_worker(self.engine.load_stage_history, name="stage history", group="load",
                            exit_on_error=False)
        if getattr(self.engine, "reconciliation", None):
            # A restart found the journal and the venue disagree: the operator answers each.
            from .reconcile import review_differences

            self.run_worker(functools.partial(review_differences, self, self.engine), name="reconcile",
                            group="reconcile", exit_on_error=False)
        if self.start_engine:
            self._engine_worker = self.run_worker(
                functools.partial(self.engine.run, self.duration), name="engine", group="engine", exclusive=True,
                exit_on_error=False
            )
        self.set_timer(DIALOG_IMPORT_DELAY, self._import_dialogs)
        if self.snapshot is not None and self.exit_when_ready:
            self._exit_now()

    def _import_dialogs(self) -> threading.Thread | None:
        """Import the dialogs in a thread of its own. On the loop, even one module per turn held
        a key pressed meanwhile for up to ~100 ms (bench/ui_latency.py's tail); a thread gets the
        interpreter in slices of a few milliseconds, so keys barely wait. Not a daemon: an exit
        during the imports waits for them rather than tear the interpreter down under one."""
        if self._exiting:
            return None

        def load() -> None:
            for name in DIALOG_MODULES:
                try:
                    importlib.import_module(name)
                except Exception:  # the action that opens it imports it again and reports
                    log.exception("background import of %s failed", name)

        thread = threading.Thread(target=load, name="dialog-import")
        thread.start()
        return thread

    def key_for(self, binding_id: str) -> str:
        for row in effective_keys(self.keymap):
            if row.id == binding_id:
                return display_key(row.keys[0])
        raise KeyError(binding_id)

    # ----------------------------------------------------------------- errors

    def show_error(self, title: str, error: BaseException | str | None) -> None:
        from .modals import ErrorModal, describe_error

        message = error if isinstance(error, str) else describe_error(error)
        self.push_screen(ErrorModal(title, message))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            log.error("worker %s failed", worker.name, exc_info=worker.error)
            if worker.group == "engine":
                self.show_error("Engine stopped with an error", worker.error)
            else:
                self.show_error(f"{worker.name} failed", worker.error)
            self.refresh_snapshot()
        elif event.state == WorkerState.SUCCESS and worker.group == "engine" and not self._exiting:
            # The console stays up for a look; the engine closes what nobody can answer now and
            # refuses anything new, and the header says STOPPED (the engine's snapshot).
            why = getattr(self.engine, "run_end", "") or "it stopped"
            self.notify(f"The engine stopped running ({why}). {self.key_for('quit')} quits.", severity="warning",
                        timeout=10)
            finish = getattr(self.engine, "finish_run", None)
            if finish is not None:
                self.command(self._finish_run(finish, why), "finish run")

    async def _finish_run(self, finish: Callable[[str], Awaitable[int]], why: str) -> None:
        await finish(why)
        self.refresh_snapshot()

    def command(self, work: Awaitable[Any], name: str) -> Worker:
        """Run one engine command off the key handler, so a slow venue never freezes the keys."""
        return self.run_worker(work, name=name, group="command", exit_on_error=False)

    def report(self, refusal: str | None, done: str, title: str = "Refused") -> None:
        """What an engine command answered: its refusal (None = done) becomes the operator's toast."""
        self.refresh_snapshot()
        if refusal:
            self.notify(refusal, title=title, severity="error", timeout=10)
        else:
            self.notify(done)

    # ------------------------------------------------------------------- exit

    def _signal_exit(self) -> None:
        """A signal asked us to stop (the halt is latched unless on_sigterm is shutdown): let the
        halt commit and cancel, bounded, then leave as q does."""
        async def leave() -> None:
            if self._signals is not None:
                await self._signals.settle(QUIT_HALT_WAIT)
            # Close the engine before touching the terminal: after SIGHUP the terminal is gone,
            # and Textual's shutdown can block forever writing to it (its output queue is never
            # drained), which left the process alive, its profile lock held and its journal
            # without the closing checkpoint. Then leave; if that still hangs, end the process.
            await self._close_engine()
            if not self.is_headless:
                _exit_if_stuck(EXIT_WATCHDOG_SECONDS, self.return_code or 0)
            self._exit_now()

        task = asyncio.get_running_loop().create_task(leave())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _exit_now(self) -> None:
        self._exiting = True
        self.engine.stop()
        self.exit()

    async def on_unmount(self) -> None:
        await self._close_engine()
        if self._signals is not None:
            self._signals.uninstall()

    async def _close_engine(self) -> None:
        """Stop the engine's run, wait for it (bounded), close it. Safe to call twice."""
        self._exiting = True
        if self._signals is not None:
            self._signals.stopping = True  # from here a signal only logs: close() is under way
            await self._signals.settle(QUIT_HALT_WAIT)
        self._restore_gc()
        self.engine.stop()
        worker = self._engine_worker
        if worker is not None and not worker.is_finished:
            # Let run() return on its own after stop() before closing what it is using.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.wait(), ENGINE_STOP_WAIT)
        try:
            await self.engine.close()
        except Exception as exc:  # the screen is gone; keep it for the CLI to report
            log.exception("engine.close() failed")
            self.engine_close_error = exc


EXIT_WATCHDOG_SECONDS = 5.0


def _flush_log_files(wait: float = 0.5) -> None:
    """Write out what the log handlers hold, from a thread other than the stuck one: a handler
    whose lock is not free within `wait` is left (its owner may be what is stuck)."""
    for handler in logging.getLogger("tradeconsole").handlers:
        lock = handler.lock
        if lock is not None and lock.acquire(timeout=wait):
            # A disk or terminal that is gone leaves nothing to tell: the exit goes on.
            try:
                with contextlib.suppress(Exception):
                    handler.flush()
            finally:
                lock.release()


def _exit_if_stuck(seconds: float, code: int) -> None:
    """End the process if it is still here `seconds` from now. Only after the engine is closed
    (journal committed, logs written), so nothing is lost; a daemon thread, so a normal exit
    never waits for it."""
    import threading

    def watch() -> None:
        threading.Event().wait(seconds)
        _flush_log_files()  # the log file is flushed once per loop turn (engine/logsetup.py)
        os._exit(code)

    threading.Thread(target=watch, name="exit-watchdog", daemon=True).start()
