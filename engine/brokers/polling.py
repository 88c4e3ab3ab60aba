"""What every polled venue broker shares: the event inbox and the polling loop with backoff."""
from __future__ import annotations

import asyncio
import logging

from .base import Broker, BrokerEvent
from .retry import VenueError

log = logging.getLogger("tradeconsole.venue")


class PollingVenue(Broker):
    """Subclasses set `self.venue` (a VenueSection), `self.connected`, `self._events` and
    implement `poll()`; the loop backs off while the venue errors and never dies of one error."""

    def drain_events(self) -> list[BrokerEvent]:
        events, self._events = self._events, []
        return events

    async def _poll_loop(self) -> None:
        delay = self.venue.timeouts.poll_seconds
        while self.connected:
            await asyncio.sleep(delay)
            try:
                await self.poll()
                delay = self.venue.timeouts.poll_seconds
            except VenueError as err:
                delay = min(self.venue.timeouts.backoff_max_seconds, delay * 2)
                log.warning("venue %s: poll failed (%s)", self.name, err.kind.value)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("venue %s: poll crashed", self.name)

    async def poll(self) -> None:
        raise NotImplementedError
