"""Rate-limit-aware concurrency per scope: an AIMD in-flight cap, a pause gate, an adaptive rate.

Rooms: :mod:`._config` (settings, stats), :mod:`._aimd` (the cap), :mod:`._pause_gate`,
:mod:`._bucket` (token bucket), :mod:`._adaptive` (measured send rate, CUBIC), :mod:`._scope`
(one scope composing them), :mod:`._limiter` (``Limiter``: the scopes by name, ``Slot``).
Shared across processes through Redis: :mod:`._shared_url`, :mod:`._redis_scripts`,
:mod:`._shared` (the link to Redis), :mod:`._shared_scope` (a scope using it).
"""

from ._config import LimiterConfig, ScopeConfig, ScopeStats
from ._limiter import Limiter, Slot
from ._scope import ScopeLimiter
from ._shared import SharedLimiterError, SharedStats

__all__ = [
    "Limiter",
    "LimiterConfig",
    "ScopeConfig",
    "ScopeLimiter",
    "ScopeStats",
    "SharedLimiterError",
    "SharedStats",
    "Slot",
]
