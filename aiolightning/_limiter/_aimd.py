"""The AIMD cap: how many requests of a scope may be in flight, grown and shrunk by outcomes.

* success: until the scope's first throttle, each success grows the cap by one (it doubles
  every window, TCP's slow start: a burst of thousands of requests is not held to the
  initial cap for most of its run); after it, a clean window (as many successes as the
  current cap, with no throttle in between) grows the cap by one, up to ``max``;
* throttled (a 429, or a 503 with ``Retry-After``): the cap shrinks ×``decrease`` (at least
  ``min``), once per window: requests that were already in flight when the cap shrank don't
  shrink it again;
* error (any other 5xx, a timeout, a lost connection): counted by the scope, cap unchanged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._config import ScopeConfig

__all__ = ["AimdCap"]


class AimdCap:
    """The in-flight cap of one scope; :class:`ScopeLimiter` builds on it.

    A slot's ticket is the cap's epoch when it was granted: a throttle shrinks the cap only
    for a ticket of the current epoch, and starts a new one.
    """

    __slots__ = ("_epoch", "_slow_start", "_successes", "cap", "decrease", "max", "min")

    def __init__(self, cfg: ScopeConfig, pool_size: int | None) -> None:
        hard = cfg.max if not pool_size else min(cfg.max, pool_size)
        self.min = max(1, min(cfg.min, hard))
        self.max = max(self.min, hard)
        self.cap = max(self.min, min(cfg.initial, self.max))
        self.decrease = cfg.decrease
        self._successes = 0
        self._epoch = 0
        self._slow_start = True  # until the first throttle

    def _grow(self) -> None:
        """Count a success; a clean window of them grows the cap by one (in slow start, each
        one does)."""
        self._successes += 1
        if (self._slow_start or self._successes >= self.cap) and self.cap < self.max:
            self.cap += 1
            self._successes = 0

    def _shrink(self, ticket: int) -> bool:
        """Count a throttle; True if it shrank the cap (once per window: ``ticket`` is current)."""
        self._successes = 0
        self._slow_start = False
        if ticket == self._epoch:
            self._epoch += 1
            self.cap = max(self.min, math.floor(self.cap * self.decrease))
            return True
        return False
