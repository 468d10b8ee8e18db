"""Monotonic time for state machines, and wall-clock timestamps derived from it."""

from __future__ import annotations

import datetime as _dt
import time

__all__ = ["Clock"]


class Clock:
    """`now()` is monotonic seconds; `iso(t)` renders such a time as RFC 3339 UTC."""

    def __init__(self) -> None:
        self._mono0 = time.monotonic()
        self._wall0 = time.time()
        self._iso: dict[float, str] = {}

    def now(self) -> float:
        return time.monotonic()

    def wall(self, t: float) -> float:
        return self._wall0 + (t - self._mono0)

    def iso(self, t: float | None) -> str | None:
        if t is None:
            return None
        s = self._iso.get(t)
        if s is None:
            d = _dt.datetime.fromtimestamp(self.wall(t), tz=_dt.UTC)
            s = d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}Z"
            if len(self._iso) >= 65536:
                self._iso.clear()
            self._iso[t] = s
        return s
