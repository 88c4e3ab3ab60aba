"""The operator console: renders engine snapshots on a timer and turns keys into engine commands.

It holds no trading rule. Every pane gets the same `EngineSnapshot` once per tick (panes never call
the engine), and every key calls exactly one `Engine` method. Failures of the engine loop or of a
command surface as an error modal through one handler, never as a traceback that kills the screen
while positions are open.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from engine.snapshot import EngineSnapshot

from .bindings import BINDINGS, display_key, effective_keys, validate_keymap
from .modals import ConfirmModal, ErrorModal, HelpModal, QuitModal, describe_error
from .widgets import AlertPane, ApprovalPane, BreakerPane, LogTail, PnlPane, PositionsPane, StatusHeader
from .widgets._format import price, qty

if TYPE_CHECKING:
    from engine.engine import Engine

log = logging.getLogger("tradeconsole.console")

HALT_REASON = "operator halt (F12)"
# How long quitting waits for a halt's cancels to be journaled before leaving anyway; the halt
# latch itself is already set, and close() flushes what was written.
QUIT_HALT_WAIT = 10.0
# How long to watch close-all's exit orders fill before telling the operator what is still open.
CLOSE_WAIT = 15.0
ENGINE_STOP_WAIT = 5.0


class TradeConsoleApp(App[None]):
    CSS_PATH = "theme.tcss"
    BINDINGS = BINDINGS
    TITLE = "tradeconsole"
    # The command palette would offer a second, unvalidated way to run actions; keys are the interface.
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, engine: "Engine", *, refresh_hz: float = 4.0, exit_when_ready: bool = False) -> None:
        if refresh_hz <= 0:
            raise ValueError(f"refresh_hz must be > 0 (got {refresh_hz})")
        # Validate before anything runs: a bad remap is a configuration error, not a runtime one.
        keymap = validate_keymap(engine.profile.keys)
        super().__init__()
        self.engine = engine
        self.refresh_hz = refresh_hz
        self.exit_when_ready = exit_when_ready
        self.keymap = keymap
        self.set_keymap(keymap)
        self.snapshot: EngineSnapshot | None = None
        self.snapshots_painted = 0
        self.engine_close_error: BaseException | None = None
        self._engine_worker: Worker | None = None
        self._snapshot_failing = False
        self._render_failing = False
        self._exiting = False
        self._background: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        # Panes are kept as attributes: the refresh timer and the actions reach them directly,
        # whichever screen (a modal, say) is on top.
        self.header = StatusHeader(id="header")
        self.positions = PositionsPane(id="positions", classes="pane")
        self.approvals = ApprovalPane(id="approvals", classes="pane")
        self.pnl = PnlPane(id="pnl", classes="pane")
        self.breakers = BreakerPane(id="breakers", classes="pane")
        self.alerts = AlertPane(id="alerts", classes="pane")
        self.log_tail = LogTail(Path(self.engine.log_path), id="log", classes="pane")
        self._panes = [self.header, self.positions, self.approvals, self.pnl, self.breakers, self.alerts]
        self.header.rearm_key = self.key_for("rearm")
        yield self.header
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield self.positions
                yield self.approvals
            with Vertical(id="right"):
                yield self.pnl
                yield self.breakers
                yield self.alerts
        yield self.log_tail
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(1 / self.refresh_hz, self._tick, name="snapshot")
        # Paint as soon as the screen exists rather than a whole interval later, and only then
        # start the engine (its warm-up would otherwise delay the first screen).
        self.call_after_refresh(self._first_paint)
        self.approvals.table.focus()

    def _first_paint(self) -> None:
        self._tick()
        self._engine_worker = self.run_worker(
            self.engine.run(), name="engine", group="engine", exclusive=True, exit_on_error=False
        )

    def key_for(self, binding_id: str) -> str:
        for row in effective_keys(self.keymap):
            if row.id == binding_id:
                return display_key(row.keys[0])
        raise KeyError(binding_id)

    # ---------------------------------------------------------------- refresh

    def refresh_snapshot(self) -> EngineSnapshot | None:
        """Take one snapshot and hand it to every pane."""
        try:
            snap = self.engine.snapshot()
        except Exception as exc:
            log.exception("engine.snapshot() failed")
            # One modal per failure streak, not one per tick.
            if not self._snapshot_failing:
                self._snapshot_failing = True
                self.show_error("Cannot read engine state", exc)
            return None
        self._snapshot_failing = False
        self.snapshot = snap
        failed: list[str] = []
        with self.batch_update():
            for pane in self._panes:
                # A pane that cannot draw must not take the others (or the halt key) down with it.
                try:
                    pane.show(snap)
                except Exception:
                    log.exception("pane %s failed to render", type(pane).__name__)
                    failed.append(type(pane).__name__)
        if failed and not self._render_failing:
            self.show_error("A pane could not be drawn", f"{', '.join(failed)}: see the log for the traceback.")
        self._render_failing = bool(failed)
        self.snapshots_painted += 1
        return snap

    def _tick(self) -> None:
        snap = self.refresh_snapshot()
        self.log_tail.poll()
        if snap is not None and self.exit_when_ready and self.snapshots_painted == 1:
            self.call_after_refresh(self._exit_now)

    # ----------------------------------------------------------------- errors

    def show_error(self, title: str, error: BaseException | str | None) -> None:
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
            self.notify("The engine stopped running (feed ended or engine stopped).", severity="warning", timeout=10)

    def command(self, work: Awaitable[Any], name: str) -> Worker:
        """Run one engine command off the key handler, so a slow venue never freezes the keys."""
        return self.run_worker(work, name=name, group="command", exit_on_error=False)

    # ---------------------------------------------------------------- actions

    def action_halt(self) -> None:
        # Called directly, not in a worker: the latch must be set within this loop turn.
        try:
            task = self.engine.halt("console", HALT_REASON)
        except Exception as exc:
            log.exception("halt failed")
            self.show_error("HALT FAILED", exc)
            return
        if isinstance(task, asyncio.Future):
            self._background.add(task)
            task.add_done_callback(self._halt_done)
        self.refresh_snapshot()
        self.notify("HALT: no new orders; working entries are being cancelled", severity="error")

    def _halt_done(self, task: asyncio.Future) -> None:
        self._background.discard(task)
        if task.cancelled() or self._exiting:
            return
        error = task.exception()
        if error is not None:
            log.error("halt did not complete", exc_info=error)
            self.show_error("Halt is latched but cancelling orders failed", error)
        self.refresh_snapshot()

    def _selected_approval(self):
        approval = self.approvals.selected()
        if approval is None:
            self.notify("No order is waiting for approval.", severity="warning")
        return approval

    def action_approve(self) -> None:
        approval = self._selected_approval()
        if approval is None:
            return
        label = f"{approval.side} {qty(approval.quantity)} {approval.symbol} @ {price(approval.price)}"

        async def approve() -> None:
            if await self.engine.approve(approval.client_order_id):
                self.notify(f"Approved {label}")
            else:
                self.notify(f"Not approved: {label} is no longer waiting", severity="warning")
            self.refresh_snapshot()

        self.command(approve(), "approve")

    def action_reject(self) -> None:
        approval = self._selected_approval()
        if approval is None:
            return
        label = f"{approval.side} {qty(approval.quantity)} {approval.symbol} @ {price(approval.price)}"

        async def reject(reason: str) -> None:
            if await self.engine.reject(approval.client_order_id, reason):
                self.notify(f"Rejected {label}: {reason}")
            else:
                self.notify(f"Not rejected: {label} is no longer waiting", severity="warning")
            self.refresh_snapshot()

        def answered(reason: str | None) -> None:
            if reason is not None:
                self.command(reject(reason or "operator"), "reject")

        self.push_screen(
            ConfirmModal(
                "Reject order",
                f"{label}\n{approval.client_order_id}",
                reason="optional",
                placeholder="reason (empty = operator)",
                confirm_label="Reject",
                danger=True,
            ),
            answered,
        )

    def action_close_all(self) -> None:
        working, positions = self.engine.exposure()

        async def close_all() -> None:
            await self.engine.close_all("console")
            self.refresh_snapshot()
            left = await self._await_flat()
            if left:
                self.notify(f"Close-all sent; {left} position(s) still open after {CLOSE_WAIT:.0f}s.",
                            severity="warning", timeout=15)
            else:
                self.notify("All positions closed.")

        def answered(result: str | None) -> None:
            if result is not None:
                self.command(close_all(), "close all")

        self.push_screen(
            ConfirmModal(
                "Close all positions",
                f"Flatten {positions} open position(s) at market and cancel their stops;"
                f" {working} working or pending entry order(s) are cancelled.",
                confirm_label="Close all",
                danger=True,
            ),
            answered,
        )

    def action_rearm(self) -> None:
        snap = self.snapshot
        if snap is None:
            state = "Trading state unknown"
        else:
            state = f"Trading is {snap.trading_state}" + (f": {snap.halt_reason}" if snap.halt_reason else "")

        async def rearm(reason: str) -> None:
            refusal = await self.engine.rearm(reason)
            self.refresh_snapshot()
            if refusal:
                self.notify(refusal, title="Not re-armed", severity="error", timeout=10)
            else:
                self.notify(f"Re-armed: {reason}")

        def answered(reason: str | None) -> None:
            if reason:
                self.command(rearm(reason), "re-arm")

        self.push_screen(
            ConfirmModal(
                "Re-arm trading",
                f"{state}.\nRe-arming lets new orders leave again. The reason is journaled.",
                reason="required",
                placeholder="why it is safe to trade again",
                confirm_label="Re-arm",
            ),
            answered,
        )

    def action_help(self) -> None:
        self.push_screen(HelpModal(effective_keys(self.keymap)))

    async def action_quit(self) -> None:
        # Overrides App.action_quit so ctrl+q also asks before leaving exposure behind.
        if self._exiting or isinstance(self.screen, QuitModal):
            return
        working, positions = self.engine.exposure()
        if not (working or positions):
            self._exit_now()
            return

        def answered(choice: str | None) -> None:
            if choice == "halt":
                self.command(self._halt_and_quit(), "halt and quit")
            elif choice == "close":
                self.command(self._close_all_and_quit(), "close all and quit")

        self.push_screen(QuitModal(working, positions), answered)

    async def _halt_and_quit(self) -> None:
        task = self.engine.halt("console", "operator quit: halt and quit")
        self.refresh_snapshot()
        try:
            await asyncio.wait_for(asyncio.shield(task), QUIT_HALT_WAIT)
        except asyncio.TimeoutError:
            log.warning("halt still cancelling orders after %ss; quitting anyway", QUIT_HALT_WAIT)
        self._exit_now()

    async def _await_flat(self) -> int:
        """Positions still open once the exit orders had CLOSE_WAIT seconds to fill (0 = flat).

        close_all() returns when the exits are sent; the fills come with the next quotes, which the
        engine's run loop keeps processing meanwhile.
        """
        deadline = asyncio.get_running_loop().time() + CLOSE_WAIT
        while True:
            _, positions = self.engine.exposure()
            if not positions or asyncio.get_running_loop().time() >= deadline:
                self.refresh_snapshot()
                return positions
            await asyncio.sleep(0.1)

    async def _close_all_and_quit(self) -> None:
        await self.engine.close_all("console")
        self.refresh_snapshot()
        positions = await self._await_flat()
        if positions:
            # Never leave silently with positions the operator asked to flatten.
            self.show_error("Not quitting", f"{positions} position(s) are still open after close-all.")
            return
        self._exit_now()

    # ------------------------------------------------------------------- exit

    def _exit_now(self) -> None:
        self._exiting = True
        self.engine.stop()
        self.exit()

    async def on_unmount(self) -> None:
        self._exiting = True
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
