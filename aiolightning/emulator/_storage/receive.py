"""Streaming a presigned PUT's body to a file on disk while computing its MD5 ETag."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from pathlib import Path

from aiohttp import web

from ..._streams import received_chunks
from .._config import Counters
from .faults import Damage
from .objects import CHUNK
from .wire import xml_error

__all__ = ["receive_body", "reject_chunked"]

_BATCH = 2 * 1024 * 1024  # bytes of a part body hashed and written per worker-thread hop


async def receive_body(
    request: web.Request,
    target: Path,
    counters: Counters,
    *,
    fresh: bool = False,
    corrupt: Damage | None = None,
) -> tuple[int, str]:
    """Stream the body into ``target`` (via a temp file); return (size, quoted MD5).

    ``corrupt``: the damage done to the body (the ``corrupt_rate`` fault).

    ``fresh``: the target is a new unique name nobody refers to yet, so a small body is
    written to it directly (no temp file and rename: file creation is a good part of
    what a 1 MiB PUT costs the emulator).

    Hashing and writing run in a worker thread, one chunk behind the socket reads, so
    the event loop keeps receiving (hashlib and os.write release the GIL).
    """
    loop = asyncio.get_running_loop()
    chunks = received_chunks(request.content)
    if corrupt is not None:
        chunks = corrupt.apply(chunks, request.content_length)
    tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
    md5 = hashlib.md5()
    size = 0
    length = request.content_length
    if length is not None and length <= CHUNK:
        # a small body: gather its chunks (request.read() would copy them twice), then
        # open, hash, write (and rename) in one thread hop
        body = [c async for c in chunks]
        received = sum(len(c) for c in body)
        counters.incr("storage:bytes_in", received)
        dest = target if fresh else tmp

        def store_small() -> None:
            for c in body:
                md5.update(c)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                n = os.writev(fd, body) if body else 0
                if n < received:
                    view = memoryview(b"".join(body))[n:]
                    while view:
                        view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            if not fresh:
                os.replace(tmp, target)

        try:
            await loop.run_in_executor(None, store_small)
        except BaseException:
            with contextlib.suppress(OSError):
                dest.unlink()
            raise
        return received, f'"{md5.hexdigest()}"'
    fd = await loop.run_in_executor(
        None, os.open, tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644
    )

    def consume(chunks: list[bytes]) -> None:
        for c in chunks:
            md5.update(c)
        total = sum(len(c) for c in chunks)
        n = os.writev(fd, chunks)
        if n < total:
            view = memoryview(b"".join(chunks))[n:]
            while view:
                view = view[os.write(fd, view) :]

    def finish() -> None:
        os.close(fd)
        os.replace(tmp, target)

    # The chunks the parser hands over are gathered as they are (iter_chunked would join
    # them into new 1 MiB bytes objects: one more copy of every byte on the event loop)
    # and hashed and written by one os.writev per _BATCH bytes in a worker thread, one
    # batch behind the socket reads.
    pending: asyncio.Future[None] | None = None
    batch: list[bytes] = []
    batched = 0
    try:
        async for chunk in chunks:
            batch.append(chunk)
            batched += len(chunk)
            size += len(chunk)
            if batched >= _BATCH or len(batch) >= 512:
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, consume, batch)
                batch, batched = [], 0
        if pending is not None:
            await pending
            pending = None
        if batch:
            await loop.run_in_executor(None, consume, batch)
        await loop.run_in_executor(None, finish)
    except BaseException:
        if pending is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(pending)
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    finally:
        counters.incr("storage:bytes_in", size)
    return size, f'"{md5.hexdigest()}"'


def reject_chunked(request: web.Request) -> web.Response | None:
    if (
        request.content_length is None
        and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    ):
        return xml_error(
            501,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented: Transfer-Encoding",
        )
    return None
