"""The storage faults: injected part-PUT failures, bodies corrupted on their way in, and a
bucket under SSE-KMS whose ETags are not the MD5 of the bytes."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator

from aiohttp import web

from .._config import Counters, EmulatorConfig
from .objects import CHUNK
from .wire import xml_error

__all__ = ["Damage", "PutFaults"]

_KMS_HEADERS = {
    "x-amz-server-side-encryption": "aws:kms",
    "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:us-east-1:000000000000:key/emu",
}


class Damage:
    """One byte of a body, at a random place, XORed with a random non-zero mask: as if
    damaged in transit (so the same bytes damaged twice almost never match)."""

    def __init__(self, rng: random.Random) -> None:
        self.fraction = rng.random()
        self.mask = rng.randrange(1, 256)

    async def apply(self, chunks: AsyncIterator[bytes], length: int | None) -> AsyncIterator[bytes]:
        at = int(self.fraction * length) if length else 0
        pos = 0
        async for c in chunks:
            if pos <= at < pos + len(c):
                i = at - pos
                c = c[:i] + bytes([c[i] ^ self.mask]) + c[i + 1 :]
            pos += len(c)
            yield c


class PutFaults:
    """Draws the ``part_failure_rate`` and ``corrupt_rate`` faults from a generator seeded
    by the store's secret; answers KMS-style ETags and headers (``kms_etags``)."""

    def __init__(self, config: EmulatorConfig, counters: Counters, secret: bytes) -> None:
        self.config = config
        self.counters = counters
        self._rng = random.Random(hashlib.sha256(secret).digest())
        self._kms_key = hashlib.sha256(b"kms" + secret).digest()

    def fails(self) -> bool:
        """Whether this PUT fails (``part_failure_rate``)."""
        rate = self.config.faults.part_failure_rate
        return rate > 0 and self._rng.random() < rate

    def corrupts(self) -> Damage | None:
        """The damage done to this PUT's body (``corrupt_rate``), counted; None for none."""
        rate = self.config.faults.corrupt_rate
        if rate > 0 and self._rng.random() < rate:
            self.counters.incr("storage:puts_corrupted")
            return Damage(self._rng)
        return None

    def sealed(self, etag: str) -> tuple[str, dict[str, str]]:
        """The ETag and headers a PUT answers: under ``kms_etags``, 32 hex digits that are
        not the MD5 (the same for the same bytes) and, with ``kms_headers``, the SSE-KMS
        headers that say so."""
        if not self.config.faults.kms_etags:
            return etag, {}
        kms = hashlib.md5(self._kms_key + etag.strip('"').encode()).hexdigest()
        return f'"{kms}"', self.sse_headers()

    def sse_headers(self) -> dict[str, str]:
        """The encryption headers of a PUT, GET or HEAD answer (``kms_etags``)."""
        f = self.config.faults
        return dict(_KMS_HEADERS) if f.kms_etags and f.kms_headers else {}

    async def fail(self, request: web.Request) -> web.Response:
        """The injected failure: the body read and dropped, then a 500."""
        async for chunk in request.content.iter_chunked(CHUNK):
            self.counters.incr("storage:bytes_in", len(chunk))
        self.counters.incr("storage:parts_failed")
        return xml_error(
            500, "InternalError", "We encountered an internal error. Please try again."
        )
