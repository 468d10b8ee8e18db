"""The limiter's settings (per scope and overall) and the snapshot of a scope's counters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .._errors import InvalidArgumentError
from ._shared_url import shared_url

__all__ = ["LimiterConfig", "ScopeConfig", "ScopeStats"]


@dataclass(frozen=True, slots=True)
class ScopeConfig:
    """Limits of one scope.

    ``rate``/``burst`` set a fixed token bucket (requests/s). ``adaptive_rate``: learn a rate
    from throttles (see :mod:`aiolightning._limiter._adaptive`); ``None`` means "yes unless
    ``rate`` is given".
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

    ``shared="redis://host:6379/0"`` shares each scope's token bucket (its ``rate``) and its
    pause gate with every process using the same Redis and ``shared_key``
    (:mod:`aiolightning._limiter._shared`); needs ``aiolightning[redis]``. If Redis cannot
    be reached, ``on_unavailable="error"`` fails the request with a ``SharedLimiterError``,
    ``"local"`` logs a WARNING and goes on with this process's own limiter.
    """

    per_scope: Mapping[str, ScopeConfig] = field(default_factory=dict)
    shared: str | None = None
    shared_key: str = "aiolightning"
    on_unavailable: Literal["error", "local"] = "error"

    def __post_init__(self) -> None:
        if self.shared is not None:
            object.__setattr__(self, "shared", shared_url(self.shared))
        if self.on_unavailable not in ("error", "local"):
            raise InvalidArgumentError(
                f"LimiterConfig(on_unavailable={self.on_unavailable!r}): must be 'error' or 'local'"
            )
        if not isinstance(self.shared_key, str) or not self.shared_key:
            raise InvalidArgumentError("LimiterConfig(shared_key=...) must be a non-empty string")

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
    """the highest the cap may grow: the scope's configured max, or the connector's pool size
    when that is smaller (see ``max_limited_by``)"""
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
    max_limited_by: str | None = None
    """why ``max`` is below the configured max (the connection pool: more requests in flight
    than connections would only queue inside aiohttp; raise ``connector_limit`` to lift it),
    or None when it is not"""
