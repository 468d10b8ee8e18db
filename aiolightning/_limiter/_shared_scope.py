"""A scope whose token bucket and pause gate are shared through Redis with other processes.

A caller first takes a local slot (:class:`ScopeLimiter`: the AIMD cap, the local pause
gate and local bucket, all as before), then, if the scope has a ``rate``, a send time from
the shared bucket. The callers queued for one are served by one task per scope: it asks
Redis for as many send times as there are callers (one round trip for the batch; Redis
gives the times within a short horizon, at least one), hands each out when its time comes,
and asks again when they are used up. A ``Retry-After`` closes the local gate and, through
Redis, every other process's; send times reserved for inside a pause learned later are
dropped and asked for again. AIMD and the adaptive rate stay local to each process.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Final

from ._scope import ScopeLimiter

if TYPE_CHECKING:
    from ._config import ScopeConfig
    from ._shared import SharedBackend

__all__ = ["SharedScopeLimiter"]

_monotonic = time.monotonic

#: Redis grants send times at most this far (s) ahead per batch (beyond: one, at the end)
_HORIZON: Final = 0.1
#: the shared bucket's burst, unless ``burst`` is given: this many seconds of its rate (at
#: least 1). Small, so that the server's own bucket keeps slack for uneven network delays
_SHARED_BURST: Final = 0.1
#: a reserved time within this (s) of a pause's end still counts as after it
_EPSILON: Final = 0.005
#: most send times asked for in one round trip
_MAX_BATCH: Final = 256


class SharedScopeLimiter(ScopeLimiter):
    """A :class:`ScopeLimiter` that also takes each send time from the shared bucket."""

    __slots__ = (
        "_backend",
        "_grant_args",
        "_joined",
        "_joining",
        "_pump",
        "_queue",
        "_remote_until",
        "_tolerance_us",
    )

    def __init__(
        self, name: str, cfg: ScopeConfig, pool_size: int | None, backend: SharedBackend
    ) -> None:
        super().__init__(name, cfg, pool_size)
        self._backend = backend
        self._joined = False
        self._joining: asyncio.Task[float | None] | None = None
        self._queue: deque[asyncio.Future[None]] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._remote_until = 0.0  # monotonic end of the latest pause known (no jitter)
        self._grant_args: tuple[int, int, int] | None = None
        self._tolerance_us = -1  # -1: no shared bucket (only the pause gate is shared)
        if cfg.rate is not None:
            interval = 1e6 / cfg.rate
            burst = cfg.burst if cfg.burst is not None else cfg.rate * _SHARED_BURST
            self._tolerance_us = round((max(1.0, burst) - 1.0) * interval)
            self._grant_args = (round(interval), self._tolerance_us, round(_HORIZON * 1e6))
        backend.attach(self)

    async def acquire(self) -> int:
        if not self._joined and self._backend.active():
            await self._join()
        ticket = await super().acquire()
        if self._grant_args is None or not self._backend.active():
            return ticket
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(fut)
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._serve())
        try:
            await fut
        except BaseException:
            fut.cancel()
            self.requests -= 1
            self.release(ticket, outcome="cancelled")
            raise
        return ticket

    async def _join(self) -> None:
        """First use: connect (a clear error here if Redis is unreachable), so that pauses
        published by others arrive, and take up a pause already running. One Redis call per
        scope, shared by the callers that come meanwhile."""
        task = self._joining
        if task is None:
            task = asyncio.get_running_loop().create_task(self._backend.join(self.name))
            task.add_done_callback(_retrieve)
            self._joining = task
        try:
            left = await asyncio.shield(task)
        finally:
            if task.done() and self._joining is task:
                self._joining = None  # joined, or failed: a later call tries again
        if left is not None:  # None: Redis unreachable, on the local fallback for now
            self._joined = True
            if left > 0.0:
                self.remote_pause(left)

    def pause(self, seconds: float) -> None:
        """Close the gate here and, through Redis, in every process sharing the scope."""
        now = _monotonic()
        super().pause(seconds)
        self._remote_until = max(self._remote_until, now + seconds)
        if self._backend.active():
            self._backend.publish_pause(self.name, seconds, self._tolerance_us)

    def remote_pause(self, seconds: float) -> None:
        """Another process saw a ``Retry-After``: close this process's gate too."""
        now = _monotonic()
        self._remote_until = max(self._remote_until, now + seconds)
        self._gate.pause(seconds, now)

    def tasks(self) -> list[asyncio.Task[None] | asyncio.Task[float | None] | None]:
        """The scope's own tasks (the backend cancels them when the client closes)."""
        return [self._pump, self._joining]

    # the grant task --------------------------------------------------------------------------

    def _next_waiter(self) -> asyncio.Future[None] | None:
        queue = self._queue
        while queue:
            fut = queue.popleft()
            if not fut.done():
                return fut
        return None

    async def _serve(self) -> None:
        """Ask Redis for send times for the queued callers and hand them out, until none wait."""
        assert self._grant_args is not None
        try:
            while True:
                waiting = sum(1 for f in self._queue if not f.done())
                if not waiting:
                    return
                now = _monotonic()
                if self._remote_until > now:  # a known pause: ask after it
                    await asyncio.sleep(self._remote_until - now)
                    continue
                try:
                    reply = await self._backend.grant(
                        self.name, min(waiting, _MAX_BATCH), *self._grant_args
                    )
                except Exception as exc:  # SharedLimiterError: every waiter gets it
                    while (fut := self._next_waiter()) is not None:
                        fut.set_exception(exc)
                    continue
                if reply is None:  # Redis unreachable, local fallback: the local slot suffices
                    while (fut := self._next_waiter()) is not None:
                        fut.set_result(None)
                    continue
                await self._hand_out(*reply)
        finally:
            self._pump = None

    async def _hand_out(self, pause_left: float, offsets: list[float]) -> None:
        base = _monotonic()
        if pause_left > 0.0:
            self.remote_pause(pause_left)
        for offset in offsets:
            at = base + offset
            delay = at - _monotonic()
            if delay > 0.0:
                await asyncio.sleep(delay)
            if at + _EPSILON < self._remote_until:
                return  # a pause came meanwhile: this and the later times fall inside it
            fut = self._next_waiter()
            if fut is None:
                return  # every caller left; the rest of the times go unused
            fut.set_result(None)


def _retrieve(task: asyncio.Task[float | None]) -> None:
    """Mark a join's exception as seen (each caller that awaited it got it already)."""
    if not task.cancelled():
        task.exception()
