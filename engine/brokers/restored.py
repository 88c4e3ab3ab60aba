"""Orders the journal holds as working after a restart, handed to a new venue broker to track
(engine/venue_wiring.py): registered with no request, then confirmed at the venue by client id,
round after round of the poller until the venue answers, so one failed lookup never leaves a
resting stop unheard. The venue's broker says how to register one (`track_restored`) and what its
answer means (`_restored_found`); this part keeps the list and the retrying."""
from __future__ import annotations

import logging
from typing import Any

from .retry import VenueError

log = logging.getLogger("tradeconsole.venue")


class RestoredOrdersMixin:
    """Part of a polled venue broker: it sets `_tracks`, `_working`, `clock` and implements
    `_lookup_restored(track)` and `_restored_found(track, raw)`."""

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
                found = await self._lookup_restored(t)
                if found is None:
                    pending.pop(cid, None)  # reconciliation lists it (unknown to venue)
                    log.warning("venue %s: restored order %s: the venue has no such order", self.name, cid)
                    continue
                await self._restored_found(t, found)
            except VenueError as err:
                log.warning("venue %s: restored order %s not confirmed yet (%s)", self.name, cid, err.kind.value)

    async def _lookup_restored(self, track: Any) -> Any | None:
        raise NotImplementedError

    async def _restored_found(self, track: Any, raw: Any) -> None:
        raise NotImplementedError
