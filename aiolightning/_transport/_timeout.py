"""The transport's timeouts: the ``Timeout`` settings and their aiohttp equivalents."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

__all__ = ["Timeout", "as_client_timeout"]


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timeouts in seconds. ``total`` bounds one attempt (connect + send + read whole body);
    ``connect`` bounds opening a connection; ``read`` bounds each socket read."""

    total: float | None = 60.0
    connect: float | None = 10.0
    read: float | None = None

    def to_aiohttp(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.total, sock_connect=self.connect, sock_read=self.read
        )

    def for_stream(self) -> aiohttp.ClientTimeout:
        """Streams (downloads, NDJSON) have no total; each read waits at most read/total."""
        return aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect, sock_read=self.read or self.total
        )


def as_client_timeout(
    value: float | aiohttp.ClientTimeout | Timeout, connect: float | None
) -> aiohttp.ClientTimeout:
    if isinstance(value, aiohttp.ClientTimeout):
        return value
    if isinstance(value, Timeout):
        return value.to_aiohttp()
    return aiohttp.ClientTimeout(total=float(value), sock_connect=connect)
