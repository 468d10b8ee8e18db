"""Hooks: user callbacks on every retry and every throttle (a 429, or a 503 with Retry-After).

::

    def count(event: RetryEvent) -> None:
        metrics.increment("lightning.retries", tags={"reason": event.reason})

    client = AsyncLightning(hooks=Hooks(on_retry=[count], on_throttle=[alert]))

A hook may be a plain function or a coroutine function; it runs inside the request (keep it
quick). A hook that raises is logged and ignored: hooks observe, they do not steer.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ._errors import LightningError

__all__ = ["NO_HOOKS", "Hooks", "RetryEvent", "ThrottleEvent"]

logger = logging.getLogger("aiolightning")
E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """An attempt failed and the request will be sent again after ``wait`` seconds."""

    method: str
    route: str  # the templated path ("/v1/projects/{projectId}/cloudspaces")
    attempt: int  # the attempt that failed, from 1
    max_attempts: int
    wait: float  # seconds before the next attempt (Retry-After or the backoff)
    reason: str  # "HTTP 503", "HTTP 429 retry-after 1s", "APIConnectionError", ...
    status: int | None  # None for a connection error or a timeout
    error: LightningError


@dataclass(frozen=True, slots=True)
class ThrottleEvent:
    """The server throttled: a 429, or a 503 with ``Retry-After`` (whether or not the
    request is retried). A 503 without ``Retry-After`` is an error, not a throttle."""

    method: str
    route: str
    attempt: int
    status: int
    retry_after: float | None  # the server's Retry-After, seconds
    wait: float | None  # how long the client's limiter pauses the scope for it (None: none)
    scope: str  # the limiter scope ("read", "write", ...) paused by it
    reason: str


@dataclass(frozen=True, slots=True)
class Hooks:
    """The callbacks of a client: ``on_retry`` and ``on_throttle`` (each a sequence of
    functions or coroutine functions taking the event)."""

    on_retry: Sequence[Callable[[RetryEvent], object]] = ()
    on_throttle: Sequence[Callable[[ThrottleEvent], object]] = ()

    async def retried(self, event: RetryEvent) -> None:
        for hook in self.on_retry:
            await _call(hook, event)

    async def throttled(self, event: ThrottleEvent) -> None:
        for hook in self.on_throttle:
            await _call(hook, event)


async def _call(hook: Callable[[E], object], event: E) -> None:
    try:
        result = hook(event)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("aiolightning hook %r failed (ignored)", hook)


NO_HOOKS = Hooks()
