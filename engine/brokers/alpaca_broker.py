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
each order's `filled_qty` / `filled_avg_price`, polled (one list request per round); equity
trades carry no commission, so fees are 0. `get_clock()` gives the venue's market clock for the
trading-hours check.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any, Callable

from ..clock import Clock
from ..models import Fill, Order, OrderPurpose, OrderStatus, OrderType, Quote, Side
from ..venue_config import VenueSection
from .base import BrokerEvent, OrderUpdate
from .polling import PollingVenue
from .ccxt_broker import CLIENT_ID, dec
from .keys import EnvironmentReport, KeyPair, auth_refused, check_environment, endpoint_environment, redact
from .retry import Failure, Retrier, RetryPolicy, VenueError

log = logging.getLogger("tradeconsole.venue")

ZERO = Decimal(0)
QTY_STEP = Decimal("0.000000001")
PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
STATUS = {
    "new": OrderStatus.SUBMITTED, "accepted": OrderStatus.SUBMITTED, "pending_new": OrderStatus.SUBMITTED,
    "accepted_for_bidding": OrderStatus.SUBMITTED, "calculated": OrderStatus.SUBMITTED, "held": OrderStatus.SUBMITTED,
    "pending_cancel": OrderStatus.SUBMITTED, "pending_replace": OrderStatus.SUBMITTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED, "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED, "replaced": OrderStatus.CANCELLED, "done_for_day": OrderStatus.EXPIRED,
    "expired": OrderStatus.EXPIRED, "rejected": OrderStatus.REJECTED, "suspended": OrderStatus.REJECTED,
    "stopped": OrderStatus.SUBMITTED,
}


def classify(exc: BaseException) -> VenueError:
    """An alpaca-py / requests exception as a VenueError (redacted)."""
    import requests
    from alpaca.common.exceptions import APIError

    msg = redact(str(exc))[:300] or type(exc).__name__
    if isinstance(exc, APIError):
        status = exc.status_code
        if status == 429:
            kind = Failure.RATE_LIMIT
        elif status == 404:
            kind = Failure.NOT_FOUND
        elif status is not None and status >= 500:
            kind = Failure.TRANSIENT
        else:
            kind = Failure.FINAL
        return VenueError(kind, f"HTTP {status}: {msg}")
    if isinstance(exc, (requests.Timeout, TimeoutError)):
        return VenueError(Failure.TIMEOUT, f"{type(exc).__name__}: {msg}")
    if isinstance(exc, (requests.ConnectionError, OSError)):
        return VenueError(Failure.TRANSIENT, f"{type(exc).__name__}: {msg}")
    return VenueError(Failure.FINAL, f"{type(exc).__name__}: {msg}")


@dataclass
class _Track:
    order: Order
    is_stop: bool
    terminal_sent: bool = False
    unconfirmed_since: float | None = None
    fill_n: int = 0


class AlpacaBroker(PollingVenue):
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
        self.retrier = Retrier(RetryPolicy(t.retries, t.backoff_seconds, t.backoff_max_seconds), self._failure, sleep=sleep)
        self.client: Any = None
        self.data: Any = None
        self.connected = False
        self.environment = "unknown"
        self.report: EnvironmentReport | None = None
        self.warnings: list[str] = []
        self._tracks: dict[str, _Track] = {}
        self._working: set[str] = set()
        self._events: list[BrokerEvent] = []
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
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), self.venue.timeouts.request_seconds + 2)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - classified
            err = exc if isinstance(exc, VenueError) else classify(exc)
        raise err

    async def _retry(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.retrier.run(what, lambda: self._call(what, fn, *args))

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
        if self.venue.timeouts.poll_seconds > 0:
            self._poll_task = asyncio.get_running_loop().create_task(self._poll_loop(), name="poll-alpaca")
        log.info("venue alpaca connected (%s, %s), key %s", self.mode, self.environment, self._keys.api_key.fingerprint())

    async def close(self) -> None:
        self.connected = False
        if self._poll_task is not None:
            self._poll_task.cancel()
            try:
                await self._poll_task
            except (asyncio.CancelledError, Exception):
                pass
            self._poll_task = None
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
        number = str(acct.account_number or "")
        rep.account_env = "test" if number.startswith("PA") else "live"
        status = getattr(acct.status, "value", str(acct.status))
        rep.account_status = str(status)
        rep.blocked = bool(acct.account_blocked) or str(status) not in ("ACTIVE",)
        rep.can_trade = not (acct.trading_blocked or acct.trade_suspended_by_user)
        rep.buying_power = dec(acct.buying_power)
        rep.withdrawals = None  # trading keys cannot move money out on Alpaca
        return rep

    async def get_clock(self) -> dict[str, Any]:
        """The venue's market clock: {timestamp, is_open, next_open, next_close}."""
        c = await self._retry("clock", self.client.get_clock)
        return {"timestamp": c.timestamp, "is_open": bool(c.is_open), "next_open": c.next_open,
                "next_close": c.next_close}

    # -- orders ---------------------------------------------------------------------------------
    def _emit(self, cid: str, status: OrderStatus, reason: str = "", vid: str | None = None) -> None:
        self._events.append(OrderUpdate(cid, status, self.clock.now(), redact(reason)[:300], vid))

    def _reject(self, track: _Track, reason: str) -> None:
        track.order.status = OrderStatus.REJECTED
        self._working.discard(track.order.client_order_id)
        if not track.terminal_sent:
            track.terminal_sent = True
            self._emit(track.order.client_order_id, OrderStatus.REJECTED, reason, track.order.venue_order_id)

    @staticmethod
    def round_price(p: Decimal) -> Decimal:
        """Alpaca: two decimals at or above $1, four below."""
        return p.quantize(Decimal("0.01") if p >= 1 else Decimal("0.0001"), rounding=ROUND_HALF_UP)

    def build_request(self, order: Order) -> Any:
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, StopOrderRequest

        if not CLIENT_ID.fullmatch(order.client_order_id) or len(order.client_order_id) > 48:
            raise ValueError(f"client order id {order.client_order_id!r} is not accepted by alpaca")
        qty = order.quantity.quantize(QTY_STEP, rounding=ROUND_DOWN)
        if qty <= 0:
            raise ValueError(f"venue minimum: quantity {order.quantity:f} rounds to 0")
        whole = qty == qty.to_integral_value()
        tif = TimeInForce.GTC if (order.type is OrderType.STOP and whole) else TimeInForce.DAY
        common = dict(symbol=order.symbol, qty=float(qty) if not whole else int(qty),
                      side=OrderSide.BUY if order.side is Side.BUY else OrderSide.SELL,
                      time_in_force=tif, client_order_id=order.client_order_id)
        if order.type is OrderType.LIMIT:
            if not order.limit_price:
                raise ValueError("limit order without a limit price")
            return LimitOrderRequest(limit_price=float(self.round_price(order.limit_price)), **common)
        if order.type is OrderType.STOP:
            if not order.stop_price:
                raise ValueError("stop order without a stop price")
            return StopOrderRequest(stop_price=float(self.round_price(order.stop_price)), **common)
        return MarketOrderRequest(**common)

    async def submit(self, order: Order) -> None:
        cid = order.client_order_id
        if cid in self._tracks:
            self._emit(cid, OrderStatus.REJECTED, "duplicate client order id")
            return
        mine = replace(order, status=OrderStatus.NEW, filled_qty=ZERO, avg_fill_price=ZERO, fees=ZERO)
        track = _Track(mine, is_stop=order.type is OrderType.STOP)
        self._tracks[cid] = track
        if not self.connected:
            self._reject(track, "alpaca is not connected")
            return
        try:
            req = self.build_request(order)
        except ValueError as exc:
            self._reject(track, str(exc))
            return
        # Our copy holds what the venue will hold.
        mine.quantity = dec(req.qty)
        if order.limit_price is not None:
            mine.limit_price = self.round_price(order.limit_price)
        if order.stop_price is not None:
            mine.stop_price = self.round_price(order.stop_price)
        self._working.add(cid)
        attempt = 0
        while True:
            try:
                raw = await self._call("submit_order", self.client.submit_order, req)
            except VenueError as err:
                self.retrier.note(err, f"submit {cid}")
                if err.kind in (Failure.FINAL, Failure.NOT_FOUND):
                    self._reject(track, f"refused by alpaca: {err}")
                    return
                if attempt >= self.retrier.policy.retries:
                    if err.kind is Failure.RATE_LIMIT:
                        self._reject(track, f"alpaca rate limit: gave up after {attempt + 1} tries")
                    else:
                        track.unconfirmed_since = track.unconfirmed_since or time.monotonic()
                    return
                await self.retrier.backoff(attempt, err.kind)
                attempt += 1
                if err.ambiguous:
                    try:
                        found = await self._lookup(cid)
                    except VenueError:
                        track.unconfirmed_since = track.unconfirmed_since or time.monotonic()
                        return
                    if found is not None:
                        self._accept(track, found)
                        return
                continue
            self._accept(track, raw)
            return

    async def _lookup(self, cid: str) -> Any | None:
        async def one() -> Any | None:
            try:
                return await self._call("order by client id", self.client.get_order_by_client_id, cid)
            except VenueError as err:
                if err.kind is Failure.NOT_FOUND:
                    return None
                raise

        return await self.retrier.run(f"lookup {cid}", one)

    def _accept(self, track: _Track, raw: Any) -> None:
        o = track.order
        track.unconfirmed_since = None
        o.venue_order_id = str(raw.id)
        if o.status is OrderStatus.NEW:
            o.status = OrderStatus.SUBMITTED
            self._emit(o.client_order_id, OrderStatus.SUBMITTED, "", o.venue_order_id)
        self._apply(track, raw)

    def _apply(self, track: _Track, raw: Any) -> None:
        o = track.order
        if track.terminal_sent:
            return
        filled = dec(raw.filled_qty)
        if filled > o.filled_qty:
            avg = dec(raw.filled_avg_price)
            delta = filled - o.filled_qty
            price = (avg * filled - o.avg_fill_price * o.filled_qty) / delta
            o.avg_fill_price, o.filled_qty = avg, filled
            track.fill_n += 1
            self._events.append(Fill(o.client_order_id, o.symbol, o.side, delta, price, ZERO, self.clock.now(),
                                     "maker" if o.type is OrderType.LIMIT else "taker",
                                     f"alpaca:{o.venue_order_id}:{track.fill_n}"))
        status = STATUS.get(getattr(raw.status, "value", str(raw.status)), OrderStatus.SUBMITTED)
        if status.is_terminal:
            track.terminal_sent = True
            o.status = status
            self._working.discard(o.client_order_id)
            reason = "" if status is OrderStatus.FILLED else f"{status.value} at alpaca"
            self._emit(o.client_order_id, status, reason, o.venue_order_id)

    async def cancel(self, client_order_id: str) -> bool:
        track = self._tracks.get(client_order_id)
        if track is None:
            found = await self._lookup(client_order_id)
            if found is None:
                return True
            track = self._adopt(found)
        if track.terminal_sent:
            return True
        vid = track.order.venue_order_id
        if vid is None:
            found = await self._lookup(client_order_id)
            if found is None:
                track.unconfirmed_since = None
                track.terminal_sent = True
                self._working.discard(client_order_id)
                self._emit(client_order_id, OrderStatus.CANCELLED, "cancelled: never reached the venue")
                return True
            self._accept(track, found)
            vid = track.order.venue_order_id
        try:
            await self._retry(f"cancel {client_order_id}", self.client.cancel_order_by_id, vid)
        except VenueError as err:
            if not err.final:
                return False
        try:
            found = await self._lookup(client_order_id)
        except VenueError:
            return False
        if found is not None:
            self._apply(track, found)
        return track.terminal_sent

    async def cancel_entries(self, symbols: list[str] | None = None) -> list[str]:
        """Cancel every open entry order (not stops, not close-all exits), one by one with bounded
        concurrency; never the venue's cancel-all, which would take the protective stops too.
        Returns what failed."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        syms = symbols or self.symbols
        targets: set[str] = set()
        try:
            listed = await self._retry("open orders", self.client.get_orders,
                                       GetOrdersRequest(status=QueryOrderStatus.OPEN, symbols=syms, limit=500))
            for raw in listed:
                if getattr(raw.type, "value", str(raw.type)) in ("stop", "stop_limit", "trailing_stop"):
                    continue
                t = self._tracks.get(raw.client_order_id)
                if t is None:
                    t = self._adopt(raw)
                if not t.is_stop and t.order.purpose is OrderPurpose.ENTRY:
                    targets.add(t.order.client_order_id)
        except VenueError:
            pass  # fall back on what we track
        targets |= {c for c in self._working if not self._tracks[c].is_stop and self._tracks[c].order.symbol in syms
                    and self._tracks[c].order.purpose is OrderPurpose.ENTRY}
        sem = asyncio.Semaphore(min(self.venue.timeouts.halt_concurrency, 8))

        async def one(cid: str) -> str | None:
            async with sem:
                try:
                    return None if await self.cancel(cid) else cid
                except VenueError:
                    return cid

        return [c for c in await asyncio.gather(*(one(c) for c in sorted(targets))) if c is not None]

    def _adopt(self, raw: Any) -> _Track:
        o = self._to_order(raw)
        t = _Track(o, is_stop=o.type is OrderType.STOP)
        t.order.filled_qty = dec(raw.filled_qty)  # fills before adoption are the journal's
        t.order.avg_fill_price = dec(raw.filled_avg_price)
        self._tracks[o.client_order_id] = t
        if not o.status.is_terminal:
            self._working.add(o.client_order_id)
        return t

    def _to_order(self, raw: Any) -> Order:
        typ = getattr(raw.type, "value", str(raw.type))
        otype = {"limit": OrderType.LIMIT, "stop": OrderType.STOP}.get(typ, OrderType.MARKET)
        side = Side.BUY if getattr(raw.side, "value", str(raw.side)) == "buy" else Side.SELL
        status = STATUS.get(getattr(raw.status, "value", str(raw.status)), OrderStatus.SUBMITTED)
        return Order(raw.client_order_id, raw.symbol, side, otype, dec(raw.qty),
                     OrderPurpose.STOP if otype is OrderType.STOP else OrderPurpose.ENTRY,
                     raw.created_at or self.clock.now(),
                     limit_price=dec(raw.limit_price) if raw.limit_price is not None else None,
                     stop_price=dec(raw.stop_price) if raw.stop_price is not None else None,
                     status=status, filled_qty=dec(raw.filled_qty), avg_fill_price=dec(raw.filled_avg_price),
                     venue_order_id=str(raw.id))

    # -- reads ----------------------------------------------------------------------------------
    async def open_orders(self) -> list[Order]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        listed = await self._retry("open orders", self.client.get_orders,
                                   GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500))
        out = []
        for raw in listed:
            t = self._tracks.get(raw.client_order_id)
            out.append(replace(t.order) if t is not None else self._to_order(raw))
        return out

    async def fetch_order(self, client_order_id: str) -> Order | None:
        t = self._tracks.get(client_order_id)
        if t is not None and (t.terminal_sent or t.unconfirmed_since is None):
            return replace(t.order)
        found = await self._lookup(client_order_id)
        if found is None:
            return None
        if t is None:
            t = self._adopt(found)
        else:
            self._accept(t, found)
        return replace(t.order)

    async def positions(self) -> dict[str, Decimal]:
        out = {}
        for p in await self._retry("positions", self.client.get_all_positions):
            q = dec(p.qty)
            if getattr(p.side, "value", str(p.side)) == "short" and q > 0:
                q = -q
            if q != 0:
                out[p.symbol] = q
        return out

    async def balances(self) -> dict[str, Decimal]:
        acct = await self._retry("account", self.client.get_account)
        return {"USD": dec(acct.cash)}

    async def fetch_quotes(self, symbols: list[str] | None = None) -> list[Quote]:
        from alpaca.data.requests import StockLatestQuoteRequest

        syms = symbols or self.symbols
        got = await self._retry("latest quotes", self.data.get_stock_latest_quote,
                                StockLatestQuoteRequest(symbol_or_symbols=syms))
        now = datetime.now(timezone.utc)  # market data is real time, whatever the engine's clock
        out = []
        for s in syms:
            q = got.get(s)
            if q is None:
                continue
            bid, ask = dec(q.bid_price), dec(q.ask_price)
            out.append(Quote(s, now, bid, ask, dec(q.bid_size), dec(q.ask_size), (bid + ask) / 2))
        return out

    # -- polling (the loop is PollingVenue's) -----------------------------------------------
    async def poll(self) -> None:
        """One list request for every order since the oldest working one; lookups for the rest."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        async with self._poll_lock:
            working = [self._tracks[c] for c in self._working]
            if not working:
                return
            confirmed = [t for t in working if t.unconfirmed_since is None]
            seen: set[str] = set()
            if confirmed:
                after = min(t.order.created_at for t in confirmed) - timedelta(minutes=1)
                if after.tzinfo is None:
                    after = after.replace(tzinfo=timezone.utc)
                after = min(after, datetime.now(timezone.utc) - timedelta(minutes=1))
                listed = await self._retry("orders", self.client.get_orders,
                                           GetOrdersRequest(status=QueryOrderStatus.ALL, after=after, limit=500))
                for raw in listed:
                    t = self._tracks.get(raw.client_order_id)
                    if t is not None:
                        seen.add(raw.client_order_id)
                        self._apply(t, raw)
            for t in working:
                cid = t.order.client_order_id
                if cid in seen or t.terminal_sent:
                    continue
                found = await self._lookup(cid)
                if found is not None:
                    self._accept(t, found)
                elif t.unconfirmed_since is not None and (
                        time.monotonic() - t.unconfirmed_since > self.venue.timeouts.unconfirmed_grace_seconds):
                    t.unconfirmed_since = None
                    self._reject(t, "alpaca never confirmed the order after a timeout; it is not at the venue")
