"""Reading aiohttp bodies chunk by chunk, shared by the transfer engine and the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import StreamReader


async def received_chunks(content: StreamReader) -> AsyncIterator[bytes]:
    """The body's chunks as received (no joining). Not ``iter_chunks()``: on an empty body
    aiohttp's EmptyStreamReader answers ``(b"", True)`` forever and that never ends."""
    while True:
        chunk, _ = await content.readchunk()
        if chunk:
            yield chunk
        elif content.at_eof():
            return
