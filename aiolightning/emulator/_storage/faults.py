"""The storage faults: injected part-PUT failures and bodies corrupted on their way in."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator

from aiohttp import web

from .._config import Counters, EmulatorConfig
from .objects import CHUNK
from .wire import xml_error

__all__ = ["PutFaults", "flip_first_byte"]


async def flip_first_byte(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks with the first byte inverted: a body damaged on its way in."""
    flipped = False
    async for c in chunks:
        if not flipped and c:
            c = bytes([c[0] ^ 0xFF]) + c[1:]
            flipped = True
        yield c


class PutFaults:
    """Draws the ``part_failure_rate`` and ``corrupt_rate`` faults from a generator seeded
    by the store's secret."""

    def __init__(self, config: EmulatorConfig, counters: Counters, secret: bytes) -> None:
        self.config = config
        self.counters = counters
        self._rng = random.Random(hashlib.sha256(secret).digest())

    def fails(self) -> bool:
        """Whether this PUT fails (``part_failure_rate``)."""
        rate = self.config.faults.part_failure_rate
        return rate > 0 and self._rng.random() < rate

    def corrupts(self) -> bool:
        """Whether this PUT's body is corrupted (``corrupt_rate``); counted when it is."""
        rate = self.config.faults.corrupt_rate
        if rate > 0 and self._rng.random() < rate:
            self.counters.incr("storage:puts_corrupted")
            return True
        return False

    async def fail(self, request: web.Request) -> web.Response:
        """The injected failure: the body read and dropped, then a 500."""
        async for chunk in request.content.iter_chunked(CHUNK):
            self.counters.incr("storage:bytes_in", len(chunk))
        self.counters.incr("storage:parts_failed")
        return xml_error(
            500, "InternalError", "We encountered an internal error. Please try again."
        )
