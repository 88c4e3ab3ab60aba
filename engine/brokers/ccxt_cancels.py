"""Cancelling at a ccxt venue: one order by client id, and a halt's sweep of entry orders that never
touches a stop (no venue cancel-all)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..models import OrderPurpose, OrderStatus
from .ccxt_orders import TrackedOrder
from .ccxt_payloads import STATUS, binance_unified
from .retry import Failure, VenueError

log = logging.getLogger("tradeconsole.venue")


class CcxtCancelMixin:
    """Part of CcxtBroker (engine/brokers/ccxt_broker.py), whose __init__ sets the state used here."""

    async def cancel(self, client_order_id: str) -> bool:
        """True once the venue has ended the order (or never had it). False while it is open or its
        state unknown: a submit still pending or unconfirmed (the cancel is carried out when the
        venue's answer is known: PollingVenue._cancel_later), or a cancel acknowledged whose
        outcome could not be read (the poller resolves it, fills first)."""
        track = self._tracks.get(client_order_id)
        if track is None:
            return await self._cancel_foreign(client_order_id)
        o = track.order
        if track.terminal_sent and not track.closed_locally:
            return True
        params: dict[str, Any] = ({"origClientOrderId": client_order_id} if self.name == "binance"
                                  else {"orderLinkId": client_order_id})
        if self.name == "bybit" and track.is_stop:
            params["trigger"] = True
        try:
            if self.name == "binance":
                # The raw endpoint: its answer carries status and executed quantity, and skipping
                # ccxt's order parser halves the CPU of a 200-order halt.
                raw = binance_unified(await self._retry(
                    f"cancel {client_order_id}", self.ex.privateDeleteOrder,
                    {"symbol": self.ex.market(o.symbol)["id"], "origClientOrderId": client_order_id}))
            else:
                raw = await self._retry(f"cancel {client_order_id}", self.ex.cancel_order, None, o.symbol, params)
        except VenueError as err:
            if err.kind in (Failure.NOT_FOUND, Failure.FINAL):
                return await self._cancel_refused(track)
            log.warning("venue %s: cancel %s failed: %s", self.name, client_order_id, err)
            return False
        if not STATUS.get(str(raw.get("status") or "").lower(), OrderStatus.SUBMITTED).is_terminal:
            try:
                raw = await self._lookup(client_order_id, o.symbol) or {"status": "canceled"}
            except VenueError as err:
                # Acknowledged, but what filled before it is unknown: no end on made-up numbers.
                # It stays working; the poller's lookup books its fills, then its end.
                log.warning("venue %s: cancel of %s sent, outcome unknown (%s); the poller resolves it",
                            self.name, client_order_id, err.kind.value)
                return False
        await self._apply(track, raw)
        return track.terminal_sent

    async def _cancel_refused(self, track: TrackedOrder) -> bool:
        """The venue does not know the order by that id (gone already, or not there yet): ask it
        what it knows."""
        o = track.order
        try:
            found = await self._lookup(o.client_order_id, o.symbol)
        except VenueError:
            return self._cancel_later(track) if track.in_flight or track.unconfirmed_since is not None else False
        if found is None:
            if track.closed_locally:
                return True  # never there: our word and the venue's agree
            if track.in_flight or track.unconfirmed_since is not None or o.status is OrderStatus.NEW:
                return self._cancel_later(track)  # it may still land
            return False
        if STATUS.get(str(found.get("status") or "").lower(), OrderStatus.SUBMITTED).is_terminal:
            await self._apply(track, found)
        else:
            # It landed after the cancel was refused: booked, and cancelled now (or, with the
            # submit still pending, when it returns).
            track.cancel_wanted = True
            await self._accept(track, found)
        return track.terminal_sent

    async def _cancel_foreign(self, cid: str) -> bool:
        """An order we do not track (from before a restart): find it by client id and cancel it."""
        for sym in self.symbols:
            try:
                found = await self._lookup(cid, sym)
            except VenueError:
                return False
            if found is None:
                continue
            self._adopt(found)
            return await self.cancel(cid)
        return True  # the venue has no such order

    async def cancel_entries(self, symbols: list[str] | None = None) -> list[str]:
        """Cancel every open entry order of the engine's, one request per order, `halt_concurrency`
        at once.

        Stops (the positions' protection) and exits (close-all) are never touched, so nothing needs
        re-placing; the venue's cancel-all endpoints (which would take them too) are never used.
        The orders this broker tracks are cancelled at once; meanwhile the venue's open orders are
        listed, and an entry there that we do not track but whose client id is of the profile's
        family (placed before a restart, or one we lost track of: `_is_ours`) is cancelled too.
        Any other order on the account (the trader's own, another bot's) is left working and said
        once (`_say_foreign`). Returns the client ids that could not be cancelled; safe to call
        again."""
        syms = list(symbols or sorted({t.order.symbol for t in self._tracks.values()} | set(self.symbols)))
        sem = asyncio.Semaphore(self.venue.timeouts.halt_concurrency)
        started: set[str] = set()

        async def one(cid: str) -> str | None:
            async with sem:
                try:
                    return None if await self.cancel(cid) else cid
                except VenueError:
                    return cid

        def launch(cid: str) -> asyncio.Task | None:
            if cid in started:
                return None
            started.add(cid)
            return asyncio.ensure_future(one(cid))

        tasks = [launch(c) for c in list(self._working)
                 if self._is_entry(self._tracks[c]) and self._tracks[c].order.symbol in syms]
        families = self._own_families()
        foreign: list[tuple[str, str]] = []
        listed = await asyncio.gather(*(self._open_brief(s) for s in syms), return_exceptions=True)
        for sym, res in zip(syms, listed):
            if isinstance(res, BaseException):
                continue  # what we track is being cancelled; a later call retries the listing
            for cid, vid, is_stop in res:
                if not self._is_ours(cid, families):
                    foreign.append((cid or f"#{vid}", sym))  # not ours: left working, and said
                    continue
                t = self._tracks.get(cid)
                if is_stop or (t is not None and not self._is_entry(t)):
                    continue  # stops protect; exits (close-all) reduce: both stay
                # Ours, untracked (placed before a restart): by client id, so it is adopted and reported.
                tasks.append(launch(cid))
        failed = [k for k in await asyncio.gather(*(t for t in tasks if t is not None)) if k is not None]
        self._say_foreign(foreign, failed)
        return failed

    @staticmethod
    def _is_entry(t: TrackedOrder) -> bool:
        return not t.is_stop and t.order.purpose is OrderPurpose.ENTRY

    async def _open_brief(self, symbol: str) -> list[tuple[str, str, bool]]:
        """(client id, venue id, is a stop) of each open order, from the raw endpoint (cheap)."""
        mid = self.ex.market(symbol)["id"]
        out = []
        if self.name == "binance":
            for r in await self._retry(f"open orders {symbol}", self.ex.privateGetOpenOrders, {"symbol": mid}):
                out.append((r.get("clientOrderId") or "", str(r.get("orderId")), "STOP" in str(r.get("type", ""))))
            return out
        cursor = ""
        for _ in range(50):  # Bybit pages its open orders, 50 at most per page
            req = {"category": "spot", "symbol": mid, "limit": 50}
            if cursor:
                req["cursor"] = cursor
            res = (await self._retry(f"open orders {symbol}", self.ex.privateGetV5OrderRealtime, req)).get("result") or {}
            for r in res.get("list") or []:
                out.append((r.get("orderLinkId") or "", str(r.get("orderId")),
                            bool(r.get("stopOrderType")) or r.get("orderStatus") == "Untriggered"))
            cursor = res.get("nextPageCursor") or ""
            if not cursor:
                break
        return out
