"""Orders the journal holds as working after a restart, handed to a new venue broker to track
(engine/venue_wiring.py): registered with no request, then confirmed at the venue by client id,
round after round of the poller until the venue answers, so one failed lookup never leaves a
resting stop unheard. The venue's broker says how to register one (`track_restored`) and what its
answer means (`_restored_found`); this part keeps the list and the retrying."""
from __future__ import annotations

import logging
from typing import Any

from ..models import OrderStatus
from .retry import VenueError

log = logging.getLogger("tradeconsole.venue")


class RestoredOrdersMixin:
    """Part of a polled venue broker (PollingVenue: `_tracks`, `_working`, `clock`,
    `_lookup_track(track)`, the late watch); it implements `_restored_found(track, raw)`."""

    _restored: dict[str, float] | None = None  # made on first use, per broker

    @property
    def restored_pending(self) -> dict[str, float]:
        """Client ids of restored orders the venue has not answered for yet -> since (monotonic);
        the engine raises a critical alert for one that stays past the unconfirmed grace."""
        if self._restored is None:
            self._restored = {}
        return self._restored

    def _restored_pending_since_now(self, cid: str) -> None:
        self.restored_pending[cid] = self.clock.monotonic()

    async def confirm_restored(self) -> None:
        """Look each restored order not yet confirmed up by client id; a failure keeps it pending
        (the next round tries again)."""
        pending = self.restored_pending
        for cid in list(pending):
            t = self._tracks[cid]
            if t.terminal_sent or cid not in self._working:
                pending.pop(cid, None)
                continue
            try:
                found = await self._lookup_track(t)
                if found is None:
                    log.warning("venue %s: restored order %s: the venue has no such order", self.name, cid)
                    self._close_restored(t, f"{self.name} had no such order after the restart")
                    continue
                await self._restored_found(t, found)
            except VenueError as err:
                log.warning("venue %s: restored order %s not confirmed yet (%s)", self.name, cid, err.kind.value)

    def close_restored(self, cid: str) -> bool:
        """The operator marked a restored order closed (reconciliation): the broker stops polling it
        too, and watches for it a while, so one that shows up after all is re-opened and booked
        (`_reopen`). False if the broker does not hold it working."""
        t = self._tracks.get(cid)
        if t is None or t.terminal_sent or cid not in self._working:
            return False
        self._close_restored(t, "marked closed by the operator after the restart")
        return True

    def _close_restored(self, t: Any, why: str) -> None:
        """Ended on our word with no event: the engine's reconciliation lists the order and the
        operator's answer ends it there. Left working, it was looked up every round for good."""
        o = t.order
        o.status, o.reason = OrderStatus.CANCELLED, why
        t.terminal_sent = t.closed_locally = True
        t.unconfirmed_since = None
        self._working.discard(o.client_order_id)
        self.restored_pending.pop(o.client_order_id, None)
        self._watch_late(t)

    async def _restored_found(self, track: Any, raw: Any) -> None:
        raise NotImplementedError
