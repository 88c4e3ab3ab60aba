"""CcxtBroker: crypto spot venues (Binance, Bybit) through ccxt's asyncio client.

One `ccxt.async_support` exchange per venue, created on `connect()` (the library is imported
there, never at module import: a paper console must not pay its ~1 s import) and closed on
`close()`. Testnet profiles use ccxt's sandbox mode; `venue.base_url` rewrites only the scheme and
host of every REST endpoint (an emulator or a proxy). Markets are loaded once.

Orders
  * amounts are truncated and prices rounded to the venue's precision, then checked against the
    market's minimum/maximum amount and minimum notional; a miss is refused before anything is
    sent (OrderUpdate REJECTED "venue minimum: ...").
  * the engine's client order id rides in the venue's own field (ccxt `clientOrderId` ->
    Binance `newClientOrderId`, Bybit `orderLinkId`); lookups and cancels go by it.
  * protective stops are venue stop orders: Binance STOP_LOSS, Bybit spot conditional
    (`orderFilter=StopOrder`), both market on trigger.
  * `cancel_entries(symbols)` cancels, one by one (bounded concurrency), every open order except
    stop orders: the venue cancel-all endpoints are never used, so a halt never takes a stop and
    nothing has to be re-placed.

Events: fills come from the create response when the venue gives them (Binance FULL), then from
polling `fetch_my_trades` per symbol with working orders, and order states from open orders and
lookups by client id; each becomes `Fill` / `OrderUpdate` with Decimal money. A fee charged in the
base asset is converted to the quote currency and the fill's quantity is the base amount that
actually moved, so cash and positions match the venue's balances.

Errors (engine/brokers/retry.py): rate limits (Binance 429/418 `DDoSProtection`, Bybit 10006/403
`RateLimitExceeded`) back off; timeouts and 5xx retry with jittered backoff, bounded, each counted
through `on_api_failure`; insufficient funds / invalid order / auth errors are final -> REJECTED
with the venue's (redacted) message. A submit whose outcome is unknown (timeout, 5xx) is looked
up by client order id before anything is sent again, so it is never placed twice; if the lookup
cannot tell either, nothing is re-sent and the poller keeps looking until
`unconfirmed_grace_seconds`.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from urllib.parse import urlsplit

from ..clock import Clock
from ..models import Fill, Order, OrderPurpose, OrderStatus, OrderType, Quote, Side
from ..venue_config import VenueSection
from .base import BrokerEvent, OrderUpdate
from .polling import PollingVenue
from .keys import (EnvironmentReport, KeyPair, auth_refused, check_environment, endpoint_environment, redact)
from .retry import Failure, Retrier, RetryPolicy, TokenBucket, VenueError

log = logging.getLogger("tradeconsole.venue")

ZERO = Decimal(0)
CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:/-]{1,36}$")
# Binance maps its numeric codes to ccxt errors by URL prefix; behind an emulator or a proxy those
# codes arrive as plain ExchangeError, so they are classified again here from the body.
BINANCE_CODES = {
    "-1003": Failure.RATE_LIMIT, "-1015": Failure.RATE_LIMIT, "-1008": Failure.RATE_LIMIT,
    "-1000": Failure.TRANSIENT, "-1001": Failure.TRANSIENT, "-1006": Failure.TRANSIENT,
    "-1007": Failure.TIMEOUT,
    "-2013": Failure.NOT_FOUND, "-2011": Failure.NOT_FOUND,
}
BYBIT_CODES = {"10006": Failure.RATE_LIMIT, "10016": Failure.TRANSIENT, "10000": Failure.TRANSIENT,
               "170213": Failure.NOT_FOUND, "110001": Failure.NOT_FOUND}
# Request weight per minute the venue allows one key/IP (ccxt's endpoint costs are in these units).
VENUE_BUDGET = {"binance": 6000, "bybit": 3000}
AUTH_CODES = {"-2014", "-2015", "-1022", "10003", "10004", "10005", "33004"}
STATUS = {"open": OrderStatus.SUBMITTED, "closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELLED,
          "cancelled": OrderStatus.CANCELLED, "expired": OrderStatus.EXPIRED, "rejected": OrderStatus.REJECTED}


def dec(x: Any) -> Decimal:
    if x is None or x == "":
        return ZERO
    if isinstance(x, Decimal):
        return x
    try:
        return Decimal(str(x))
    except (InvalidOperation, ValueError):
        return ZERO


def classify(exc: BaseException, venue: str = "") -> VenueError:
    """A ccxt (or transport) exception as a VenueError with a redacted, bounded message."""
    import ccxt.async_support as ccxt

    msg = redact(str(exc))[:400] or type(exc).__name__
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
        kind = Failure.RATE_LIMIT
    elif isinstance(exc, ccxt.RequestTimeout) or isinstance(exc, asyncio.TimeoutError):
        kind = Failure.TIMEOUT
    elif isinstance(exc, ccxt.OrderNotFound):
        kind = Failure.NOT_FOUND
    elif isinstance(exc, ccxt.NetworkError) or isinstance(exc, (ccxt.OperationFailed, OSError)):
        kind = Failure.TRANSIENT
    elif isinstance(exc, ccxt.BaseError):
        kind = Failure.FINAL
        code = _venue_code(msg)
        table = BINANCE_CODES if venue == "binance" else BYBIT_CODES
        if code in table:
            kind = table[code]
    else:
        kind = Failure.TRANSIENT
    return VenueError(kind, f"{type(exc).__name__}: {msg}")


BINANCE_STATUS = {"NEW": "open", "PARTIALLY_FILLED": "open", "PENDING_NEW": "open", "FILLED": "closed",
                  "CANCELED": "canceled", "PENDING_CANCEL": "canceled", "REJECTED": "rejected",
                  "EXPIRED": "expired", "EXPIRED_IN_MATCH": "expired"}


def binance_unified(raw: dict) -> dict:
    """The few unified fields `_apply` reads, from a raw Binance order answer."""
    return {"status": BINANCE_STATUS.get(str(raw.get("status"))), "filled": raw.get("executedQty"),
            "cost": raw.get("cummulativeQuoteQty"), "id": raw.get("orderId"),
            "clientOrderId": raw.get("origClientOrderId") or raw.get("clientOrderId")}


def _venue_code(msg: str) -> str | None:
    m = re.search(r'"(?:code|retCode)"\s*:\s*(-?\d+)', msg)
    return m.group(1) if m else None


def is_auth_error(err: VenueError) -> bool:
    return "AuthenticationError" in str(err) or "PermissionDenied" in str(err) or _venue_code(str(err)) in AUTH_CODES


@dataclass
class _Track:
    order: Order  # the broker's copy: status, filled, avg price, fees, venue id
    is_stop: bool
    trade_ids: set[str] = field(default_factory=set)
    terminal_sent: bool = False
    unconfirmed_since: float | None = None  # monotonic time a submit's outcome became unknown
    submitted_ms: int = 0


class CcxtBroker(PollingVenue):
    """Broker over ccxt's async client. See the module docstring for the contract."""

    def __init__(self, venue: VenueSection, mode: str, keys: KeyPair, clock: Clock, symbols: list[str], *,
                 on_api_failure: Callable[[], None] | None = None, exchange_factory: Callable[..., Any] | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        if venue.name not in ("binance", "bybit"):
            raise ValueError(f"CcxtBroker does not trade {venue.name}")
        self.venue = venue
        self.cash_currency = venue.quote_currency
        self.name = venue.name
        self.mode = mode
        self._keys = keys
        self.clock = clock
        self.symbols = list(symbols)
        self.on_api_failure = on_api_failure
        t = venue.timeouts
        self.retrier = Retrier(RetryPolicy(t.retries, t.backoff_seconds, t.backoff_max_seconds),
                               self._failure, sleep=sleep)
        self._factory = exchange_factory
        self.ex: Any = None
        self.connected = False
        self.environment = "unknown"  # test | live | local, from the endpoint in use
        self.report: EnvironmentReport | None = None
        self.warnings: list[str] = []
        self._tracks: dict[str, _Track] = {}
        self._by_venue_id: dict[str, str] = {}
        self._working: set[str] = set()
        self._events: list[BrokerEvent] = []
        self._last: dict[str, Quote] = {}
        self._trade_cursor: dict[str, int] = {}
        self._poll_task: asyncio.Task | None = None
        self._poll_lock = asyncio.Lock()
        self.api_failures = 0
        budget = t.request_budget_per_minute or int(VENUE_BUDGET[venue.name] * 0.8)
        # Half a minute's budget may go at once (a halt's cancels), refilled at the per-minute rate.
        self.budget = TokenBucket(budget / 2, budget / 60, time.monotonic)

    def __repr__(self) -> str:
        return f"CcxtBroker({self.name}, mode={self.mode}, keys={self._keys!r})"

    # -- failures -------------------------------------------------------------------------------
    def _failure(self, kind: Failure, what: str) -> None:
        self.api_failures += 1
        log.warning("venue %s: %s on %s", self.name, kind.value, what)
        if self.on_api_failure is not None:
            self.on_api_failure()

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """One request; any failure becomes a VenueError (redacted, no chained traceback)."""
        try:
            return await fn(*args)  # ccxt bounds each request by its own `timeout`
        except VenueError:
            raise
        except BaseException as exc:  # noqa: BLE001 - classified, never swallowed
            if isinstance(exc, asyncio.CancelledError):
                raise
            err = classify(exc, self.name)
        raise err

    async def _retry(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.retrier.run(what, lambda: self._call(what, fn, *args))

    # -- connection -----------------------------------------------------------------------------
    def _build_exchange(self) -> Any:
        if self._factory is not None:
            return self._factory()
        import ccxt.async_support as ccxt

        cls = getattr(ccxt, self.name)
        options: dict[str, Any] = {"adjustForTimeDifference": False, "fetchCurrencies": False,
                                   "fetchMarkets": {"types": ["spot"]}, "defaultType": "spot"}
        if self.name == "binance":
            options.update({"fetchMargins": False, "warnOnFetchOpenOrdersWithoutSymbol": False})
        ex = cls({
            "apiKey": self._keys.api_key.reveal(), "secret": self._keys.secret.reveal(),
            "timeout": int(self.venue.timeouts.request_seconds * 1000), "enableRateLimit": True,
            "options": options, "verbose": False,
        })
        ex.has["fetchCurrencies"] = False  # one request at load_markets, no private currency call
        # ccxt's limiter spaces requests evenly (no burst); venues count weight per minute. Ours is a
        # token bucket over ccxt's per-endpoint weights: a halt can spend saved budget at once.
        ex.throttle = self._throttle
        if self.mode != "live":
            ex.set_sandbox_mode(True)
        if self.venue.base_url:
            self._rewrite_urls(ex, self.venue.base_url)
        return ex

    async def _throttle(self, cost: float | None = None) -> None:
        await self.budget.take(float(cost or 1))

    @staticmethod
    def _rewrite_urls(ex: Any, base: str) -> None:
        """Point every REST endpoint at `base`, keeping each one's path."""
        target = urlsplit(base)
        api = ex.urls["api"]
        for k, v in list(api.items()):
            if isinstance(v, str):
                p = urlsplit(v.replace("{hostname}", "x"))
                api[k] = f"{target.scheme}://{target.netloc}{p.path}"

    def endpoint(self) -> str:
        api = self.ex.urls["api"]
        url = api.get("private") or api.get("public") or next(iter(api.values()))
        p = urlsplit(url.replace("{hostname}", getattr(self.ex, "hostname", "") or "x"))
        return f"{p.scheme}://{p.netloc}"

    async def connect(self) -> None:
        if self.connected:
            return
        self.ex = self._build_exchange()
        try:
            await self._retry("load_markets", self.ex.load_markets)
            missing = [s for s in self.symbols if s not in self.ex.markets]
            if missing:
                raise VenueError(Failure.FINAL, f"{self.name} has no spot market {', '.join(missing)}")
            self.report = await self.verify()
            self.warnings = check_environment(self.report, self.mode, self.venue.withdrawal_permission)
            for w in self.warnings:
                log.warning("venue %s: %s", self.name, w)
        except BaseException:
            await self.ex.close()
            self.ex = None
            raise
        self.environment = self.report.endpoint_env
        self.connected = True
        if self.venue.timeouts.poll_seconds > 0:
            self._poll_task = asyncio.get_running_loop().create_task(self._poll_loop(), name=f"poll-{self.name}")
        log.info("venue %s connected (%s, %s), key %s", self.name, self.mode, self.environment,
                 self._keys.api_key.fingerprint())

    async def close(self) -> None:
        self.connected = False
        if self._poll_task is not None:
            self._poll_task.cancel()
            try:
                await self._poll_task
            except (asyncio.CancelledError, Exception):
                pass
            self._poll_task = None
        if self.ex is not None:
            await self.ex.close()
            self.ex = None

    async def verify(self) -> EnvironmentReport:
        """Read the account: environment, status, buying power, withdrawal permission."""
        ep = self.endpoint()
        rep = EnvironmentReport(self.name, ep, endpoint_environment(self.name, ep))
        quote = self.venue.quote_currency
        try:
            if self.name == "binance":
                acct = await self._retry("account", self.ex.privateGetAccount)
                rep.can_trade = bool(acct.get("canTrade", True))
                rep.account_status = str(acct.get("accountType", "SPOT"))
                for b in acct.get("balances", []):
                    if b.get("asset") == quote:
                        rep.buying_power = dec(b.get("free"))
                try:  # not on the testnet (no /sapi there): best effort
                    r = await self._call("apiRestrictions", self.ex.sapiGetAccountApiRestrictions)
                    rep.withdrawals = bool(r.get("enableWithdrawals"))
                    if r.get("enableSpotAndMarginTrading") is False:
                        rep.can_trade = False
                except VenueError as err:
                    if is_auth_error(err):
                        raise
                    rep.withdrawals = None
            else:
                info = await self._retry("query-api", self.ex.privateGetV5UserQueryApi)
                res = info.get("result", {}) or {}
                rep.can_trade = str(res.get("readOnly", 0)) in ("0", "False", "false")
                perms = res.get("permissions", {}) or {}
                rep.withdrawals = "Withdraw" in (perms.get("Wallet") or [])
                rep.account_status = "UTA" if str(res.get("uta", "0")) == "1" else "classic"
                bal = await self._retry("wallet-balance", self.ex.fetch_balance)
                rep.buying_power = dec((bal.get("free") or {}).get(quote))
        except VenueError as err:
            if is_auth_error(err):
                raise auth_refused(self.name, self.mode, str(err)) from None
            raise
        return rep

    # -- orders ---------------------------------------------------------------------------------
    def _emit(self, cid: str, status: OrderStatus, reason: str = "", vid: str | None = None) -> None:
        self._events.append(OrderUpdate(cid, status, self.clock.now(), redact(reason)[:300], vid))

    def _reject(self, track: _Track, reason: str) -> None:
        track.order.status = OrderStatus.REJECTED
        track.order.reason = reason
        self._working.discard(track.order.client_order_id)
        if not track.terminal_sent:
            track.terminal_sent = True
            self._emit(track.order.client_order_id, OrderStatus.REJECTED, reason, track.order.venue_order_id)

    def prepare(self, order: Order) -> tuple[str, str, str | None, dict[str, Any]]:
        """(ccxt type, amount, price, params) rounded to the venue; ValueError says why not."""
        ex = self.ex
        cid = order.client_order_id
        if not CLIENT_ID.fullmatch(cid):
            raise ValueError(f"client order id {cid!r} is not accepted by {self.name} (1-36 of A-Z a-z 0-9 _ - . : /)")
        if order.symbol not in ex.markets:
            raise ValueError(f"{self.name} has no market {order.symbol}")
        m = ex.market(order.symbol)
        if order.quantity <= 0:
            raise ValueError("quantity <= 0")
        try:
            amount = ex.amount_to_precision(order.symbol, str(order.quantity))
        except Exception:
            raise ValueError(f"venue minimum: quantity {order.quantity:f} rounds to 0 at {order.symbol}'s step "
                             f"{m['precision'].get('amount')}") from None
        lim = m.get("limits") or {}
        a_min = (lim.get("amount") or {}).get("min")
        a_max = (lim.get("amount") or {}).get("max")
        c_min = (lim.get("cost") or {}).get("min")
        if a_min is not None and dec(amount) < dec(a_min):
            raise ValueError(f"venue minimum: quantity {amount} is below {order.symbol}'s minimum {dec(a_min)}")
        if a_max is not None and dec(amount) > dec(a_max):
            raise ValueError(f"venue maximum: quantity {amount} is above {order.symbol}'s maximum {dec(a_max)}")
        params: dict[str, Any] = {"clientOrderId": cid}
        price: str | None = None
        if order.type is OrderType.LIMIT:
            if order.limit_price is None or order.limit_price <= 0:
                raise ValueError("limit order without a limit price")
            price = ex.price_to_precision(order.symbol, str(order.limit_price))
            ref = dec(price)
            ctype = "limit"
        elif order.type is OrderType.STOP:
            if order.stop_price is None or order.stop_price <= 0:
                raise ValueError("stop order without a stop price")
            stop = ex.price_to_precision(order.symbol, str(order.stop_price))
            params["triggerPrice"] = stop
            ref = dec(stop)
            ctype = "market"
        else:
            q = self._last.get(order.symbol)
            ref = (q.ask if order.side is Side.BUY else q.bid) if q is not None else ZERO
            ctype = "market"
        if c_min is not None and ref > 0 and dec(amount) * ref < dec(c_min):
            raise ValueError(f"venue minimum: order value {(dec(amount) * ref).normalize()} is below "
                             f"{order.symbol}'s minimum notional {dec(c_min)}")
        return ctype, amount, price, params

    async def submit(self, order: Order) -> None:
        cid = order.client_order_id
        if cid in self._tracks:
            self._emit(cid, OrderStatus.REJECTED, "duplicate client order id")
            return
        mine = replace(order, status=OrderStatus.NEW, filled_qty=ZERO, avg_fill_price=ZERO, fees=ZERO)
        track = _Track(mine, is_stop=order.type is OrderType.STOP, submitted_ms=int(time.time() * 1000))
        self._tracks[cid] = track
        if not self.connected:
            self._reject(track, f"{self.name} is not connected")
            return
        try:
            ctype, amount, price, params = self.prepare(order)
        except ValueError as exc:
            self._reject(track, str(exc))
            return
        # Our copy holds what the venue will hold: the rounded amount and prices.
        mine.quantity = dec(amount)
        if price is not None:
            mine.limit_price = dec(price)
        if "triggerPrice" in params:
            mine.stop_price = dec(params["triggerPrice"])
        self._working.add(cid)
        self._trade_cursor.setdefault(order.symbol, track.submitted_ms - 5000)
        side = order.side.value
        attempt = 0
        while True:
            try:
                raw = await self._call("create_order", self.ex.create_order, order.symbol, ctype, side,
                                       amount, price, dict(params))
            except VenueError as err:
                self.retrier.note(err, f"submit {cid}")
                if err.kind in (Failure.FINAL, Failure.NOT_FOUND):
                    self._reject(track, f"refused by {self.name}: {err}")
                    return
                if attempt >= self.retrier.policy.retries:
                    if err.kind is Failure.RATE_LIMIT:  # never processed: safe to give up
                        self._reject(track, f"{self.name} rate limit: gave up after {attempt + 1} tries")
                    else:
                        self._unconfirmed(track, err)
                    return
                await self.retrier.backoff(attempt, err.kind)
                attempt += 1
                if err.ambiguous:
                    # It may have landed: look it up by client id before anything is sent again.
                    try:
                        found = await self._lookup(cid, order.symbol)
                    except VenueError as lerr:
                        self._unconfirmed(track, lerr)
                        return
                    if found is not None:
                        log.info("venue %s: %s found after %s; not sent again", self.name, cid, err.kind.value)
                        await self._accept(track, found)
                        return
                continue
            await self._accept(track, raw)
            return

    def _unconfirmed(self, track: _Track, err: VenueError) -> None:
        """The venue may or may not have it: never send again; the poller keeps looking."""
        if track.unconfirmed_since is None:
            track.unconfirmed_since = time.monotonic()
        log.warning("venue %s: %s outcome unknown (%s); looking it up by client id", self.name,
                    track.order.client_order_id, err.kind.value)

    async def _accept(self, track: _Track, raw: dict) -> None:
        o = track.order
        vid = str(raw.get("id")) if raw.get("id") is not None else o.venue_order_id
        track.unconfirmed_since = None
        if vid:
            o.venue_order_id = vid
            self._by_venue_id[vid] = o.client_order_id
        if o.status is OrderStatus.NEW:
            o.status = OrderStatus.SUBMITTED
            self._emit(o.client_order_id, OrderStatus.SUBMITTED, "", vid)
        embedded = [t for t in (raw.get("trades") or []) if t.get("id")]
        for t in embedded:
            self._apply_trade(track, t)
        if raw.get("status") is None and o.type is OrderType.MARKET:
            # Bybit acknowledges with ids only: read the state now so a market fill is not a poll away.
            try:
                looked = await self._lookup(o.client_order_id, o.symbol)
            except VenueError:
                looked = None
            if looked is not None:
                raw = looked
        await self._apply(track, raw)

    def _apply_trade(self, track: _Track, t: dict) -> None:
        tid = str(t.get("id"))
        if tid in track.trade_ids or track.terminal_sent:
            return
        track.trade_ids.add(tid)
        o = track.order
        qty = dec(t.get("amount"))
        price = dec(t.get("price"))
        if qty <= 0:
            return
        fee = t.get("fee") or {}
        fee_cost = dec(fee.get("cost"))
        fee_ccy = fee.get("currency")
        m = self.ex.market(o.symbol)
        moved = qty
        if fee_cost and fee_ccy == m["base"]:
            # Paid in the asset bought: the fill moves less base; the fee is its quote value.
            moved = qty - fee_cost if o.side is Side.BUY else qty + fee_cost
            fee_q = fee_cost * price
        elif fee_cost and fee_ccy not in (None, m["quote"]):
            log.warning("venue %s: fee of %s paid in %s, not converted", self.name, o.client_order_id, fee_ccy)
            fee_q = ZERO
        else:
            fee_q = fee_cost
        total = o.filled_qty + qty
        o.avg_fill_price = (o.avg_fill_price * o.filled_qty + price * qty) / total
        o.filled_qty = total
        o.fees += fee_q
        if o.status is OrderStatus.SUBMITTED:
            o.status = OrderStatus.PARTIALLY_FILLED
        self._events.append(Fill(o.client_order_id, o.symbol, o.side, moved, price, fee_q, self.clock.now(),
                                 t.get("takerOrMaker") or "taker", f"{self.name}:{tid}"))

    async def _apply(self, track: _Track, raw: dict) -> None:
        """Bring our copy up to the venue's order: missing fills first, then a terminal state."""
        o = track.order
        if track.terminal_sent:
            return
        status = STATUS.get(str(raw.get("status") or "").lower())
        filled = dec(raw.get("filled"))
        if status is None or not status.is_terminal:
            return
        if filled > o.filled_qty:
            await self._catch_up_fills(track, raw, filled)
        track.terminal_sent = True
        o.status = status
        self._working.discard(o.client_order_id)
        reason = "" if status is OrderStatus.FILLED else f"{status.value} at {self.name}"
        self._emit(o.client_order_id, status, reason, o.venue_order_id)

    async def _catch_up_fills(self, track: _Track, raw: dict, filled: Decimal) -> None:
        o = track.order
        try:
            trades = await self._retry("order trades", self.ex.fetch_my_trades, o.symbol, None, None,
                                       self._order_trade_params(o))
            for t in trades:
                if str(t.get("order")) == str(o.venue_order_id):
                    self._apply_trade(track, t)
        except VenueError as err:
            log.warning("venue %s: trades of %s unavailable (%s)", self.name, o.client_order_id, err.kind.value)
        if filled > o.filled_qty:
            # The venue says more filled than its trades show: book the rest at the order's numbers.
            rest = filled - o.filled_qty
            cost = dec(raw.get("cost")) or dec(raw.get("average")) * filled
            known = o.avg_fill_price * o.filled_qty
            price = (cost - known) / rest if cost > known else dec(raw.get("average")) or dec(raw.get("price"))
            tid = f"{o.venue_order_id}-rest"
            self._apply_trade(track, {"id": tid, "amount": rest, "price": price, "fee": None})

    def _order_trade_params(self, o: Order) -> dict:
        return {"orderId": o.venue_order_id} if o.venue_order_id else {}

    async def _lookup(self, cid: str, symbol: str) -> dict | None:
        """The venue's order with this client id (retried), or None if the venue has none."""
        async def one() -> dict | None:
            try:
                if self.name == "binance":
                    return await self._call("fetch_order", self.ex.fetch_order, None, symbol,
                                            {"origClientOrderId": cid})
                m = self.ex.market(symbol)
                for fn in (self.ex.privateGetV5OrderRealtime, self.ex.privateGetV5OrderHistory):
                    res = await self._call("order lookup", fn, {"category": "spot", "symbol": m["id"],
                                                                "orderLinkId": cid})
                    items = ((res or {}).get("result") or {}).get("list") or []
                    if items:
                        return self.ex.parse_order(items[0], m)
                return None
            except VenueError as err:
                if err.kind is Failure.NOT_FOUND:
                    return None
                raise

        return await self.retrier.run(f"lookup {cid}", one)

    async def cancel(self, client_order_id: str) -> bool:
        track = self._tracks.get(client_order_id)
        if track is None:
            return await self._cancel_foreign(client_order_id)
        o = track.order
        if track.terminal_sent:
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
                # Gone already (filled, cancelled) or never landed: ask the venue what it knows.
                try:
                    found = await self._lookup(client_order_id, o.symbol)
                except VenueError:
                    return False
                if found is None:
                    if track.unconfirmed_since is not None or o.status is OrderStatus.NEW:
                        self._close_unplaced(track, "cancelled: never reached the venue")
                        return True
                    return False
                await self._apply(track, found)
                return track.terminal_sent
            log.warning("venue %s: cancel %s failed: %s", self.name, client_order_id, err)
            return False
        if not STATUS.get(str(raw.get("status") or "").lower(), OrderStatus.SUBMITTED).is_terminal:
            try:
                raw = await self._lookup(client_order_id, o.symbol) or {"status": "canceled"}
            except VenueError:
                raw = {"status": "canceled", "filled": o.filled_qty}
        await self._apply(track, raw)
        return True

    def _close_unplaced(self, track: _Track, reason: str) -> None:
        track.unconfirmed_since = None
        track.terminal_sent = True
        track.order.status = OrderStatus.CANCELLED
        self._working.discard(track.order.client_order_id)
        self._emit(track.order.client_order_id, OrderStatus.CANCELLED, reason)

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
        """Cancel every open entry order, one request per order, `halt_concurrency` at once.

        Stops (the positions' protection) and exits (close-all) are never touched, so nothing needs re-placing; the
        venue's cancel-all endpoints (which would take them too) are never used. The orders this
        broker tracks are cancelled at once; meanwhile the venue's open orders are listed, and any
        entry there that we do not track (placed before a restart) is cancelled too. Returns the
        client ids (or `#venue ids`) that could not be cancelled; safe to call again."""
        syms = list(symbols or sorted({t.order.symbol for t in self._tracks.values()} | set(self.symbols)))
        sem = asyncio.Semaphore(self.venue.timeouts.halt_concurrency)
        started: set[str] = set()

        async def one(key: str, sym: str, vid: str | None) -> str | None:
            async with sem:
                if not key.startswith("#"):
                    try:
                        return None if await self.cancel(key) else key
                    except VenueError:
                        return key
                try:
                    await self._retry("cancel", self.ex.cancel_order, vid, sym)
                    return None
                except VenueError as err:
                    return None if err.kind is Failure.NOT_FOUND else key

        def launch(key: str, sym: str, vid: str | None) -> asyncio.Task | None:
            if key in started:
                return None
            started.add(key)
            return asyncio.ensure_future(one(key, sym, vid))

        tasks = [launch(c, self._tracks[c].order.symbol, self._tracks[c].order.venue_order_id)
                 for c in list(self._working) if self._is_entry(self._tracks[c]) and self._tracks[c].order.symbol in syms]
        listed = await asyncio.gather(*(self._open_brief(s) for s in syms), return_exceptions=True)
        for sym, res in zip(syms, listed):
            if isinstance(res, BaseException):
                continue  # what we track is being cancelled; a later call retries the listing
            for cid, vid, is_stop in res:
                t = self._tracks.get(cid) if cid else None
                if is_stop or (t is not None and not self._is_entry(t)):
                    continue  # stops protect; exits (close-all) reduce: both stay
                # Untracked (placed before a restart): by client id, so it is adopted and reported.
                tasks.append(launch(cid or f"#{vid}", sym, vid))
        failed = await asyncio.gather(*(t for t in tasks if t is not None))
        return [k for k in failed if k is not None]

    @staticmethod
    def _is_entry(t: _Track) -> bool:
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

    def _raw_is_stop(self, raw: dict) -> bool:
        cid = raw.get("clientOrderId")
        if cid in self._tracks:
            return self._tracks[cid].is_stop
        info = raw.get("info") or {}
        return (raw.get("triggerPrice") not in (None, 0, "0") or "STOP" in str(info.get("type", "")).upper()
                or bool(info.get("stopOrderType")))

    def _adopt(self, raw: dict) -> _Track:
        """Track a venue order we did not place this session, so its fills and end are reported."""
        cid = raw.get("clientOrderId") or f"venue-{raw.get('id')}"
        if cid in self._tracks:
            return self._tracks[cid]
        o = self._to_order(raw)
        o.filled_qty = ZERO  # its past fills are already in the journal
        t = _Track(o, is_stop=self._raw_is_stop(raw), submitted_ms=int(raw.get("timestamp") or time.time() * 1000))
        self._tracks[cid] = t
        if o.venue_order_id:
            self._by_venue_id[o.venue_order_id] = cid
        if not o.status.is_terminal:
            self._working.add(cid)
            self._trade_cursor.setdefault(o.symbol, int(time.time() * 1000) - 5000)
            for tr in raw.get("trades") or []:
                t.trade_ids.add(str(tr.get("id")))
        return t

    def _to_order(self, raw: dict) -> Order:
        info = raw.get("info") or {}
        trig = raw.get("triggerPrice")
        stop = trig not in (None, 0, "0") or "STOP" in str(info.get("type", "")).upper() or bool(info.get("stopOrderType"))
        otype = OrderType.STOP if stop else (OrderType.LIMIT if raw.get("type") == "limit" else OrderType.MARKET)
        status = STATUS.get(str(raw.get("status") or "").lower(), OrderStatus.SUBMITTED)
        if status is OrderStatus.SUBMITTED and dec(raw.get("filled")) > 0:
            status = OrderStatus.PARTIALLY_FILLED
        ts = raw.get("timestamp")
        created = datetime.fromtimestamp(ts / 1000, timezone.utc) if ts else self.clock.now()
        return Order(
            client_order_id=raw.get("clientOrderId") or f"venue-{raw.get('id')}", symbol=raw.get("symbol"),
            side=Side(raw.get("side")), type=otype, quantity=dec(raw.get("amount")),
            purpose=OrderPurpose.STOP if stop else OrderPurpose.ENTRY, created_at=created,
            limit_price=dec(raw.get("price")) if otype is OrderType.LIMIT else None,
            stop_price=dec(trig) if stop and trig else None, status=status, filled_qty=dec(raw.get("filled")),
            avg_fill_price=dec(raw.get("average")), venue_order_id=str(raw.get("id")),
        )

    # -- reads ----------------------------------------------------------------------------------
    async def _open_raw(self, symbol: str) -> list[dict]:
        return await self._retry(f"open orders {symbol}", self.ex.fetch_open_orders, symbol)

    async def open_orders(self) -> list[Order]:
        out: list[Order] = []
        for sym in self.symbols:
            for raw in await self._open_raw(sym):
                cid = raw.get("clientOrderId")
                t = self._tracks.get(cid) if cid else None
                out.append(replace(t.order) if t is not None else self._to_order(raw))
        return out

    async def fetch_order(self, client_order_id: str) -> Order | None:
        t = self._tracks.get(client_order_id)
        if t is not None and (t.terminal_sent or t.unconfirmed_since is None):
            return replace(t.order)
        symbols = [t.order.symbol] if t is not None else self.symbols
        for sym in symbols:
            found = await self._lookup(client_order_id, sym)
            if found is None:
                continue
            if t is None:
                t = self._adopt(found)
            else:
                await self._accept(t, found)
            return replace(t.order) if t is not None else self._to_order(found)
        return None

    async def balances(self) -> dict[str, Decimal]:
        bal = await self._retry("balance", self.ex.fetch_balance)
        return {a: dec(v) for a, v in (bal.get("total") or {}).items() if v}

    async def positions(self) -> dict[str, Decimal]:
        """Spot: the traded symbols' base balances (free + locked) are the positions."""
        bal = await self.balances()
        out = {}
        for sym in self.symbols:
            base = self.ex.market(sym)["base"]
            q = bal.get(base, ZERO)
            if q != 0:
                out[sym] = q
        return out

    async def fetch_quotes(self, symbols: list[str] | None = None) -> list[Quote]:
        """Top of book for the symbols, for a venue market-data feed."""
        syms = symbols or self.symbols
        if self.name == "binance":
            tick = await self._retry("book tickers", self.ex.fetch_bids_asks, syms)
        else:
            tick = await self._retry("tickers", self.ex.fetch_tickers, syms)
        from ..feeds.streams import ticker_quote

        now = datetime.now(timezone.utc)  # market data is real time, whatever the engine's clock
        return [q for q in (ticker_quote(s, tick.get(s), now) for s in syms) if q is not None]

    def on_quote(self, quote: Quote) -> None:
        self._last[quote.symbol] = quote  # prices the minimum-notional check of market orders

    def is_dust(self, symbol: str, quantity: Decimal, price: Decimal) -> bool:
        """Too small for any order this venue takes (engine/brokers/minimums.py): dust."""
        from .minimums import below_minimum

        return below_minimum(self.ex, symbol, quantity, price)

    # -- polling (the loop is PollingVenue's) -----------------------------------------------
    async def poll(self) -> None:
        """One round: new trades, orders that left the book, and unconfirmed submits."""
        async with self._poll_lock:
            syms = sorted({self._tracks[c].order.symbol for c in self._working})
            for sym in syms:
                await self._poll_symbol(sym)
            for cid in [c for c in self._working if self._tracks[c].unconfirmed_since is not None]:
                await self._resolve_unconfirmed(self._tracks[cid])

    async def _poll_symbol(self, sym: str) -> None:
        since = self._trade_cursor.get(sym)
        trades = await self._retry(f"trades {sym}", self.ex.fetch_my_trades, sym, since)
        newest = since or 0
        for t in trades:
            cid = self._by_venue_id.get(str(t.get("order")))
            if cid is not None:
                self._apply_trade(self._tracks[cid], t)
            newest = max(newest, int(t.get("timestamp") or 0))
        if newest:
            self._trade_cursor[sym] = newest - 1000  # overlap; trade ids dedupe
        open_ids = {str(o.get("id")) for o in await self._open_raw(sym)}
        for cid in [c for c in self._working if self._tracks[c].order.symbol == sym]:
            t = self._tracks[cid]
            if t.unconfirmed_since is not None or t.order.venue_order_id in open_ids:
                continue
            found = await self._lookup(cid, sym)
            if found is not None:
                await self._apply(t, found)

    async def _resolve_unconfirmed(self, track: _Track) -> None:
        o = track.order
        found = await self._lookup(o.client_order_id, o.symbol)
        if found is not None:
            await self._accept(track, found)
            return
        if time.monotonic() - (track.unconfirmed_since or 0) > self.venue.timeouts.unconfirmed_grace_seconds:
            track.unconfirmed_since = None
            self._reject(track, f"{self.name} never confirmed the order after a timeout; it is not at the venue")

