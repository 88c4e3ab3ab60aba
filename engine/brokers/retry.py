"""Retry with bounded, jittered exponential backoff, and the failure classes a venue call falls in.

Every venue adapter maps its library's exceptions onto `Failure` (ccxt_errors / alpaca_errors do),
then `with_retry` decides: rate limits and transient failures (timeouts, 5xx, dropped
connections) back off and retry a bounded number of times, each one counted through
`on_failure` (the engine wires that to its API-failure breaker); final failures (insufficient
funds, invalid order, authentication) are raised at once. A request whose outcome is unknown
(a timeout or a 5xx on a *submit*) must not be blindly repeated: `with_retry(..., ambiguous=...)`
lets the caller look the order up by its client id before anything is sent again.
"""
from __future__ import annotations

import asyncio
import enum
import random
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")


class Failure(str, enum.Enum):
    RATE_LIMIT = "rate_limit"  # 429/418, venue "too many requests": not processed, back off
    TIMEOUT = "timeout"  # no answer in time: the request may or may not have been processed
    TRANSIENT = "transient"  # 5xx, connection reset, maintenance: may have been processed
    NOT_FOUND = "not_found"  # unknown order
    FINAL = "final"  # insufficient funds, invalid order, bad symbol, auth, permission


class VenueError(Exception):
    """A venue call failed; `kind` says how. The message is redacted (no keys) and short."""

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


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 3
    base_seconds: float = 0.5
    max_seconds: float = 8.0
    jitter: float = 0.5  # each delay is scaled by a random factor in [1 - jitter, 1]
    rate_limit_factor: float = 2.0  # rate limits wait longer than plain transient failures

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
                 sleep: Sleep = asyncio.sleep, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.on_failure = on_failure
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.counts: dict[Failure, int] = {k: 0 for k in Failure}
        self.retries = 0

    def note(self, err: VenueError, what: str) -> None:
        self.counts[err.kind] += 1
        if err.kind in (Failure.RATE_LIMIT, Failure.TIMEOUT, Failure.TRANSIENT) and self.on_failure is not None:
            try:
                self.on_failure(err.kind, what)
            except Exception:  # a broken hook must not break the venue path
                pass

    async def backoff(self, attempt: int, kind: Failure) -> None:
        self.retries += 1
        await self.sleep(self.policy.delay(attempt, kind, self.rng))

    async def run(self, what: str, fn: Callable[[], Awaitable[T]],
                  ambiguous: Callable[[VenueError], Awaitable[bool]] | None = None) -> T:
        """Call `fn` until it succeeds, fails for good, or the retries are spent.

        On an ambiguous failure (timeout/5xx) `ambiguous(err)` runs first, if given; returning
        False stops the retries (the caller resolved it, or must not send again) and the error
        is raised."""
        attempt = 0
        while True:
            try:
                return await fn()
            except VenueError as err:
                self.note(err, what)
                if err.final or attempt >= self.policy.retries:
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
