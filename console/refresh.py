"""How the console gets engine state onto the screen: snapshots fed to the panes on a timer, a
group of panes per frame, and Python's garbage collector kept off the key path.

A mixin of `TradeConsoleApp` (console/app.py), which holds the panes (`_panes`, `header`,
`positions`, `orders`, `approvals`, `log_tail`) and the engine.
"""
from __future__ import annotations

import gc
import logging
import time
from typing import Any

from textual import events

from engine.snapshot import EngineSnapshot

log = logging.getLogger("tradeconsole.console")

GC_IDLE = 2.0  # seconds without a key before a full collection may run
GC_EVERY = 30.0  # at most this often while the operator is idle
GC_AT_LATEST = 120.0  # and at least this often, typing or not
GC_NEVER = 1_000_000  # gen-2 threshold that keeps Python from starting full collections itself
# A staggered refresh waits for each paint through the screen on top; a screen dismissed before it
# painted (the palette) drops that wait, so a refresh older than this is abandoned for a new one.
STAGGER_GIVE_UP = 1.0


class SnapshotRefresh:
    def _init_refresh(self, start_gc_paused: bool = False) -> None:
        self.snapshot: EngineSnapshot | None = None
        self.snapshots_painted = 0
        self._snapshot_failing = False
        self._render_failing = False
        self._stagger = 0  # generation of the snapshot being painted group by group (_tick)
        self._staggering = False
        self._stagger_started = 0.0
        self._panes_stale = False  # panes skipped while an opaque screen covered them
        self._gc_tuned = False
        self._gc_frozen = False
        self._gc_threshold = gc.get_threshold()
        self._start_gc_paused = start_gc_paused
        self._last_key = float("-inf")
        self._last_full_gc = 0.0
        self.full_collections = 0

    def refresh_snapshot(self) -> EngineSnapshot | None:
        """Take one snapshot and hand it to every pane at once (and to a screen on top that shows
        one): what a command calls, so its result is on the screen together with its toast."""
        snap = self._read_snapshot()
        if snap is None:
            return None
        self._stagger += 1  # a staggered refresh still under way would now paint an older state
        self._staggering = False
        self._report_failures(self._show(snap, self._visible_panes()))
        self.snapshots_painted += 1
        return snap

    def _read_snapshot(self) -> EngineSnapshot | None:
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
        return snap

    def _visible_panes(self) -> list[Any]:
        """The panes to feed: the main screen's, unless an opaque screen (history, performance,
        order form) covers them all, and the screen on top if it shows a snapshot."""
        stack = self.screen_stack  # empty while the app shuts down; a last tick may still fire
        covered = any(screen.styles.background.a >= 1 for screen in stack[1:])
        # Painting under an opaque screen still repaints the top screen over each changed region;
        # the panes catch up the moment they are uncovered (_screen_changed).
        self._panes_stale = covered
        panes = [] if covered else list(self._panes)
        if len(stack) > 1 and hasattr(stack[-1], "show"):
            panes.append(stack[-1])
        return panes

    def _show(self, snap: EngineSnapshot, panes: list[Any]) -> list[str]:
        failed: list[str] = []
        with self.batch_update():
            for pane in panes:
                # A pane that cannot draw must not take the others (or the halt key) down with it.
                try:
                    pane.show(snap)
                except Exception:
                    log.exception("pane %s failed to render", type(pane).__name__)
                    failed.append(type(pane).__name__)
        return failed

    def _report_failures(self, failed: list[str]) -> None:
        if failed and not self._render_failing:
            self.show_error("A pane could not be drawn", f"{', '.join(failed)}: see the log for the traceback.")
        self._render_failing = bool(failed)

    def _screen_changed(self, screen: Any) -> None:
        if self._panes_stale and not self._exiting and len(self.screen_stack) == 1:
            # Uncovered: the whole screen is being repainted anyway; the fresh state follows at
            # once, a group per frame, rather than up to a tick later.
            self._staggered_refresh()

    def _tick(self) -> None:
        """One snapshot, painted a group of panes per frame.

        Every pane changes on every tick while the market moves, so one paint of all of them is a
        paint of the whole screen: 40-80 ms on a small machine, and a key pressed meanwhile waits
        for all of it. One group per frame (header, positions, orders and approvals, the right
        column, then the log) keeps each paint short enough for a key to slip in between. All
        groups show the same snapshot; a command's own refresh (refresh_snapshot) supersedes a
        staggered one still under way, so no pane ever goes back to an older state.
        """
        self._collect_garbage()
        if self._staggering and time.monotonic() - self._stagger_started < STAGGER_GIVE_UP:
            return  # the machine is behind: finish the current snapshot before taking another
        self._staggered_refresh()

    def _staggered_refresh(self) -> None:
        snap = self._read_snapshot()
        if snap is None:
            self.log_tail.poll()
            return
        panes = self._visible_panes()
        order = [self.header, self.positions, self.orders, self.approvals]
        groups = [[p for p in panes if p is self.header], [p for p in panes if p is self.positions],
                  [p for p in panes if p is self.orders or p is self.approvals],
                  [p for p in panes if not any(p is q for q in order)]]
        self._stagger += 1
        self._staggering = True
        self._stagger_started = time.monotonic()
        self._paint_group(self._stagger, snap, [g for g in groups if g], [])

    def _paint_group(self, generation: int, snap: EngineSnapshot, groups: list[list[Any]],
                     failed: list[str]) -> None:
        if generation != self._stagger or self._exiting:
            return
        if groups:
            failed += self._show(snap, groups[0])
            self.call_after_refresh(self._paint_group, generation, snap, groups[1:], failed)
            return
        self.log_tail.poll()
        self._staggering = False
        self._report_failures(failed)
        self.snapshots_painted += 1
        if self.exit_when_ready and self.snapshots_painted == 1:  # the first snapshot had failed
            self.call_after_refresh(self._exit_now)

    # ---------------------------------------------------------------- garbage

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key = time.monotonic()
        await super().on_event(event)

    def _end_start_gc(self) -> None:
        """The first frame is painted: automatic collection back on, if the start had it off.

        The console's start (console/cli.py) runs with automatic collection paused: it builds
        hundreds of thousands of objects (modules, classes, schemas, widgets) and next to none of
        them is garbage (a few thousand in a measured start), yet the collections it set off cost
        60-100 ms on a small machine, one full collection alone 20-30 ms. What the start built is
        frozen before collection resumes, so no later collection walks it either (unfrozen on exit,
        like the heap frozen once the engine is warm, below)."""
        if self._start_gc_paused:
            self._start_gc_paused = False
            gc.freeze()
            self._gc_frozen = True
            gc.enable()

    def _collect_garbage(self) -> None:
        """Full garbage collections when the operator is not typing.

        Rendering churns through objects that outlive a young collection (strips, segments and
        their caches), so Python's own schedule runs a full collection every second or two, and
        each walks every live object: 100-250 ms on a small machine, a freeze a key can land in.
        Once the engine is warm, what exists is frozen out of the collector's sight, automatic
        full collections are off, and one runs here instead: after GC_IDLE seconds without a key
        and at most every GC_EVERY seconds, or after GC_AT_LATEST seconds whatever the keys do.
        Young collections stay automatic (they take a millisecond or two).
        """
        now = time.monotonic()
        if not self._gc_tuned:
            if getattr(self.engine, "trading_started", None) is None:
                return
            gc.freeze()
            self._gc_frozen = True
            self._gc_threshold = gc.get_threshold()
            gc.set_threshold(*self._gc_threshold[:2], GC_NEVER)
            self._gc_tuned = True
            self._last_full_gc = now
            return
        since = now - self._last_full_gc
        idle = now - self._last_key >= GC_IDLE
        if (idle and since >= GC_EVERY) or since >= GC_AT_LATEST:
            gc.collect()
            self._last_full_gc = time.monotonic()
            self.full_collections += 1

    def _restore_gc(self) -> None:
        # The collector is the process's, not the screen's: give it back.
        if self._gc_tuned:
            gc.set_threshold(*self._gc_threshold)
            self._gc_tuned = False
        if self._gc_frozen:
            gc.unfreeze()
            self._gc_frozen = False
