"""Fault injection: latency, per-credential token-bucket rate limit, 5xx, dropped connections,
and the draws of the faults after the act (`_after.py` carries them out)."""

from __future__ import annotations

import asyncio
import math
import random
import time

from aiohttp import web

from . import _after
from ._config import Counters, Faults
from ._errors import ApiError

__all__ = ["FaultInjector"]


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class FaultInjector:
    def __init__(self, counters: Counters, seed: int) -> None:
        self._counters = counters
        self._rng = random.Random(f"faults:{seed}")
        self._buckets: dict[str, _Bucket] = {}

    async def latency(self, f: Faults) -> None:
        delay = f.latency
        if f.latency_jitter > 0:
            delay += self._rng.uniform(0.0, f.latency_jitter)
        if delay > 0:
            self._counters.incr("faults:latency")
            await asyncio.sleep(delay)

    def rate_limit(self, f: Faults, key: str) -> None:
        """Take a token for `key` or raise 429 with Retry-After computed from the bucket."""
        rate = f.rate_limit
        if rate is None or rate <= 0:
            return
        burst = f.rate_burst if f.rate_burst is not None else max(1.0, rate)
        now = time.monotonic()
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(burst, now)
        else:
            b.tokens = min(burst, b.tokens + (now - b.stamp) * rate)
            b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return
        wait = (1.0 - b.tokens) / rate
        retry_after = max(1, math.ceil(wait))
        self._counters.incr("throttled")
        raise ApiError(
            429,
            f"rate limit exceeded ({rate:g} requests/s); retry after {retry_after}s",
            headers={"Retry-After": str(retry_after)},
        )

    def should_drop(self, f: Faults) -> bool:
        if f.drop_rate > 0 and self._rng.random() < f.drop_rate:
            self._counters.incr("faults:drop")
            return True
        return False

    def maybe_error(self, f: Faults) -> None:
        if f.error_rate > 0 and self._rng.random() < f.error_rate:
            self._counters.incr("faults:error")
            if self._rng.random() < 0.5:
                raise ApiError(503, "injected fault: service unavailable")
            raise ApiError(500, "injected fault: internal error")

    # -- after the act: the handler has committed; the answer is delayed, lost or spoiled ----

    def slow_commit(self, f: Faults) -> float:
        """Seconds to hold a committed answer back (``slow_commit`` on a ``slow_commit_rate``
        fraction of the answers); 0 for none."""
        if f.slow_commit <= 0:
            return 0.0
        if f.slow_commit_rate < 1.0 and self._rng.random() >= f.slow_commit_rate:
            return 0.0
        return f.slow_commit

    def after(self, f: Faults) -> str | None:
        """The fault drawn for a committed answer: "drop_after", "error_after", "truncate",
        or None. One draw per answer, and none while the three fractions are 0."""
        drop, error, cut = f.drop_after_rate, f.error_after_rate, f.truncate_rate
        if drop <= 0 and error <= 0 and cut <= 0:
            return None
        r = self._rng.random()
        if r < drop:
            return "drop_after"
        if r < drop + error:
            return "error_after"
        if r < drop + error + cut:
            return "truncate"
        return None

    async def apply_after(
        self, kind: str, request: web.Request, resp: web.StreamResponse, storage: bool
    ) -> web.StreamResponse | None:
        """Carry out `kind` on the answer `resp`; None when it cannot be (a truncation of an
        answer that is not a plain body)."""
        if kind == "drop_after":
            return _after.drop(request)
        if kind == "error_after":
            return _after.error_answer(self._rng, storage)
        if isinstance(resp, web.Response):
            return await _after.truncate(request, resp)
        return None
