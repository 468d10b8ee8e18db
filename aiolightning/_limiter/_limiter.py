"""The ``Limiter``: a scope limiter per name, created on first use, and the ``Slot`` it lends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, overload

from ._config import LimiterConfig, ScopeStats
from ._scope import ScopeLimiter

if TYPE_CHECKING:
    from ._shared import SharedBackend

__all__ = ["Limiter", "Slot"]


class Slot:
    """A held slot (from :meth:`Limiter.slot`); report a throttle or an error on it."""

    __slots__ = ("_scope", "_ticket", "outcome", "retry_after")

    def __init__(self, scope: ScopeLimiter, ticket: int) -> None:
        self._scope = scope
        self._ticket = ticket
        self.outcome = "ok"
        self.retry_after: float | None = None

    def throttle(self, retry_after: float | None = None) -> None:
        """Mark the request as throttled (a 429, or a 503 with Retry-After); ``retry_after`` closes the pause gate."""
        self.outcome = "throttled"
        self.retry_after = retry_after

    def fail(self) -> None:
        self.outcome = "error"


class Limiter:
    """Per-scope limiters, created on first use from a :class:`LimiterConfig`.

    ``pool_size`` is the connector's connection limit; every cap stays at or below it.
    With ``config.shared``, ``shared`` is the link to Redis (:mod:`._shared`) and every
    scope shares its bucket and pause gate through it; :meth:`aclose` closes it.
    """

    def __init__(self, config: LimiterConfig | None = None, *, pool_size: int | None = None):
        self.config = config or LimiterConfig()
        self.pool_size = pool_size or None
        self._scopes: dict[str, ScopeLimiter] = {}
        self.shared: SharedBackend | None = None
        if self.config.shared is not None:
            from ._shared import SharedBackend

            self.shared = SharedBackend(self.config)

    def scope(self, name: str) -> ScopeLimiter:
        s = self._scopes.get(name)
        if s is None:
            cfg = self.config.for_scope(name)
            if self.shared is not None:
                from ._shared_scope import SharedScopeLimiter

                s = SharedScopeLimiter(name, cfg, self.pool_size, self.shared)
            else:
                s = ScopeLimiter(name, cfg, self.pool_size)
            self._scopes[name] = s
        return s

    async def aclose(self) -> None:
        """Close the link to the shared limiter's Redis, if any (the client's close does)."""
        if self.shared is not None:
            await self.shared.aclose()

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
        shared = "" if self.shared is None else f" shared={self.shared.url.redacted!r}"
        return f"<Limiter scopes={sorted(self._scopes)} pool_size={self.pool_size}{shared}>"
