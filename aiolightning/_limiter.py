"""Rate-limit-aware concurrency: AIMD in-flight cap, pause gate and adaptive rate per scope.

Every attempt of every request takes a slot of its scope ("read", "write", "presign",
"data", or any string) and gives it back with its outcome:

* success: after a clean window (as many successes as the current cap, with no throttle in
  between) the cap grows by one, up to ``max``;
* throttled (429/503): the cap shrinks ×``decrease`` (at least ``min``), once per window:
  requests that were already in flight when the cap shrank don't shrink it again. With a
  ``Retry-After``, the scope's **pause gate** closes: no queued or new caller of the scope
  gets a slot until the time has passed (plus a little jitter), and the callers queued when
  it opens are let through spread over a short window, not all at once;
* error: counted, cap unchanged.

**Adaptive rate** (the default when no ``rate`` is set): the cap alone cannot hold a
requests/s quota (at 20 ms of latency a cap of 2 already sends 100 requests/s), so each
scope also measures the rate at which it sends (0.5 s windows, smoothed) and, from its
first throttle on, paces slot grants with a token bucket whose rate follows CUBIC, as in
botocore's "adaptive" retry mode: on a throttle (once per window, like the cap)
``W_max`` = the measured send rate (or the bucket rate, if lower), the rate drops to
``0.7·W_max``, then grows as ``0.4·(t − K)³ + W_max`` with ``K = ∛(W_max·0.3/0.4)``: back
to ``W_max`` after ``K`` seconds, then probing above it while no throttle comes, never more
than twice the measured rate (nor less than ``0.7·W_max``); the bucket holds half a second
of tokens. Before the first throttle no bucket exists and the fast path is unchanged.

An explicit ``rate`` (requests/s, ``burst``) is a fixed token bucket from the start; it
adapts like the above only with ``adaptive_rate=True``.

The fast path (a free slot, no queue, no pause, no bucket) is a few attribute operations and
no allocation (plus one clock read on release, for the rate measurement); waiting callers
are queued FIFO on plain futures and handed a slot directly when one frees, so a cancelled
waiter can never leak a slot.
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
from typing import Final, overload

__all__ = [
    "Limiter",
    "LimiterConfig",
    "ScopeConfig",
    "ScopeLimiter",
    "ScopeStats",
    "Slot",
]

_monotonic = time.monotonic

#: send-rate measurement: window length (s) and weight of the newest window (botocore's)
_WINDOW: Final = 0.5
_SMOOTHING: Final = 0.8
#: how often (s) an engaged adaptive bucket recomputes its rate from the CUBIC curve
_TICK: Final = 0.1
#: CUBIC constants (botocore's): scale C and multiplicative decrease β
_CUBIC_C: Final = 0.4
_CUBIC_BETA: Final = 0.7
#: the adaptive rate never exceeds this × the measured send rate (botocore's) ...
_MAX_RATE_SCALE: Final = 2.0
#: ... nor drops below this many requests/s
_MIN_RATE: Final = 0.5
#: an adaptive bucket holds this many seconds of tokens at its rate (botocore: 1 s); less,
#: so that a scope coming out of a pause gate does not burst past a server just refilled
_ADAPTIVE_BURST: Final = 0.5


@dataclass(frozen=True, slots=True)
class ScopeConfig:
    """Limits of one scope.

    ``rate``/``burst`` set a fixed token bucket (requests/s). ``adaptive_rate``: learn a rate
    from throttles (see the module doc); ``None`` means "yes unless ``rate`` is given".
    """

    initial: int = 32
    max: int = 256
    min: int = 1
    rate: float | None = None
    burst: float | None = None
    decrease: float = 0.7
    #: extra random wait, as a fraction of the pause, added once when a pause gate closes
    pause_jitter: float = 0.1
    #: callers queued when a pause gate opens are let through over this fraction of the
    #: pause (at most 1 s) instead of all at once
    pause_spread: float = 0.25
    adaptive_rate: bool | None = None


@dataclass(frozen=True, slots=True)
class LimiterConfig(ScopeConfig):
    """Limiter settings: defaults for every scope, plus per-scope overrides.

    ``LimiterConfig(initial=32, max=256, per_scope={"data": ScopeConfig(initial=8, max=16)})``.
    Every cap is also clamped to the connector's pool size (``pool_size`` of the Limiter).
    """

    per_scope: Mapping[str, ScopeConfig] = field(default_factory=dict)

    def for_scope(self, scope: str) -> ScopeConfig:
        """The scope's own settings, else these defaults (the fields inherited from
        :class:`ScopeConfig`)."""
        return self.per_scope.get(scope, self)


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
    rate: float | None = None
    """requests/s of the token bucket pacing the scope; None while no bucket is engaged"""
    measured_rate: float = 0.0
    """requests/s sent, smoothed over 0.5 s windows (as of the last request that ended)"""
    rate_max: float | None = None
    """the adaptive rate's ``W_max``: the send rate when the last throttle came (or None)"""


class ScopeLimiter:
    """The limiter of one scope. Obtain with ``limiter.scope(name)``."""

    __slots__ = (
        "_adaptive",
        "_burst",
        "_burst_fixed",
        "_clock_next",
        "_epoch",
        "_jitter_frac",
        "_k",
        "_last_fail",
        "_measured",
        "_ramp_done",
        "_ramp_n",
        "_rate",
        "_spread",
        "_spread_frac",
        "_successes",
        "_timer",
        "_timer_at",
        "_tokens",
        "_tokens_at",
        "_w_max",
        "_waiters",
        "_win_n",
        "_win_start",
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
        self._spread_frac = cfg.pause_spread
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
        # pause gate ramp: callers let through since the gate opened, of how many (-1: the
        # gate has not opened yet), over how many seconds
        self._ramp_n = -1
        self._ramp_done = 0
        self._spread = 0.0
        now = _monotonic()
        # send-rate measurement (requests granted per second, smoothed; <0: no window yet)
        self._measured = -1.0
        self._win_start = now
        self._win_n = 0
        self._clock_next = now + _WINDOW
        # token bucket (off while _rate is None) and adaptive (CUBIC) state
        self._adaptive = cfg.adaptive_rate if cfg.adaptive_rate is not None else cfg.rate is None
        self._w_max = 0.0
        self._k = 0.0
        self._last_fail = now
        self._rate = cfg.rate
        self._burst_fixed = cfg.burst
        if cfg.rate is not None:
            if cfg.rate <= 0:
                raise ValueError("rate must be > 0")
            self._burst = max(1.0, cfg.burst if cfg.burst is not None else cfg.rate)
            if self._adaptive:  # start the curve at the given rate, as if just reached
                self._w_max = cfg.rate
                self._k = 0.0
        else:
            self._burst = 0.0
        self._tokens = self._burst
        self._tokens_at = now

    # acquire / release ---------------------------------------------------------------------

    async def acquire(self) -> int:
        """Wait for a slot; returns a ticket to hand back to :meth:`release`.

        Cancellation-safe: a caller cancelled while queued takes nothing, and one cancelled
        just after being granted a slot gives it back.
        """
        if (
            self.in_flight < self.cap
            and not self._waiters
            and not self.paused_until
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
        now = _monotonic()
        if now >= self._clock_next:
            self._tick(now)
        if self._waiters:
            self._wake()

    def throttled(self, ticket: int, retry_after: float | None = None) -> None:
        """Record a 429/503 for a request that held ``ticket`` (slot accounting aside)."""
        self.throttles += 1
        self._successes = 0
        if ticket == self._epoch:
            self._epoch += 1
            self.cap = max(self.min, math.floor(self.cap * self.decrease))
            if self._adaptive:
                self._rate_decrease(_monotonic())
        if retry_after is not None and retry_after > 0:
            self.pause(retry_after)

    def pause(self, seconds: float) -> None:
        """Close the gate for ``seconds`` (extends, never shortens, a current pause)."""
        jitter = seconds * self._jitter_frac * random.random() if self._jitter_frac else 0.0
        until = _monotonic() + seconds + min(jitter, 1.0)
        if until > self.paused_until:
            self.paused_until = until
            self._spread = min(1.0, seconds * self._spread_frac)
            self._ramp_n = -1

    def note_retry(self) -> None:
        self.retries += 1

    # rate measurement and the adaptive (CUBIC) rate -----------------------------------------

    def _tick(self, now: float) -> None:
        """Close a measurement window if one is due; move an engaged adaptive rate."""
        elapsed = now - self._win_start
        if elapsed >= _WINDOW:
            current = (self.requests - self._win_n) / elapsed
            if self._measured < 0.0:
                self._measured = current
            else:
                self._measured = current * _SMOOTHING + self._measured * (1.0 - _SMOOTHING)
            self._win_start = now
            self._win_n = self.requests
        next_at = self._win_start + _WINDOW
        if self._adaptive and self._rate is not None:
            self._set_rate(self._cubic(now), now)
            next_at = min(next_at, now + _TICK)
        self._clock_next = next_at

    def _measured_now(self, now: float) -> float:
        """The send rate: the smoothed measure, or the current window's before the first."""
        if now >= self._clock_next:
            self._tick(now)
        if self._measured >= 0.0:
            return self._measured
        return (self.requests - self._win_n) / max(now - self._win_start, 0.001)

    def _cubic(self, now: float) -> float:
        rate = _CUBIC_C * (now - self._last_fail - self._k) ** 3 + self._w_max
        ceiling = max(_MAX_RATE_SCALE * max(self._measured, 0.0), _CUBIC_BETA * self._w_max)
        return max(_MIN_RATE, min(rate, ceiling))

    def _rate_decrease(self, now: float) -> None:
        measured = self._measured_now(now)
        w_max = measured if self._rate is None else min(measured, self._rate)
        w_max = max(w_max, _MIN_RATE)
        self._w_max = w_max
        self._k = (w_max * (1.0 - _CUBIC_BETA) / _CUBIC_C) ** (1.0 / 3.0)
        self._last_fail = now
        if self._rate is None:  # engage the bucket, empty: the server just said "no more"
            self._rate = w_max * _CUBIC_BETA
            self._tokens = 0.0
            self._tokens_at = now
            self._clock_next = min(self._clock_next, now + _TICK)
        self._set_rate(w_max * _CUBIC_BETA, now)

    def _set_rate(self, rate: float, now: float) -> None:
        """Change the bucket's rate, crediting the time so far at the old one."""
        old = self._rate
        assert old is not None
        tokens = self._tokens + (now - self._tokens_at) * old
        self._rate = rate
        if self._burst_fixed is not None:
            self._burst = max(1.0, self._burst_fixed)
        else:
            self._burst = max(1.0, rate * _ADAPTIVE_BURST)
        self._tokens = min(tokens, self._burst)
        self._tokens_at = now

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

    def _gate(self, now: float) -> float:
        """0.0 if the pause gate lets a caller through now, else when to look again.

        When the gate opens, the callers queued at that moment are let through evenly over
        ``_spread`` seconds (the n-th of N at ``opening + spread·n/N``); then it is open.
        """
        until = self.paused_until
        if now < until:
            return until
        n = self._ramp_n
        if n < 0:
            n = self._ramp_n = sum(1 for f in self._waiters if not f.done())
            self._ramp_done = 0
        done = self._ramp_done
        if done >= n or now >= until + self._spread:
            self.paused_until = 0.0
            return 0.0
        at = until + self._spread * done / n
        return 0.0 if now >= at else at

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
            if self.paused_until:
                at = self._gate(now)
                if at:
                    self._arm(at)
                    return
            if self._rate is not None:
                wait = self._take_token(now)
                if wait > 0.0:
                    self._arm(now + wait)
                    return
            if self.paused_until:
                self._ramp_done += 1
                if self._ramp_done >= self._ramp_n:  # the last one queued at the opening
                    self.paused_until = 0.0
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
            rate=self._rate,
            measured_rate=max(self._measured, 0.0),
            rate_max=self._w_max if self._adaptive and self._rate is not None else None,
        )

    def __repr__(self) -> str:
        rate = "" if self._rate is None else f" rate={self._rate:.3g}/s"
        return (
            f"<ScopeLimiter {self.name!r} cap={self.cap}/{self.max} in_flight={self.in_flight}"
            f" waiting={len(self._waiters)}{rate}>"
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
