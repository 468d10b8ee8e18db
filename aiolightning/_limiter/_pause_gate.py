"""The pause gate: after a ``Retry-After``, no caller of the scope gets a slot until it opens.

With a ``Retry-After``, the scope's gate closes: no queued or new caller gets a slot until
the time has passed (plus a little jitter), and the callers queued when it opens are let
through spread over a short window, not all at once.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio
    from collections import deque

    from ._config import ScopeConfig

__all__ = ["PauseGate"]


class PauseGate:
    """The pause gate of one scope; ``until`` is 0.0 while it is open."""

    __slots__ = ("_jitter_frac", "_ramp_done", "_ramp_n", "_spread", "_spread_frac", "until")

    def __init__(self, cfg: ScopeConfig) -> None:
        self._jitter_frac = cfg.pause_jitter
        self._spread_frac = cfg.pause_spread
        self.until = 0.0
        # ramp: callers let through since the gate opened, of how many (-1: the gate has
        # not opened yet), over how many seconds
        self._ramp_n = -1
        self._ramp_done = 0
        self._spread = 0.0

    def pause(self, seconds: float, now: float) -> None:
        """Close the gate for ``seconds`` (extends, never shortens, a current pause)."""
        jitter = seconds * self._jitter_frac * random.random() if self._jitter_frac else 0.0
        until = now + seconds + min(jitter, 1.0)
        if until > self.until:
            self.until = until
            self._spread = min(1.0, seconds * self._spread_frac)
            self._ramp_n = -1

    def check(self, now: float, waiters: deque[asyncio.Future[int]]) -> float:
        """0.0 if the gate lets a caller through now, else when to look again.

        When the gate opens, the callers queued at that moment are let through evenly over
        ``_spread`` seconds (the n-th of N at ``opening + spread·n/N``); then it is open.
        """
        until = self.until
        if now < until:
            return until
        n = self._ramp_n
        if n < 0:
            n = self._ramp_n = sum(1 for f in waiters if not f.done())
            self._ramp_done = 0
        done = self._ramp_done
        if done >= n or now >= until + self._spread:
            self.until = 0.0
            return 0.0
        at = until + self._spread * done / n
        return 0.0 if now >= at else at

    def let_through(self) -> None:
        """A queued caller went through the opening gate; after the last one it is open."""
        self._ramp_done += 1
        if self._ramp_done >= self._ramp_n:
            self.until = 0.0
