"""What each key does: one engine command per key, asked through a dialog when it is dangerous.

A mixin of `TradeConsoleApp`. Actions read the selection from the panes (the last snapshot), never
the engine's internals; the engine decides and answers with None or a refusal the operator reads.
"""
from __future__ import annotations

import asyncio
import logging
from decimal import Decimal, InvalidOperation

from engine.risk.checks_operator import PauseBook

from .widgets._format import price, qty

# The dialogs and screens (console/modals.py, screens.py, order_form.py) are imported by the action
# that opens them, not here: none is on the first screen, and importing them delayed it.
# TradeConsoleApp imports them in the background soon after the first paint (DIALOG_MODULES), so a
# key that opens one does not wait for the import either.

log = logging.getLogger("tradeconsole.console")

# How long to watch close-all's exit orders fill before telling the operator what is still open.
CLOSE_WAIT = 15.0
# A toast longer than this covers the side column at 80x24; the rest is in the alert pane.
TOAST_CHARS = 160


def parse_price(text: str) -> str | None:
    """Input check only (is it a price at all); whether the engine accepts it is the engine's call."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return f"{text!r} is not a number"
    return None if value.is_finite() and value > 0 else "a price must be above 0"


class ConsoleActions:
    # ------------------------------------------------------------------ toasts

    def notify(self, message: str, *, title: str = "", severity: str = "information", timeout: float | None = None,
               markup: bool = True) -> None:
        """App.notify, less the clutter that hid the screen at 80x24: a toast already on screen is
        not stacked again (20 presses of `a` made 19 copies), and a very long text (a re-arm reason
        is the operator's own) is cut; the journal and the alerts keep it whole."""
        if len(message) > TOAST_CHARS:
            message = message[:TOAST_CHARS - 1] + "…"
        if any(
                n.message == message and n.title == title and n.severity == severity
                for n in self._notifications):  # type: ignore[attr-defined]
            return
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)  # type: ignore[misc]

    # ------------------------------------------------------------- emergency keys

    def action_halt(self, binding_id: str = "") -> None:
        # Called directly, not in a worker: the latch must be set within this loop turn. The
        # journal's reason names what the operator pressed (F12, the second key, a remap, or the
        # command palette): it is the audit trail.
        how = f"key {self.key_for(binding_id)}" if binding_id else "command palette"
        try:
            task = self.engine.halt("console", f"operator halt ({how})")
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

    def action_close_all(self) -> None:
        from .modals import CloseAllModal

        working, positions = self.engine.exposure()
        if not (working or positions):
            self.notify("Nothing to close: no open position, working entry or approval.")
            return
        auto_send = self.snapshot is not None and not self.snapshot.approval_required
        self.push_screen(
            CloseAllModal(working, positions, auto_send=auto_send, pause_key=self.key_for("pause_all"),
                          choice_keys=(self.key_for("close_all_pause"), self.key_for("close_all_trade"))),
            lambda choice: choice is not None and self.command(self._flatten(choice == "pause"), "close all"),
        )

    async def _flatten(self, pause: bool) -> None:
        """Close-all, with entries paused first when asked: paused before the flatten, so no entry
        can slip in between; a pause (not close-all's stop_entries) because it persists, shows
        in the header and is lifted by the operator's own key."""
        working, _ = self.engine.exposure()
        symbols = {p.symbol for p in self.engine.snapshot().positions}
        resume = self.key_for("pause_all")
        after = "entries NOT paused: the strategy keeps trading and may open new positions"
        if pause:
            refusal = await self.engine.pause(None, reason="close-all")
            if refusal:
                self.notify(f"Entries not paused: {refusal}. Closing anyway; the strategy may re-enter.",
                            title="Not paused", severity="error", timeout=15)
            else:
                after = f"entries paused in every symbol ({resume} resumes)"
        await self.engine.close_all("console")
        self.refresh_snapshot()
        self.notify(f"Close-all: exit orders sent for {len(symbols)} position(s), {working} entry order(s) or"
                    f" approval(s) cancelled; {after}.", timeout=10)
        left = await self._await_exits(symbols)
        if left:
            self.notify(f"Close-all: {', '.join(sorted(left))} still open after {CLOSE_WAIT:.0f}s"
                        " (exit not filled yet).", severity="warning", timeout=15)
        elif symbols:
            reopened = sorted(p.symbol for p in self.engine.snapshot().positions)
            now = f"; open again since: {', '.join(reopened)}" if reopened else ""
            self.notify(f"Close-all: exits filled for all {len(symbols)} position(s){now}; {after}.",
                        severity="warning" if reopened else "information", timeout=10)

    async def _await_exits(self, symbols: set[str]) -> set[str]:
        """The symbols among `symbols` not seen flat within CLOSE_WAIT seconds. Each is checked off
        the first time it is flat: an entry the strategy makes later is a new position, not an
        exit that failed to fill."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_WAIT
        left = set(symbols)
        while left and loop.time() < deadline:
            left &= {p.symbol for p in self.engine.snapshot().positions}
            if left:
                await asyncio.sleep(0.1)
        self.refresh_snapshot()
        return left

    def action_rearm(self) -> None:
        from .modals import ConfirmModal

        refusal = self.engine.rearm_refusal()
        if refusal:
            self.notify(f"{refusal[0].upper()}{refusal[1:]}.", severity="warning")
            return
        snap = self.snapshot
        if snap is None:
            state = "Trading state unknown"
        else:
            state = f"Trading is {snap.trading_state}" + (f": {snap.halt_reason}" if snap.halt_reason else "")
        trips_seen = self.engine.trips  # a halt pressed while the dialog is open must stand

        async def rearm(reason: str) -> None:
            refusal = await self.engine.rearm(reason, trips_seen=trips_seen)
            self.report(refusal, f"Re-armed: {reason}", title="Not re-armed")

        self.push_screen(
            ConfirmModal("Re-arm trading", f"{state}.\nRe-arming lets new orders leave again. The reason is journaled.",
                         reason="required", placeholder="why it is safe to trade again", confirm_label="Re-arm",
                         danger=True),
            lambda reason: bool(reason) and self.command(rearm(reason), "re-arm"),
        )

    # ---------------------------------------------------------------- approvals

    def _moved_off(self, table, what: str, *, in_place: bool = False) -> bool:
        """Whether the key must not act on the row under the cursor now: the row the operator had
        chosen left from under it (expired, filled, answered elsewhere; the key was meant for it,
        not for the row that slid or arrived there), or, for a key that acts in place with no
        dialog naming the row (`in_place`: approve, cancel), that row has not yet been on screen
        long enough to have been read (the previous one was just answered: a double tap, a held key)."""
        if table.row_count == 0:
            return False  # nothing there to act on: said by the caller; a flag waits for the next row
        if table.take_moved_off():
            self.notify(f"The {what} you had selected is gone; the cursor is on the next one. Press again to act"
                        " on it.", severity="warning")
            return True
        if in_place and not table.ready():
            table.hold()
            self.notify(f"Nothing done: the {what} under the cursor has only just been shown. Check it, then press"
                        " again.", severity="warning")
            return True
        return False

    def _selected_approval(self, in_place: bool = False):
        if self._moved_off(self.approvals.table, "order", in_place=in_place):
            return None
        approval = self.approvals.selected()
        if approval is None:
            self.notify("No order is waiting for approval.", severity="warning")
        return approval

    def action_approve(self) -> None:
        approval = self._selected_approval(in_place=True)
        if approval is None:
            return
        label = f"{approval.side} {qty(approval.quantity)} {approval.symbol} @ {price(approval.price)}"
        self.approvals.table.acting_on(approval.client_order_id)  # the next row is then the operator's

        async def approve() -> None:
            if await self.engine.approve(approval.client_order_id):
                self.notify(f"Approved {label}")
            else:
                self.notify(f"Not approved: {label} is no longer waiting or the gate refused it now",
                            severity="warning")
            self.refresh_snapshot()

        self.command(approve(), "approve")

    def action_reject(self) -> None:
        from .modals import ConfirmModal

        approval = self._selected_approval()
        if approval is None:
            return
        label = f"{approval.side} {qty(approval.quantity)} {approval.symbol} @ {price(approval.price)}"

        async def reject(reason: str) -> None:
            self.approvals.table.acting_on(approval.client_order_id)
            if await self.engine.reject(approval.client_order_id, reason):
                self.notify(f"Rejected {label}: {reason}")
            else:
                self.notify(f"Not rejected: {label} is no longer waiting", severity="warning")
            self.refresh_snapshot()

        self.push_screen(
            ConfirmModal("Reject order", f"{label}\n{approval.client_order_id}", reason="optional",
                         placeholder="reason (empty = operator)", confirm_label="Reject", danger=True),
            lambda reason: reason is not None and self.command(reject(reason or "operator"), "reject"),
        )

    # ------------------------------------------------------------ per-row keys

    def action_close_position(self, symbol: str | None = None) -> None:
        from .modals import ConfirmModal

        pos = self.positions.get(symbol) if symbol else self.positions.selected()
        if pos is None:
            self.notify("No position selected.", severity="warning")
            return

        async def close() -> None:
            refusal = await self.engine.close_position(pos.symbol, "operator close (console)")
            self.report(refusal, f"Closing {pos.symbol}: exit sent at market")

        self.push_screen(
            ConfirmModal(f"Close {pos.symbol}",
                         f"{'Sell' if pos.side == 'long' else 'Buy'} {qty(pos.quantity)} {pos.symbol} at market"
                         f" (last {price(pos.last_price)}, uPnL {pos.unrealized_pnl:,.2f}); its stop is cancelled"
                         " as the exit goes.", confirm_label="Close position", danger=True),
            lambda answer: answer is not None and self.command(close(), "close position"),
        )

    def action_tighten_stop(self, symbol: str | None = None) -> None:
        from .modals import ConfirmModal

        pos = self.positions.get(symbol) if symbol else self.positions.selected()
        if pos is None:
            self.notify("No position selected.", severity="warning")
            return

        async def move(text: str) -> None:
            refusal = await self.engine.tighten_stop(pos.symbol, Decimal(text))
            self.report(refusal, f"{pos.symbol}: stop moved to {text}", title="Stop not moved")

        body = (f"{pos.side} {qty(pos.quantity)} {pos.symbol}   avg {price(pos.avg_price)}"
                f"   last {price(pos.last_price)}\n"
                f"stop now {price(pos.stop_price)}"
                + (f" ({pos.stop_distance_pct}% from last)" if pos.stop_distance_pct is not None else "")
                + "\nCloser to the price is always allowed; further only within the profile's widest stop.")
        # As the pane shows it, not the raw Decimal (51920.82560000).
        shown = "" if pos.stop_price is None else price(pos.stop_price).replace(",", "")

        def answered(text: str | None) -> None:
            if not text:
                return
            if text == shown:
                # The shown value is rounded: sent back unchanged it would nudge the stop.
                self.notify(f"{pos.symbol}: stop left at {price(pos.stop_price)}")
                return
            self.command(move(text), "move stop")

        self.push_screen(
            ConfirmModal(f"Move stop: {pos.symbol}", body, reason="required", placeholder="new stop price",
                         value=shown, validate=parse_price, confirm_label="Move stop"),
            answered,
        )

    def action_cancel_order(self, client_order_id: str | None = None) -> None:
        # No dialog names the order here (close and move-stop ask first), so a row that slid under
        # the cursor must not be cancelled in place of the one chosen.
        if client_order_id is None and self._moved_off(self.orders.table, "order", in_place=True):
            return
        cid = client_order_id or (o.client_order_id if (o := self.orders.selected()) else None)
        if cid is None:
            self.notify("No order selected.", severity="warning")
            return
        self.orders.table.acting_on(cid)

        async def cancel() -> None:
            self.report(await self.engine.cancel_order(cid), f"Cancelled {cid}", title="Not cancelled")

        self.command(cancel(), "cancel order")

    # ------------------------------------------------------------------- pauses

    def _focused_symbol(self) -> str | None:
        """The symbol of the row under the cursor in the focused table (positions first)."""
        for pane in (self.orders, self.approvals, self.positions):
            if pane.table.has_focus and (row := pane.selected()) is not None:
                return row.symbol
        row = self.positions.selected()
        return row.symbol if row is not None else None

    def _is_paused(self, key: str) -> bool:
        return self.snapshot is not None and any(p.key == key for p in self.snapshot.paused)

    def action_pause_symbol(self, symbol: str | None = None) -> None:
        symbol = symbol or self._focused_symbol()
        if symbol is None:
            self.notify("Select a row (position, order or approval) to pause its symbol; the palette"
                        " lists every symbol.", severity="warning")
            return
        self._toggle_pause(symbol)

    def action_pause_all(self) -> None:
        self._toggle_pause(None)

    def action_pause_strategy(self, name: str) -> None:
        """Pause or resume the entries one strategy asks for (the palette offers it by name)."""
        self._toggle_pause(None, strategy=name)

    def _toggle_pause(self, symbol: str | None, strategy: str | None = None) -> None:
        label = f"strategy {strategy}" if strategy else (symbol or "all symbols")
        resume = self._is_paused(PauseBook.key(symbol, strategy))

        async def toggle() -> None:
            if resume:
                self.report(await self.engine.resume(symbol, strategy=strategy), f"Entries resumed: {label}")
            else:
                self.report(await self.engine.pause(symbol, strategy=strategy, reason="console"),
                            f"Entries paused: {label} (exits and stops keep working)")

        self.command(toggle(), "resume" if resume else "pause")
