"""Keys that open something to read or write beside trading: notes, the alert feed's filter and
acknowledgement, the kept screens (order form, history, alerts in full, performance, help) and the
log tail's controls. A mixin of `TradeConsoleApp`, beside console/actions.py (the trading keys).
"""
from __future__ import annotations

from .bindings import effective_keys


class ViewActions:
    # ------------------------------------------------------------ notes, alerts

    def action_note(self, kind: str = "day", ref: str | None = None) -> None:
        from .modals import NoteModal

        async def save(kind: str, ref: str, text: str) -> None:
            self.report(await self.engine.add_note(text, ref or None, kind), f"Note saved ({kind})", title="No note")

        if ref is None:
            ref = self._focused_symbol() or ""
            if ref and kind == "day":
                kind = "trade"  # a note that names a symbol is about that trade, not the day
        dialog = self._kept("note", lambda: NoteModal(kind, ref))
        if dialog.is_mounted:
            dialog.prepare(kind, ref)
        self.push_screen(dialog, lambda answer: answer is not None and self.command(save(*answer), "note"))

    def action_ack_alert(self) -> None:
        waiting = self.alerts.needs_ack()
        if not waiting:
            self.notify("No critical alert is waiting to be acknowledged.")
            return
        alert = waiting[0]

        async def ack() -> None:
            self.report(await self.engine.acknowledge_alert(alert.seq), f"Acknowledged: {alert.kind} #{alert.seq}")

        self.command(ack(), "acknowledge alert")

    def action_alert_filter(self) -> None:
        level = self.alerts.cycle_filter()
        self.notify(f"Alerts: {level} and above", timeout=2)

    # ------------------------------------------------------------ screens, log

    def _kept(self, name: str, build):
        """A screen built on first use and kept: opening it again only shows it."""
        if not self.is_screen_installed(name):
            self.install_screen(build(), name)
        return self.get_screen(name)

    def action_new_order(self, symbol: str | None = None) -> None:
        from .order_form import OrderEntryScreen

        form = self._kept("order", lambda: OrderEntryScreen(self.engine, symbol or self._focused_symbol()))
        if form.is_mounted:
            form.prepare(symbol or self._focused_symbol())
        self.push_screen(form)

    def action_history(self) -> None:
        from .screens import HistoryScreen

        self.push_screen(self._kept("history", lambda: HistoryScreen(self.engine)))

    def action_alerts(self) -> None:
        from .screens import AlertsScreen

        screen = self._kept("alerts", AlertsScreen)
        self.push_screen(screen)
        if self.snapshot is not None:
            screen.show(self.snapshot)

    def action_performance(self) -> None:
        from .screens import PerformanceScreen

        screen = self._kept("performance", PerformanceScreen)
        self.push_screen(screen)
        if self.snapshot is not None:
            screen.show(self.snapshot)

    def action_help(self) -> None:
        from .modals import HelpModal

        self.push_screen(self._kept("help", lambda: HelpModal(effective_keys(self.keymap))))

    def action_log_pause(self) -> None:
        paused = self.log_tail.toggle_pause()
        self.notify("Log paused" if paused else "Log following", timeout=2)

    def action_log_level(self) -> None:
        self.notify(f"Log: {self.log_tail.cycle_level()} and above", timeout=2)

    def action_log_search(self) -> None:
        from .modals import ConfirmModal

        self.push_screen(
            ConfirmModal("Search the log", "Show only lines containing this text (empty shows everything).",
                         reason="optional", value=self.log_tail.search, placeholder="text", confirm_label="Filter"),
            lambda text: text is not None and self.log_tail.set_search(text),
        )
