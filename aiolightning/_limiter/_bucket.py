"""The token bucket that paces a scope's slot grants at a rate (requests/s) with a burst.

An explicit ``rate`` (requests/s, ``burst``) is a fixed bucket from the scope's start; it
adapts only with ``adaptive_rate=True``. Otherwise the adaptive rate engages one on the
scope's first throttle and moves its rate.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` stored; a slot grant takes one."""

    __slots__ = ("burst", "rate", "tokens", "tokens_at")

    def __init__(self, rate: float, burst: float, now: float, tokens: float | None = None):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.burst = burst
        self.tokens = burst if tokens is None else tokens
        self.tokens_at = now

    def take(self, now: float) -> float:
        """Take one token; 0.0 if taken, else seconds until one is available."""
        tokens = self.tokens + (now - self.tokens_at) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.tokens_at = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate

    def set_rate(self, rate: float, burst: float, now: float) -> None:
        """Change the rate and burst, crediting the time so far at the old rate."""
        tokens = self.tokens + (now - self.tokens_at) * self.rate
        self.rate = rate
        self.burst = burst
        self.tokens = min(tokens, burst)
        self.tokens_at = now
