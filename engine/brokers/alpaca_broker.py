"""AlpacaBroker: US equities through alpaca-py's TradingClient (paper and live endpoints).

alpaca-py is synchronous (requests), so every call runs in `asyncio.to_thread` and never blocks
the loop. The client is built on `connect()` (alpaca is imported there, not at module import):
`TradingClient(key, secret, paper=mode != "live", url_override=venue.base_url)`; the override is
the base *without* /v2. Its own retry loop (a blocking `time.sleep` on 429) is switched off and a
request timeout is set on its session; retries, backoff and failure counting are ours
(engine/brokers/retry.py), as for ccxt.

Every order carries `client_order_id`; lookups go by it (`/v2/orders:by_client_order_id`).
Protective stops are `stop` orders, GTC when the quantity is whole shares (Alpaca takes
fractional quantities only as DAY orders: a fractional position's stop is DAY and must be
re-placed each session). Alpaca has no per-fill REST feed for orders, so fills are the deltas of
each order's `filled_qty` / `filled_avg_price`, polled (one list request per round); a delta whose
numbers cannot be read is not booked but alerted (engine/brokers/venue_fields.py); equity
trades carry no commission, so fees are 0. `get_clock()` gives the venue's market clock for the
trading-hours check.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable

from ..clock import Clock
from ..models import Quote
from ..venue_config import VenueSection
from .alpaca_errors import classify
from .alpaca_orders import AlpacaOrderLifecycleMixin, TrackedOrder
from .alpaca_payloads import QTY_STEP, STATUS, AlpacaPayloadMixin
from .alpaca_polling import AlpacaPollingMixin
from .base import BrokerEvent
from .keys import EnvironmentReport, KeyPair, auth_refused, check_environment, endpoint_environment
from .polling import PollingVenue
from .retry import Failure, QuietNotice, Retrier, RetryPolicy, VenueError, retry_after_seconds
from .venue_fields import CLIENT_ID, ZERO, UnreadableFills, UnreadableNumber, number, positive, unreadable_error

# The helpers that lived here before the split stay importable from here (not `dec`, which read
# garbage as 0: engine/brokers/venue_fields.py reads strictly).
__all__ = ["CLIENT_ID", "LIVE_URL", "PAPER_URL", "QTY_STEP", "STATUS", "ZERO", "AlpacaBroker", "classify"]

log = logging.getLogger("tradeconsole.venue")

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"


class AlpacaBroker(AlpacaOrderLifecycleMixin, AlpacaPollingMixin, AlpacaPayloadMixin, UnreadableFills, PollingVenue):
    def __init__(self, venue: VenueSection, mode: str, keys: KeyPair, clock: Clock, symbols: list[str], *,
                 on_api_failure: Callable[[], None] | None = None, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        if venue.name != "alpaca":
            raise ValueError(f"AlpacaBroker does not trade {venue.name}")
        self.venue = venue
        self.name = "alpaca"
        self.mode = mode
        self._keys = keys
        self.clock = clock
        self.symbols = list(symbols)
        self.on_api_failure = on_api_failure
        t = venue.timeouts
        self.retrier = Retrier(RetryPolicy(t.retries, t.backoff_seconds, t.backoff_max_seconds), self._failure,
                               sleep=sleep, now=clock.monotonic, on_quiet=QuietNotice(self, log))
        self.client: Any = None
        self.data: Any = None
        self.connected = False
        self.environment = "unknown"
        self.report: EnvironmentReport | None = None
        self.warnings: list[str] = []
        self._tracks: dict[str, TrackedOrder] = {}
        self._working: set[str] = set()
        self._events: list[BrokerEvent] = []
        self._held_symbols: dict[str, str] = {}  # symbol -> the unreadable fill holding its entries
        self._poll_task: asyncio.Task | None = None
        self._poll_lock = asyncio.Lock()
        self.api_failures = 0

    def __repr__(self) -> str:
        return f"AlpacaBroker(mode={self.mode}, keys={self._keys!r})"

    def _failure(self, kind: Failure, what: str) -> None:
        self.api_failures += 1
        log.warning("venue alpaca: %s on %s", kind.value, what)
        if self.on_api_failure is not None:
            self.on_api_failure()

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """One request, after any quiet window the venue asked for (every request passes here)."""
        await self.retrier.wait_quiet(what)
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), self.venue.timeouts.request_seconds + 2)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - classified
            err = exc if isinstance(exc, VenueError) else classify(exc)
            if err.kind is Failure.RATE_LIMIT and not isinstance(exc, VenueError):
                resp = getattr(exc, "response", None)  # alpaca-py's APIError keeps the requests.Response
                headers = getattr(resp, "headers", None)
                self.retrier.rate_limited(err, retry_after_seconds(headers, str(exc), self.clock.now()), what)
        raise err

    async def _retry(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.retrier.run(what, lambda: self._call(what, fn, *args))

    def rate_limited_for(self) -> float:
        """Seconds left of a quiet window the venue asked for (0: none); the quote feed skips its
        polls meanwhile rather than wait inside a request."""
        return self.retrier.quiet_left()

    # -- connection -----------------------------------------------------------------------------
    def base_url(self) -> str:
        return self.venue.base_url or (LIVE_URL if self.mode == "live" else PAPER_URL)

    def _tune(self, client: Any) -> None:
        """No blocking retry inside the library; a timeout on every request."""
        client._retry = 0
        client._retry_codes = []
        session = client._session
        session.request = functools.partial(session.request, timeout=self.venue.timeouts.request_seconds)

    async def connect(self) -> None:
        if self.connected:
            return
        from alpaca.data.historical.stock import StockHistoricalDataClient
        from alpaca.trading.client import TradingClient

        key, secret = self._keys.api_key.reveal(), self._keys.secret.reveal()
        self.client = TradingClient(key, secret, paper=self.mode != "live", url_override=self.venue.base_url)
        self._tune(self.client)
        data_url = self.venue.data_url or (self.venue.base_url if self.venue.base_url else None)
        self.data = StockHistoricalDataClient(key, secret, url_override=data_url)
        self._tune(self.data)
        self.report = await self.verify()
        self.warnings = check_environment(self.report, self.mode, self.venue.withdrawal_permission)
        for w in self.warnings:
            log.warning("venue alpaca: %s", w)
        self.environment = self.report.endpoint_env
        self.connected = True
        self._start_polling()
        log.info("venue alpaca connected (%s, %s), key %s", self.mode, self.environment, self._keys.api_key.fingerprint())

    async def close(self) -> None:
        self.connected = False
        await self._stop_polling()
        for c in (self.client, self.data):
            if c is not None:
                await asyncio.to_thread(c._session.close)
        self.client = self.data = None

    async def verify(self) -> EnvironmentReport:
        url = self.base_url()
        rep = EnvironmentReport("alpaca", url, endpoint_environment("alpaca", url))
        try:
            acct = await self._retry("account", self.client.get_account)
        except VenueError as err:
            if "HTTP 401" in str(err) or "HTTP 403" in str(err):
                raise auth_refused("alpaca", self.mode, str(err)) from None
            raise
        account_number = str(acct.account_number or "")
        rep.account_env = "test" if account_number.startswith("PA") else "live"
        status = getattr(acct.status, "value", str(acct.status))
        rep.account_status = str(status)
        rep.blocked = bool(acct.account_blocked) or str(status) not in ("ACTIVE",)
        rep.can_trade = not (acct.trading_blocked or acct.trade_suspended_by_user)
        try:  # unknown (None) when missing or garbage: shown and journaled, never traded on
            rep.buying_power = number(acct.buying_power, "buying power", missing=None)
        except UnreadableNumber as bad:
            rep.warnings.append(f"alpaca: buying power unknown: {bad}")
        rep.withdrawals = None  # trading keys cannot move money out on Alpaca
        return rep

    async def get_clock(self) -> dict[str, Any]:
        """The venue's market clock: {timestamp, is_open, next_open, next_close}."""
        c = await self._retry("clock", self.client.get_clock)
        return {"timestamp": c.timestamp, "is_open": bool(c.is_open), "next_open": c.next_open,
                "next_close": c.next_close}

    # -- reads ----------------------------------------------------------------------------------
    async def positions(self) -> dict[str, Decimal]:
        out = {}
        for p in await self._retry("positions", self.client.get_all_positions):
            try:
                q = number(p.qty, "qty")
            except UnreadableNumber as bad:  # a position made up as 0 would reconcile as flat
                raise unreadable_error("alpaca", f"position {p.symbol}", bad) from None
            if getattr(p.side, "value", str(p.side)) == "short" and q > 0:
                q = -q
            if q != 0:
                out[p.symbol] = q
        return out

    async def balances(self) -> dict[str, Decimal]:
        acct = await self._retry("account", self.client.get_account)
        try:  # no figure: no USD entry (the start refuses, reconciliation skips); garbage fails the read
            cash = number(acct.cash, "cash", missing=None)
        except UnreadableNumber as bad:
            raise unreadable_error("alpaca", "account", bad) from None
        return {} if cash is None else {"USD": cash}

    async def fetch_quotes(self, symbols: list[str] | None = None) -> list[Quote]:
        from alpaca.data.requests import StockLatestQuoteRequest

        syms = symbols or self.symbols
        req = StockLatestQuoteRequest(symbol_or_symbols=syms)
        # Impatient: the feed's caller is the engine's loop, which must not stall in a quiet window.
        got = await self.retrier.run("latest quotes", lambda: self._call("latest quotes", self.data.get_stock_latest_quote,
                                                                         req), patient=False)
        now = datetime.now(timezone.utc)  # market data is real time, whatever the engine's clock
        out = []
        for s in syms:
            q = got.get(s)
            if q is None:
                continue
            try:
                # A side at 0 or garbage is no price (an empty IEX side reads 0): marking at it would
                # halve the mid and move equity. Sizes not given are unknown depth, read as none.
                bid, ask = positive(q.bid_price, "bid"), positive(q.ask_price, "ask")
                sizes = number(q.bid_size, "bid size", missing=ZERO), number(q.ask_size, "ask size", missing=ZERO)
            except UnreadableNumber as bad:
                log.warning("venue alpaca: %s quote left out: %s", s, bad)
                continue
            out.append(Quote(s, now, bid, ask, *sizes, (bid + ask) / 2))
        return out

