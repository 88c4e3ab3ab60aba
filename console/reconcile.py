"""The reconciliation review: after a restart found differences between the journal and the
venue, the operator answers each one (adopt, cancel, or mark closed) before entries resume.

The engine lists the differences and does what is chosen (Engine.resolve_difference, journaled);
this module only asks, one difference at a time, through the one reusable ConfirmModal.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .modals import ReconcileModal

if TYPE_CHECKING:
    from textual.app import App

ACTION_LABELS = {
    "adopt": "Adopt the venue's version as ours",
    "book": "Book what the venue filled (position, cash, its stop)",
    "cancel": "Cancel it at the venue",
    "mark_closed": "Mark it closed in the journal",
}
REASK_AFTER = 15.0  # seconds: an unanswered difference comes back, entries stay stopped until then


async def review_differences(app: "App", engine) -> None:
    while True:
        pending = [(i, d) for i, d in enumerate(engine.reconciliation) if not d.resolved]
        if not pending:
            return
        i, d = pending[0]
        body = (f"{d.text}\n\nThe engine found this on start and will not open new positions until every "
                f"difference is answered ({len(pending)} left). Each answer is journaled.")
        modal = ReconcileModal(f"Reconciliation: difference {i + 1} of {len(engine.reconciliation)}", body,
                               [(a, app.key_for(f"reconcile_{a}"), ACTION_LABELS[a]) for a in d.actions])
        answer = await app.push_screen_wait(modal)
        if answer is None:
            await asyncio.sleep(REASK_AFTER)
            continue
        problem = await engine.resolve_difference(i, answer)
        if problem:
            app.notify(problem, severity="error")
