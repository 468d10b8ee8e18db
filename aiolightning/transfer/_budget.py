"""A semaphore counted in bytes: bounds the memory held by parts and ranges in flight."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["ByteBudget"]


class ByteBudget:
    """``async with budget.hold(n):`` waits until ``n`` bytes fit under ``capacity``.

    Grants are FIFO, so a large request is not starved by a stream of small ones. A
    request larger than the whole capacity is granted alone (it waits for everything else
    to drain), so one huge part can still make progress.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.in_use = 0
        self.peak = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, n: int) -> bool:
        return self.in_use + n <= self.capacity or self.in_use == 0

    async def acquire(self, n: int) -> int:
        n = max(0, n)
        if n == 0:
            return 0
        if not self._waiters and self._fits(n):
            self._take(n)
            return n
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, fut)
        self._waiters.append(entry)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release(n)  # granted just as we were cancelled: give it back
            else:
                self._waiters.remove(entry)
                self._wake()
            raise
        return n

    def _take(self, n: int) -> None:
        self.in_use += n
        self.peak = max(self.peak, self.in_use)

    def release(self, n: int) -> None:
        if n == 0:
            return
        self.in_use -= n
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            n, fut = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            if not self._fits(n):
                return
            self._waiters.popleft()
            self._take(n)
            fut.set_result(None)

    @asynccontextmanager
    async def hold(self, n: int) -> AsyncIterator[int]:
        got = await self.acquire(n)
        try:
            yield got
        finally:
            self.release(got)
