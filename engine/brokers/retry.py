"""Retry with bounded, jittered exponential backoff, and the failure classes a venue call falls in.

Every venue adapter maps its library's exceptions onto `Failure` (ccxt_errors / alpaca_errors do),
then `with_retry` decides: rate limits and transient failures (timeouts, 5xx, dropped
connections) back off and retry a bounded number of times, each one counted through
`on_failure` (the engine wires that to its API-failure breaker); final failures (insufficient
funds, invalid order, authentication) are raised at once. A request whose outcome is unknown
(a timeout or a 5xx on a *submit*) must not be blindly repeated: `with_retry(..., ambiguous=...)`
lets the caller look the order up by its client id before anything is sent again.

A rate limit that says how long to stay away (Retry-After, Binance's "banned until", a reset
timestamp: `retry_after_seconds`) opens a broker-wide quiet window (`Retrier.rate_limited`): every
request of the broker waits for its end before it is sent (`wait_quiet`), or, when the wait would
be longer than `RetryPolicy.quiet_wait_seconds` (a ban), fails at once without being sent
(`RateLimitHold`). Sending during the window only earns a longer ban (Binance turns repeated 429s
into a 418 IP ban that blocks cancels too). The window is one episode: it counts as one API
failure, not one per request refused in it.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import math
import random
import re
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable, Mapping, TypeVar

T = TypeVar("T")
log = logging.getLogger("tradeconsole.venue")


class Failure(str, enum.Enum):
    RATE_LIMIT = "rate_limit"  # 429/418, venue "too many requests": not processed, back off
    TIMEOUT = "timeout"  # no answer in time: the request may or may not have been processed
    TRANSIENT = "transient"  # 5xx, connection reset, maintenance: may have been processed
    NOT_FOUND = "not_found"  # unknown order
    FINAL = "final"  # insufficient funds, invalid order, bad symbol, auth, permission


class VenueError(Exception):
    """A venue call failed; `kind` says how. The message is redacted (no keys) and short."""

    # A rate limit heard inside a quiet window already counted (a request that was in flight when
    # the first refusal came back): the same episode, not another API failure.
    repeat = False

    def __init__(self, kind: Failure, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def final(self) -> bool:
        return self.kind in (Failure.FINAL, Failure.NOT_FOUND)

    @property
    def ambiguous(self) -> bool:
        """The request may have reached the venue and taken effect."""
        return self.kind in (Failure.TIMEOUT, Failure.TRANSIENT)


class RateLimitHold(VenueError):
    """Not sent: the venue's quiet window lasts longer than a request may wait for it."""

    repeat = True


# The longest quiet window honoured. Binance's 418 bans run from minutes to days; past this one
# request probes (and, still banned, hears the ban again) rather than a garbled header silencing
# the broker for good.
MAX_QUIET_SECONDS = 600.0
_BANNED_UNTIL = re.compile(r"banned until (\d{12,14})")


def retry_after_seconds(headers: Mapping[str, Any] | None, body: str | None, now: datetime) -> float | None:
    """How long the venue asked us to stay away, from a rate-limit reply; None when it did not say.

    `Retry-After` (seconds or an HTTP date; Binance, Alpaca), Binance's 418 body "IP banned until
    <epoch ms>", then a reset time (Bybit `X-Bapi-Limit-Reset-Timestamp` in ms, Alpaca
    `X-RateLimit-Reset` in s). `now` is the engine's wall time (what the venue's epochs are read
    against). Bounded by MAX_QUIET_SECONDS."""
    h = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    secs: float | None = None
    raw = h.get("retry-after", "").strip()
    if raw:
        try:
            secs = float(raw)
        except ValueError:
            try:
                secs = (parsedate_to_datetime(raw) - now).total_seconds()
            except (TypeError, ValueError):
                secs = None
    if secs is None and body:
        m = _BANNED_UNTIL.search(body)
        if m:
            secs = int(m.group(1)) / 1000 - now.timestamp()
    if secs is None:
        for name, scale in (("x-bapi-limit-reset-timestamp", 1000), ("x-ratelimit-reset", 1)):
            try:
                secs = float(h[name]) / scale - now.timestamp()
                break
            except (KeyError, ValueError):
                continue
    if secs is None or not math.isfinite(secs) or secs <= 0:
        return None
    return min(secs, MAX_QUIET_SECONDS)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 3
    base_seconds: float = 0.5
    max_seconds: float = 8.0
    jitter: float = 0.5  # each delay is scaled by a random factor in [1 - jitter, 1]
    rate_limit_factor: float = 2.0  # rate limits wait longer than plain transient failures
    # A request waits out a quiet window up to this long (Binance's 429 windows end with the minute);
    # a longer one (a ban) fails it at once, so a halt's cancels or a stop never hang on a ban.
    quiet_wait_seconds: float = 60.0

    def delay(self, attempt: int, kind: Failure, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (0-based)."""
        base = self.base_seconds * (2 ** attempt)
        if kind is Failure.RATE_LIMIT:
            base *= self.rate_limit_factor
        base = min(base, self.max_seconds)
        r = (rng or random).random()
        return base * (1 - self.jitter * r)


Sleep = Callable[[float], Awaitable[None]]


class Retrier:
    """Runs venue calls under a policy; counts every failure that a breaker should know of."""

    def __init__(self, policy: RetryPolicy, on_failure: Callable[[Failure, str], None] | None = None,
                 sleep: Sleep = asyncio.sleep, rng: random.Random | None = None,
                 now: Callable[[], float] | None = None,
                 on_quiet: Callable[[float, bool, str], None] | None = None) -> None:
        self.policy = policy
        self.on_failure = on_failure
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.counts: dict[Failure, int] = {k: 0 for k in Failure}
        self.retries = 0
        # The quiet window is read on the broker's clock (its monotonic time), in seconds.
        self.now = now or time.monotonic
        self.on_quiet = on_quiet  # (seconds, new episode, what): log / alert, once per window
        self.quiet_until: float | None = None
        self.episodes = 0  # quiet windows opened
        self.held = 0  # requests not sent because a window outlasted their wait

    def note(self, err: VenueError, what: str) -> None:
        if isinstance(err, RateLimitHold):
            self.held += 1
            return  # never sent: the window's episode was counted when it opened
        self.counts[err.kind] += 1
        if err.kind is Failure.RATE_LIMIT and err.repeat:
            return
        if err.kind in (Failure.RATE_LIMIT, Failure.TIMEOUT, Failure.TRANSIENT) and self.on_failure is not None:
            try:
                self.on_failure(err.kind, what)
            except Exception:  # a broken hook must not break the venue path; it is told, not hidden
                log.exception("venue: the API-failure hook failed on %s", what)

    # -- the quiet window -------------------------------------------------------------------------
    def quiet_left(self) -> float:
        if self.quiet_until is None:
            return 0.0
        left = self.quiet_until - self.now()
        if left <= 0:
            self.quiet_until = None
            return 0.0
        return left

    def rate_limited(self, err: VenueError, seconds: float | None, what: str) -> None:
        """A rate limit came back. Inside an open window it is the same episode (`err.repeat`);
        with a wait the venue named, the window opens or grows; without one the caller's
        exponential backoff is all there is, as before."""
        in_episode = self.quiet_left() > 0
        if in_episode:
            err.repeat = True
        if seconds is None or seconds <= 0:
            return
        until = self.now() + min(seconds, MAX_QUIET_SECONDS)
        if self.quiet_until is not None and until <= self.quiet_until:
            return
        self.quiet_until = until
        if not in_episode:
            self.episodes += 1
        if self.on_quiet is not None:
            try:
                self.on_quiet(min(seconds, MAX_QUIET_SECONDS), not in_episode, what)
            except Exception:  # a broken hook must not break the venue path; it is told, not hidden
                log.exception("venue: the quiet-window hook failed on %s", what)

    async def wait_quiet(self, what: str) -> None:
        """Hold a request until the quiet window ends; one that would wait longer than the policy
        allows is not sent at all (RateLimitHold). Bounded: a window that keeps growing while we
        wait is re-read a few times, never waited on without limit."""
        for _ in range(4):
            left = self.quiet_left()
            if left <= 0:
                return
            if left > self.policy.quiet_wait_seconds:
                raise RateLimitHold(Failure.RATE_LIMIT, f"not sent ({what}): the venue asked for quiet, "
                                                        f"{left:.0f} s left")
            await self.sleep(left)
        if self.quiet_left() > 0:
            raise RateLimitHold(Failure.RATE_LIMIT, f"not sent ({what}): the venue keeps asking for quiet")

    async def backoff(self, attempt: int, kind: Failure) -> None:
        self.retries += 1
        if kind is Failure.RATE_LIMIT and self.quiet_left() > 0:
            return  # the venue named its wait: the next request waits for the window instead
        await self.sleep(self.policy.delay(attempt, kind, self.rng))

    async def run(self, what: str, fn: Callable[[], Awaitable[T]],
                  ambiguous: Callable[[VenueError], Awaitable[bool]] | None = None, *, patient: bool = True) -> T:
        """Call `fn` until it succeeds, fails for good, or the retries are spent.

        On an ambiguous failure (timeout/5xx) `ambiguous(err)` runs first, if given; returning
        False stops the retries (the caller resolved it, or must not send again) and the error
        is raised. `patient=False` (the quote feed, whose caller is the engine's loop) never
        waits for a quiet window: the call fails at once instead, unsent."""
        attempt = 0
        while True:
            if not patient and self.quiet_left() > 0:
                raise RateLimitHold(Failure.RATE_LIMIT, f"not sent ({what}): the venue asked for quiet, "
                                                        f"{self.quiet_left():.0f} s left")
            try:
                return await fn()
            except VenueError as err:
                self.note(err, what)
                if (err.final or attempt >= self.policy.retries or isinstance(err, RateLimitHold)
                        or (not patient and err.kind is Failure.RATE_LIMIT and self.quiet_left() > 0)):
                    raise
                await self.backoff(attempt, err.kind)
                attempt += 1
                if err.ambiguous and ambiguous is not None and not await ambiguous(err):
                    raise


class TokenBucket:
    """A budget of requests: `capacity` at once, refilled at `rate` per second. Venues count
    request weight per minute, so a halt may burst through the budget it has saved."""

    def __init__(self, capacity: float, rate: float, now: Callable[[], float]) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self._now = now
        self._t = now()

    def _refill(self) -> None:
        t = self._now()
        self.tokens = min(self.capacity, self.tokens + (t - self._t) * self.rate)
        self._t = t

    async def take(self, cost: float = 1.0, sleep: Sleep = asyncio.sleep) -> None:
        cost = min(cost, self.capacity)
        while True:
            self._refill()
            if self.tokens >= cost:
                self.tokens -= cost
                return
            await sleep((cost - self.tokens) / self.rate)


# A window this long is worth the operator's eye even when requests only wait for it.
ALERT_QUIET_SECONDS = 10.0


class QuietNotice:
    """Says a quiet window once: a log line when it opens, an alert when it is long (a warning;
    critical when requests fail without being sent, cancels and stops included), never per
    request. `broker` gives `name`, `clock`, `alerts` (the engine's AlertBus, or None) and
    `retrier`."""

    def __init__(self, broker: Any, log: Any) -> None:
        self.broker = broker
        self.log = log
        self._said: tuple[int, str] = (0, "")  # (episode, the loudest thing said in it)

    def __call__(self, seconds: float, new: bool, what: str) -> None:
        b = self.broker
        r = b.retrier
        refused = seconds > r.policy.quiet_wait_seconds
        level = "critical" if refused else ("warning" if seconds >= ALERT_QUIET_SECONDS else "log")
        episode, said = self._said
        if episode == r.episodes and _LOUDNESS[level] <= _LOUDNESS[said]:
            return
        self._said = (r.episodes, level)
        then = "requests fail without being sent until then, cancels and stops included" if refused \
            else "requests wait for it"
        msg = f"{b.name} rate limit: the venue asked for {seconds:.0f} s of quiet (on {what}); {then}"
        self.log.warning("venue %s", msg)
        if level != "log" and getattr(b, "alerts", None) is not None:
            try:
                b.alerts.publish(level, "venue_rate_limit", msg, b.clock.now(), seconds=round(seconds, 1))
            except Exception:  # an alert that cannot be raised must not break the venue path
                self.log.exception("venue %s: rate-limit alert failed", b.name)


_LOUDNESS = {"": 0, "log": 1, "warning": 2, "critical": 3}
