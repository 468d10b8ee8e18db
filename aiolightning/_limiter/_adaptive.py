"""The adaptive rate: a scope's measured send rate, and the CUBIC curve its bucket follows.

The cap alone cannot hold a requests/s quota (at 20 ms of latency a cap of 2 already sends
100 requests/s), so each scope also measures the rate at which it sends (0.5 s windows,
smoothed) and, from its first throttle on, paces slot grants with a token bucket whose rate
follows CUBIC, as in botocore's "adaptive" retry mode: on a throttle (once per window, like
the cap) ``W_max`` = the measured send rate (or the bucket rate, if lower), the rate drops
to ``0.7·W_max``, then grows as ``0.4·(t − K)³ + W_max`` with ``K = ∛(W_max·0.3/0.4)``: back
to ``W_max`` after ``K`` seconds, then probing above it while no throttle comes, never more
than twice the measured rate (nor less than ``0.7·W_max``); the bucket holds half a second
of tokens. Before the first throttle no bucket exists and the fast path is unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._bucket import TokenBucket

if TYPE_CHECKING:
    from ._config import ScopeConfig

__all__ = ["AdaptiveRate"]

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


class AdaptiveRate:
    """One scope's send-rate measurement and, when ``enabled``, the CUBIC rate it feeds.

    The scope hands in its ``requests`` count (slots granted so far) and its bucket (None
    until one is engaged); :meth:`decrease` returns the bucket, engaging one if needed.
    """

    __slots__ = (
        "_burst_fixed",
        "_k",
        "_last_fail",
        "_win_n",
        "_win_start",
        "clock_next",
        "enabled",
        "measured",
        "w_max",
    )

    def __init__(self, cfg: ScopeConfig, now: float) -> None:
        # send-rate measurement (requests granted per second, smoothed; <0: no window yet)
        self.measured = -1.0
        self._win_start = now
        self._win_n = 0
        self.clock_next = now + _WINDOW
        # CUBIC state
        self.enabled = cfg.adaptive_rate if cfg.adaptive_rate is not None else cfg.rate is None
        self.w_max = 0.0
        self._k = 0.0
        self._last_fail = now
        self._burst_fixed = cfg.burst
        if cfg.rate is not None and self.enabled:  # start the curve at the given rate
            self.w_max = cfg.rate  # as if just reached
            self._k = 0.0

    def tick(self, now: float, requests: int, bucket: TokenBucket | None) -> None:
        """Close a measurement window if one is due; move an engaged adaptive rate."""
        elapsed = now - self._win_start
        if elapsed >= _WINDOW:
            current = (requests - self._win_n) / elapsed
            if self.measured < 0.0:
                self.measured = current
            else:
                self.measured = current * _SMOOTHING + self.measured * (1.0 - _SMOOTHING)
            self._win_start = now
            self._win_n = requests
        next_at = self._win_start + _WINDOW
        if self.enabled and bucket is not None:
            self._set_rate(bucket, self._cubic(now), now)
            next_at = min(next_at, now + _TICK)
        self.clock_next = next_at

    def decrease(self, now: float, requests: int, bucket: TokenBucket | None) -> TokenBucket:
        """A throttle: ``W_max`` from the send rate, the rate to ``β·W_max``; the bucket."""
        measured = self._measured_now(now, requests, bucket)
        w_max = measured if bucket is None else min(measured, bucket.rate)
        w_max = max(w_max, _MIN_RATE)
        self.w_max = w_max
        self._k = (w_max * (1.0 - _CUBIC_BETA) / _CUBIC_C) ** (1.0 / 3.0)
        self._last_fail = now
        rate = w_max * _CUBIC_BETA
        if bucket is None:  # engage the bucket, empty: the server just said "no more"
            self.clock_next = min(self.clock_next, now + _TICK)
            return TokenBucket(rate, self._burst(rate), now, tokens=0.0)
        self._set_rate(bucket, rate, now)
        return bucket

    def _measured_now(self, now: float, requests: int, bucket: TokenBucket | None) -> float:
        """The send rate: the smoothed measure, or the current window's before the first."""
        if now >= self.clock_next:
            self.tick(now, requests, bucket)
        if self.measured >= 0.0:
            return self.measured
        return (requests - self._win_n) / max(now - self._win_start, 0.001)

    def _cubic(self, now: float) -> float:
        rate = _CUBIC_C * (now - self._last_fail - self._k) ** 3 + self.w_max
        ceiling = max(_MAX_RATE_SCALE * max(self.measured, 0.0), _CUBIC_BETA * self.w_max)
        return max(_MIN_RATE, min(rate, ceiling))

    def _burst(self, rate: float) -> float:
        if self._burst_fixed is not None:
            return max(1.0, self._burst_fixed)
        return max(1.0, rate * _ADAPTIVE_BURST)

    def _set_rate(self, bucket: TokenBucket, rate: float, now: float) -> None:
        bucket.set_rate(rate, self._burst(rate), now)
