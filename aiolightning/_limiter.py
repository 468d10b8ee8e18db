"""Rate-limit-aware concurrency: one AIMD in-flight cap, pause gate and token bucket per scope.

Every attempt of every request takes a slot of its scope ("read", "write", "presign",
"data", or any string) and gives it back with its outcome:

* success: after a clean window (as many successes as the current cap, with no throttle in
  between) the cap grows by one, up to ``max``;
* throttled (429/503): the cap shrinks ×``decrease`` (at least ``min``), once per window:
  requests that were already in flight when the cap shrank don't shrink it again. With a
  ``Retry-After``, the scope's **pause gate** closes: no queued or new caller of the scope
  gets a slot until the time has passed (plus a little jitter);
* error: counted, cap unchanged.

Optionally a token bucket (``rate`` requests/s, ``burst``) paces slot grants.

The fast path (a free slot, no queue, no pause, no bucket) is a few attribute operations and
no allocation; waiting callers are queued FIFO on plain futures and handed a slot directly
when one frees, so a cancelled waiter can never leak a slot.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import overload

__all__ = [
    "Limiter",
    "LimiterConfig",
    "ScopeConfig",
    "ScopeLimiter",
    "ScopeStats",
    "Slot",
]

_monotonic = time.monotonic


@dataclass(frozen=True, slots=True)
class ScopeConfig:
    """Limits of one scope. ``rate``/``burst`` enable the token bucket (requests/s)."""

    initial: int = 32
    max: int = 256
    min: int = 1
    rate: float | None = None
    burst: float | None = None
    decrease: float = 0.7
    #: extra random wait, as a fraction of the pause, added once when a pause gate opens
    pause_jitter: float = 0.1


@dataclass(frozen=True, slots=True)
class LimiterConfig:
    """Limiter settings: defaults for every scope, plus per-scope overrides.

    ``LimiterConfig(initial=32, max=256, per_scope={"data": ScopeConfig(initial=8, max=16)})``.
    Every cap is also clamped to the connector's pool size (``pool_size`` of the Limiter).
    """

    initial: int = 32
    max: int = 256
    min: int = 1
    rate: float | None = None
    burst: float | None = None
    decrease: float = 0.7
    pause_jitter: float = 0.1
    per_scope: Mapping[str, ScopeConfig] = field(default_factory=dict)

    def for_scope(self, scope: str) -> ScopeConfig:
        cfg = self.per_scope.get(scope)
        if cfg is not None:
            return cfg
        return ScopeConfig(
            initial=self.initial,
            max=self.max,
            min=self.min,
            rate=self.rate,
            burst=self.burst,
            decrease=self.decrease,
            pause_jitter=self.pause_jitter,
        )


@dataclass(frozen=True, slots=True)
class ScopeStats:
    """A snapshot of one scope's counters."""

    scope: str
    requests: int
    retries: int
    throttles: int
    errors: int
    in_flight: int
    waiting: int
    cap: int
    max: int
    paused_for: float
    """seconds left before the pause gate opens (0.0 when open)"""
    paused_until: float | None
    """``time.monotonic()`` value when the gate opens, or None when open"""


class ScopeLimiter:
    """The limiter of one scope. Obtain with ``limiter.scope(name)``."""

    __slots__ = (
        "_burst",
        "_epoch",
        "_jitter_frac",
        "_rate",
        "_successes",
        "_timer",
        "_timer_at",
        "_tokens",
        "_tokens_at",
        "_waiters",
        "cap",
        "decrease",
        "errors",
        "in_flight",
        "max",
        "min",
        "name",
        "paused_until",
        "requests",
        "retries",
        "throttles",
    )

    def __init__(self, name: str, cfg: ScopeConfig, pool_size: int | None) -> None:
        hard = cfg.max if not pool_size else min(cfg.max, pool_size)
        self.name = name
        self.min = max(1, min(cfg.min, hard))
        self.max = max(self.min, hard)
        self.cap = max(self.min, min(cfg.initial, self.max))
        self.decrease = cfg.decrease
        self._jitter_frac = cfg.pause_jitter
        self.in_flight = 0
        self.paused_until = 0.0
        self.requests = 0
        self.retries = 0
        self.throttles = 0
        self.errors = 0
        self._successes = 0
        self._epoch = 0
        self._waiters: deque[asyncio.Future[int]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._rate = cfg.rate
        if cfg.rate is not None:
            if cfg.rate <= 0:
                raise ValueError("rate must be > 0")
            self._burst = max(1.0, cfg.burst if cfg.burst is not None else cfg.rate)
        else:
            self._burst = 0.0
        self._tokens = self._burst
        self._tokens_at = _monotonic()

    # acquire / release ---------------------------------------------------------------------

    async def acquire(self) -> int:
        """Wait for a slot; returns a ticket to hand back to :meth:`release`.

        Cancellation-safe: a caller cancelled while queued takes nothing, and one cancelled
        just after being granted a slot gives it back.
        """
        if (
            self.in_flight < self.cap
            and not self._waiters
            and (not self.paused_until or self.paused_until <= _monotonic())
            and (self._rate is None or self._take_token(_monotonic()) == 0.0)
        ):
            self.in_flight += 1
            self.requests += 1
            return self._epoch
        return await self._acquire_slow()

    async def _acquire_slow(self) -> int:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._wake()
        try:
            return await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                # granted a slot, then cancelled before we could use it: give it back
                self.in_flight -= 1
                self.requests -= 1
                self._wake()
            else:
                fut.cancel()
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            raise

    def release(
        self, ticket: int, *, outcome: str = "ok", retry_after: float | None = None
    ) -> None:
        """Give a slot back. ``outcome``: "ok", "throttled" (429/503), "error", "cancelled"."""
        self.in_flight -= 1
        if outcome == "ok":
            self._successes += 1
            if self._successes >= self.cap and self.cap < self.max:
                self.cap += 1
                self._successes = 0
        elif outcome == "throttled":
            self.throttled(ticket, retry_after)
        elif outcome == "error":
            self.errors += 1
        if self._waiters:
            self._wake()

    def throttled(self, ticket: int, retry_after: float | None = None) -> None:
        """Record a 429/503 for a request that held ``ticket`` (slot accounting aside)."""
        self.throttles += 1
        self._successes = 0
        if ticket == self._epoch:
            self._epoch += 1
            self.cap = max(self.min, math.floor(self.cap * self.decrease))
        if retry_after is not None and retry_after > 0:
            self.pause(retry_after)

    def pause(self, seconds: float) -> None:
        """Close the gate for ``seconds`` (extends, never shortens, a current pause)."""
        jitter = seconds * self._jitter_frac * random.random() if self._jitter_frac else 0.0
        until = _monotonic() + seconds + min(jitter, 1.0)
        if until > self.paused_until:
            self.paused_until = until

    def note_retry(self) -> None:
        self.retries += 1

    # internals -----------------------------------------------------------------------------

    def _take_token(self, now: float) -> float:
        """Take one token; 0.0 if taken, else seconds until one is available."""
        tokens = self._tokens + (now - self._tokens_at) * self._rate  # type: ignore[operator]
        if tokens > self._burst:
            tokens = self._burst
        self._tokens_at = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return (1.0 - tokens) / self._rate  # type: ignore[operator]

    def _wake(self) -> None:
        """Hand free slots to queued callers, or arm a timer for when the gate/bucket opens."""
        waiters = self._waiters
        while waiters:
            if waiters[0].done():  # cancelled waiter not yet removed
                waiters.popleft()
                continue
            if self.in_flight >= self.cap:
                return
            now = _monotonic()
            if self.paused_until > now:
                self._arm(self.paused_until)
                return
            if self._rate is not None:
                wait = self._take_token(now)
                if wait > 0.0:
                    self._arm(now + wait)
                    return
            fut = waiters.popleft()
            self.in_flight += 1
            self.requests += 1
            fut.set_result(self._epoch)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            if self._timer_at <= when and not self._timer.cancelled():
                # an earlier timer will re-check (and re-arm) by itself
                return
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = when
        self._timer = loop.call_later(max(0.0, when - _monotonic()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake()

    def stats(self) -> ScopeStats:
        now = _monotonic()
        paused = self.paused_until > now
        return ScopeStats(
            scope=self.name,
            requests=self.requests,
            retries=self.retries,
            throttles=self.throttles,
            errors=self.errors,
            in_flight=self.in_flight,
            waiting=sum(1 for f in self._waiters if not f.done()),
            cap=self.cap,
            max=self.max,
            paused_for=(self.paused_until - now) if paused else 0.0,
            paused_until=self.paused_until if paused else None,
        )

    def __repr__(self) -> str:
        return (
            f"<ScopeLimiter {self.name!r} cap={self.cap}/{self.max} in_flight={self.in_flight}"
            f" waiting={len(self._waiters)}>"
        )


class Slot:
    """A held slot (from :meth:`Limiter.slot`); report a throttle or an error on it."""

    __slots__ = ("_scope", "_ticket", "outcome", "retry_after")

    def __init__(self, scope: ScopeLimiter, ticket: int) -> None:
        self._scope = scope
        self._ticket = ticket
        self.outcome = "ok"
        self.retry_after: float | None = None

    def throttle(self, retry_after: float | None = None) -> None:
        """Mark the request as throttled (429/503); ``retry_after`` closes the pause gate."""
        self.outcome = "throttled"
        self.retry_after = retry_after

    def fail(self) -> None:
        self.outcome = "error"


class Limiter:
    """Per-scope limiters, created on first use from a :class:`LimiterConfig`.

    ``pool_size`` is the connector's connection limit; every cap stays at or below it.
    """

    def __init__(self, config: LimiterConfig | None = None, *, pool_size: int | None = None):
        self.config = config or LimiterConfig()
        self.pool_size = pool_size or None
        self._scopes: dict[str, ScopeLimiter] = {}

    def scope(self, name: str) -> ScopeLimiter:
        s = self._scopes.get(name)
        if s is None:
            s = self._scopes[name] = ScopeLimiter(name, self.config.for_scope(name), self.pool_size)
        return s

    @asynccontextmanager
    async def slot(self, scope: str) -> AsyncIterator[Slot]:
        """``async with limiter.slot("data") as slot:`` hold one slot of ``scope``.

        Leaving with an exception records an error, unless ``slot.throttle()`` was called.
        """
        s = self.scope(scope)
        ticket = await s.acquire()
        slot = Slot(s, ticket)
        try:
            yield slot
        except BaseException as exc:
            if slot.outcome == "ok":
                slot.outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
            raise
        finally:
            s.release(ticket, outcome=slot.outcome, retry_after=slot.retry_after)

    @overload
    def stats(self) -> dict[str, ScopeStats]: ...
    @overload
    def stats(self, scope: str) -> ScopeStats: ...
    def stats(self, scope: str | None = None) -> dict[str, ScopeStats] | ScopeStats:
        """``stats()`` -> ``{scope: ScopeStats}``; ``stats("read")`` -> one ScopeStats."""
        if scope is not None:
            return self.scope(scope).stats()
        return {name: s.stats() for name, s in self._scopes.items()}

    def __repr__(self) -> str:
        return f"<Limiter scopes={sorted(self._scopes)} pool_size={self.pool_size}>"
