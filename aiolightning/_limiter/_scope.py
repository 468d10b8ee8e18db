"""The limiter of one scope: the AIMD cap, pause gate and (adaptive) token bucket composed.

Every attempt of every request takes a slot of its scope ("read", "write", "presign",
"data", or any string) and gives it back with its outcome: "ok" and "throttled" move the
AIMD cap (:mod:`._aimd`), a throttle with a ``Retry-After`` closes the pause gate
(:mod:`._pause_gate`), and the adaptive rate (:mod:`._adaptive`) paces grants with a token
bucket (:mod:`._bucket`) from the first throttle on; "error" is counted.

The fast path (a free slot, no queue, no pause, no bucket) is a few attribute operations and
no allocation (plus one clock read on release, for the rate measurement); waiting callers
are queued FIFO on plain futures and handed a slot directly when one frees, so a cancelled
waiter can never leak a slot.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

from ._adaptive import AdaptiveRate
from ._aimd import AimdCap
from ._bucket import TokenBucket
from ._config import ScopeStats
from ._pause_gate import PauseGate

if TYPE_CHECKING:
    from ._config import ScopeConfig

__all__ = ["ScopeLimiter"]

_monotonic = time.monotonic


class ScopeLimiter(AimdCap):
    """The limiter of one scope. Obtain with ``limiter.scope(name)``."""

    __slots__ = (
        "_adaptive",
        "_bucket",
        "_gate",
        "_max_limited_by",
        "_timer",
        "_timer_at",
        "_waiters",
        "errors",
        "in_flight",
        "name",
        "requests",
        "retries",
        "throttles",
    )

    def __init__(self, name: str, cfg: ScopeConfig, pool_size: int | None) -> None:
        super().__init__(cfg, pool_size)
        self.name = name
        self._max_limited_by = (
            f"connector pool size {pool_size} (connector_limit), below the configured max {cfg.max}"
            if pool_size and pool_size < cfg.max
            else None
        )
        self.in_flight = 0
        self.requests = 0
        self.retries = 0
        self.throttles = 0
        self.errors = 0
        self._waiters: deque[asyncio.Future[int]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._gate = PauseGate(cfg)
        now = _monotonic()
        self._adaptive = AdaptiveRate(cfg, now)
        # the token bucket: off (None) until a fixed rate or the adaptive rate engages one
        self._bucket: TokenBucket | None = None
        if cfg.rate is not None:
            burst = max(1.0, cfg.burst if cfg.burst is not None else cfg.rate)
            self._bucket = TokenBucket(cfg.rate, burst, now)

    @property
    def paused_until(self) -> float:
        """``time.monotonic()`` value when the pause gate opens; 0.0 while it is open."""
        return self._gate.until

    # acquire / release ---------------------------------------------------------------------

    async def acquire(self) -> int:
        """Wait for a slot; returns a ticket to hand back to :meth:`release`.

        Cancellation-safe: a caller cancelled while queued takes nothing, and one cancelled
        just after being granted a slot gives it back.
        """
        if (
            self.in_flight < self.cap
            and not self._waiters
            and not self._gate.until
            and (self._bucket is None or self._bucket.take(_monotonic()) == 0.0)
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
        """Give a slot back. ``outcome``: "ok", "throttled" (a 429, or a 503 with Retry-After), "error", "cancelled"."""
        self.in_flight -= 1
        if outcome == "ok":
            self._grow()
        elif outcome == "throttled":
            self.throttled(ticket, retry_after)
        elif outcome == "error":
            self.errors += 1
        now = _monotonic()
        adaptive = self._adaptive
        if now >= adaptive.clock_next:
            adaptive.tick(now, self.requests, self._bucket)
        if self._waiters:
            self._wake()

    def throttled(self, ticket: int, retry_after: float | None = None) -> None:
        """Record a throttle (a 429, or a 503 with Retry-After) for a request that held ``ticket`` (slot accounting aside)."""
        self.throttles += 1
        if self._shrink(ticket) and self._adaptive.enabled:
            self._bucket = self._adaptive.decrease(_monotonic(), self.requests, self._bucket)
        if retry_after is not None and retry_after > 0:
            self.pause(retry_after)

    def pause(self, seconds: float) -> None:
        """Close the gate for ``seconds`` (extends, never shortens, a current pause)."""
        self._gate.pause(seconds, _monotonic())

    def note_retry(self) -> None:
        self.retries += 1

    # internals -----------------------------------------------------------------------------

    def _wake(self) -> None:
        """Hand free slots to queued callers, or arm a timer for when the gate/bucket opens."""
        waiters = self._waiters
        gate = self._gate
        while waiters:
            if waiters[0].done():  # cancelled waiter not yet removed
                waiters.popleft()
                continue
            if self.in_flight >= self.cap:
                return
            now = _monotonic()
            if gate.until:
                at = gate.check(now, waiters)
                if at:
                    self._arm(at)
                    return
            if self._bucket is not None:
                wait = self._bucket.take(now)
                if wait > 0.0:
                    self._arm(now + wait)
                    return
            if gate.until:
                gate.let_through()
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
        until = self._gate.until
        paused = until > now
        bucket = self._bucket
        adaptive = self._adaptive
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
            paused_for=(until - now) if paused else 0.0,
            paused_until=until if paused else None,
            rate=None if bucket is None else bucket.rate,
            measured_rate=max(adaptive.measured, 0.0),
            rate_max=adaptive.w_max if adaptive.enabled and bucket is not None else None,
            max_limited_by=self._max_limited_by,
        )

    def __repr__(self) -> str:
        rate = "" if self._bucket is None else f" rate={self._bucket.rate:.3g}/s"
        return (
            f"<ScopeLimiter {self.name!r} cap={self.cap}/{self.max} in_flight={self.in_flight}"
            f" waiting={len(self._waiters)}{rate}>"
        )
