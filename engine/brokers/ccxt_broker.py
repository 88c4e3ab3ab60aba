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
  * `cancel_entries(symbols)` cancels, one by one (bounded concurrency), the engine's own open
    orders except stop orders (the trader's and other bots' are left, and said once per halt):
    the venue cancel-all endpoints are never used, so a halt never takes a stop and nothing has
    to be re-placed.

Events: fills come from the create response when the venue gives them (Binance FULL), then from
polling `fetch_my_trades` per symbol with working orders, and order states from open orders and
lookups by client id; each becomes `Fill` / `OrderUpdate` with Decimal money, read strictly: a fill
whose numbers cannot be read is not booked but alerted, its order left for reconciliation
(engine/brokers/venue_fields.py). A fee charged in the base asset is converted to the quote
currency and the fill's quantity is the base amount that actually moved, so cash and positions
match the venue's balances.

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
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import urlsplit

from ..clock import Clock
from ..models import Quote
from ..venue_config import VenueSection
from .base import BrokerEvent
from .ccxt_cancels import CcxtCancelMixin
from .ccxt_errors import AUTH_CODES, BINANCE_CODES, BYBIT_CODES, classify, is_auth_error
from .ccxt_orders import CcxtOrderLifecycleMixin, TrackedOrder
from .ccxt_payloads import BINANCE_STATUS, STATUS, CcxtPayloadMixin, binance_unified
from .ccxt_polling import CcxtPollingMixin
from .keys import EnvironmentReport, KeyPair, auth_refused, check_environment, endpoint_environment
from .polling import PollingVenue
from .retry import Failure, QuietNotice, Retrier, RetryPolicy, TokenBucket, VenueError, retry_after_seconds
from .venue_fields import CLIENT_ID, ZERO, UnreadableFills, UnreadableNumber, number, unreadable_error

# The helpers that lived here before the split stay importable from here (not `dec`, which read
# garbage as 0: engine/brokers/venue_fields.py reads strictly).
__all__ = ["AUTH_CODES", "BINANCE_CODES", "BINANCE_STATUS", "BYBIT_CODES", "CLIENT_ID", "STATUS", "VENUE_BUDGET",
           "ZERO", "CcxtBroker", "binance_unified", "classify", "is_auth_error"]

log = logging.getLogger("tradeconsole.venue")

# Request weight per minute the venue allows one key/IP (ccxt's endpoint costs are in these units).
VENUE_BUDGET = {"binance": 6000, "bybit": 3000}


class CcxtBroker(CcxtOrderLifecycleMixin, CcxtCancelMixin, CcxtPollingMixin, CcxtPayloadMixin, UnreadableFills,
                 PollingVenue):
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
                               self._failure, sleep=sleep, now=clock.monotonic, on_quiet=QuietNotice(self, log))
        self._factory = exchange_factory
        self.ex: Any = None
        self.connected = False
        self.environment = "unknown"  # test | live | local, from the endpoint in use
        self.report: EnvironmentReport | None = None
        self.warnings: list[str] = []
        self._tracks: dict[str, TrackedOrder] = {}
        self._by_venue_id: dict[str, str] = {}
        self._working: set[str] = set()
        self._events: list[BrokerEvent] = []
        self._last: dict[str, Quote] = {}
        self._trade_cursor: dict[str, int] = {}
        self._held_symbols: dict[str, str] = {}  # symbol -> the unreadable fill holding its entries
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
        """One request; any failure becomes a VenueError (redacted, no chained traceback).

        Every request of this broker (quotes, polls, submits, lookups, cancels) passes here, so
        each one waits for a quiet window the venue asked for, or fails unsent if it is too long."""
        await self.retrier.wait_quiet(what)
        try:
            return await fn(*args)  # ccxt bounds each request by its own `timeout`
        except VenueError:
            raise
        except BaseException as exc:  # noqa: BLE001 - classified, never swallowed
            if isinstance(exc, asyncio.CancelledError):
                raise
            err = classify(exc, self.name)
            if err.kind is Failure.RATE_LIMIT:
                headers = getattr(exc, "tc_response_headers", None)
                if headers is None and self.ex is not None:  # raised elsewhere than handle_errors
                    headers = getattr(self.ex, "last_response_headers", None)
                self.retrier.rate_limited(err, retry_after_seconds(headers, str(exc), self.clock.now()), what)
        raise err

    @staticmethod
    def _keep_error_headers(ex: Any) -> None:
        """Pin each error reply's headers (Retry-After) to the exception ccxt's `handle_errors`
        raises for it. `ex.last_response_headers` is shared by every request in flight, so under
        concurrency (a halt's cancels) it may already hold another reply's headers when read."""
        original = ex.handle_errors

        def handle_errors(code: Any, reason: Any, url: Any, method: Any, headers: Any, *rest: Any) -> Any:
            try:
                return original(code, reason, url, method, headers, *rest)
            except Exception as exc:
                exc.tc_response_headers = headers
                raise

        ex.handle_errors = handle_errors

    async def _retry(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.retrier.run(what, lambda: self._call(what, fn, *args))

    def rate_limited_for(self) -> float:
        """Seconds left of a quiet window the venue asked for (0: none); the quote feed skips its
        polls meanwhile rather than wait inside a request."""
        return self.retrier.quiet_left()

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
        # Numbers as the venue's strings, not floats: money goes from the venue's text to Decimal
        # with no binary float between (a float holds 15-17 digits; a 16-digit balance lost its last).
        ex.number = str
        ex.has["fetchCurrencies"] = False  # one request at load_markets, no private currency call
        # ccxt's limiter spaces requests evenly (no burst); venues count weight per minute. Ours is a
        # token bucket over ccxt's per-endpoint weights: a halt can spend saved budget at once.
        ex.throttle = self._throttle
        self._keep_error_headers(ex)
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
        self._start_polling()
        log.info("venue %s connected (%s, %s), key %s", self.name, self.mode, self.environment,
                 self._keys.api_key.fingerprint())

    async def close(self) -> None:
        self.connected = False
        await self._stop_polling()
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
                        rep.buying_power = self._buying_power(rep, b.get("free"))
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
                rep.buying_power = self._buying_power(rep, (bal.get("free") or {}).get(quote))
        except VenueError as err:
            if is_auth_error(err):
                raise auth_refused(self.name, self.mode, str(err)) from None
            raise
        return rep

    def _buying_power(self, rep: EnvironmentReport, raw: Any) -> Decimal | None:
        """The quote asset's free balance; None (unknown) when the venue gives none or garbage,
        which the start's warnings say: it is shown and journaled, never traded on."""
        try:
            return number(raw, f"{self.venue.quote_currency} free balance", missing=None)
        except UnreadableNumber as bad:
            rep.warnings.append(f"{self.name}: buying power unknown: {bad}")
            return None

    # -- reads ----------------------------------------------------------------------------------
    async def balances(self) -> dict[str, Decimal]:
        """Total per asset. An asset the venue lists without a figure is left out, as before. One
        whose figure is garbage fails the read if we trade it (the cash, a symbol's base: a 0 there
        would be a position or cash made up); any other is left out, logged."""
        bal = await self._retry("balance", self.ex.fetch_balance)
        ours = {self.cash_currency} | {self.ex.market(s)["base"] for s in self.symbols if s in self.ex.markets}
        out: dict[str, Decimal] = {}
        for asset, v in (bal.get("total") or {}).items():
            try:
                q = number(v, f"{asset} balance", missing=None)
            except UnreadableNumber as bad:
                if asset in ours:
                    raise unreadable_error(self.name, "balance", bad) from None
                log.warning("venue %s: %s; left out", self.name, bad)
                continue
            if q is not None:
                out[asset] = q
        return out

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
        what, fn = ("book tickers", self.ex.fetch_bids_asks) if self.name == "binance" else ("tickers", self.ex.fetch_tickers)
        # Impatient: the feed's caller is the engine's loop, which must not stall in a quiet window.
        tick = await self.retrier.run(what, lambda: self._call(what, fn, syms), patient=False)
        from ..feeds.streams import ticker_quote

        now = datetime.now(timezone.utc)  # market data is real time, whatever the engine's clock
        return [q for q in (ticker_quote(s, tick.get(s), now) for s in syms) if q is not None]

    def on_quote(self, quote: Quote) -> None:
        self._last[quote.symbol] = quote  # prices the minimum-notional check of market orders

    def is_dust(self, symbol: str, quantity: Decimal, price: Decimal) -> bool:
        """Too small for any order this venue takes (engine/brokers/minimums.py): dust."""
        from .minimums import below_minimum

        return below_minimum(self.ex, symbol, quantity, price)
