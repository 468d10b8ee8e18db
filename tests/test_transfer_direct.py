"""Durable downloads written with O_DIRECT from aligned buffers (transfer/_direct.py)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from aiolightning import AsyncLightning
from aiolightning.transfer import RemoteTarget, TransferConfig, TransferEngine
from aiolightning.transfer._direct import ALIGN, AlignedBuffer, enable_direct, write_buffer

pytestmark = pytest.mark.anyio

KiB = 1024
# an odd size: the last write is a partial block, padded for O_DIRECT and cut back after
PAYLOAD = (hashlib.sha256(b"direct").digest() * (40 * KiB))[: 1200 * KiB + 1234]
CUT = 300_001  # where the first response of each request line breaks: not block-aligned


class Server:
    """Serves PAYLOAD with Range support; the first response for the whole object or for
    each 512 KiB range is cut at an unaligned byte."""

    def __init__(self) -> None:
        self.ranges: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        size = len(PAYLOAD)
        rng = request.headers.get("Range", "")
        self.ranges.append(rng)
        start, end, status = 0, size - 1, 200
        headers = {"ETag": '"x"', "Accept-Ranges": "bytes"}
        if rng:
            a, _, b = rng[6:].partition("-")
            start, end, status = int(a), int(b) if b else size - 1, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        body = PAYLOAD[start : end + 1]
        headers["Content-Length"] = str(len(body))
        resp = web.StreamResponse(status=status, headers=headers)
        await resp.prepare(request)
        if self.ranges.count(rng) == 1 and start % (512 * KiB) == 0 and len(body) > CUT:
            await resp.write(body[:CUT])
            assert request.transport is not None
            request.transport.close()  # the connection breaks mid-body
            return resp
        await resp.write(body)
        await resp.write_eof()
        return resp


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Server]]:
    s = Server()
    app = web.Application()
    app.router.add_route("*", "/v1/projects/p/artifacts/blobs/{path:.*}", s.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", s
    await runner.cleanup()


def _direct_works(folder: Path) -> bool:
    fd = os.open(folder / "probe", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        return enable_direct(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("ranged", [True, False])
async def test_a_direct_download_is_byte_exact_after_unaligned_breaks(
    server: tuple[str, Server], tmp_path: Path, ranged: bool
) -> None:
    url, srv = server
    cfg = TransferConfig(
        download_part_size=512 * KiB,
        download_threshold=(256 * KiB) if ranged else (4096 * KiB),
        write_chunk=64 * KiB,
        retry_base=0.01,
        fsync=True,
    )
    async with AsyncLightning(url, user_id="u", api_key="k") as client:
        engine = TransferEngine(client.transport, cfg)
        target = RemoteTarget("/v1/projects/p/artifacts", "a/b.bin")
        dest = tmp_path / "b.bin"
        res = await engine.download_file(target, dest, size=len(PAYLOAD))
        pool = engine._buffer_pool() if _direct_works(tmp_path) else None
    assert dest.read_bytes() == PAYLOAD  # the padding of the last block was cut off
    assert res.ranges == (3 if ranged else 1)
    # each break was continued from the last whole buffer written before it: past the
    # range's start (no byte fetched twice beyond that buffer), at a block boundary
    starts = [int(r[6:].split("-")[0]) if r else 0 for r in srv.ranges]
    continued = [x for x in starts if x % (512 * KiB)] if ranged else starts[1:]
    assert continued
    for x in continued:
        assert x > 0
        if pool is not None:
            assert x % ALIGN == 0
    if pool is not None:  # the buffers went back to the pool for the next file
        assert pool.lent == 0 and 1 <= pool.free <= 4
    assert not list(tmp_path.glob(".*aiolightning-part"))  # noqa: ASYNC240


def test_write_buffer_falls_back_to_buffered_when_the_kernel_refuses(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not enable_direct(fd):
            pytest.skip("this filesystem has no O_DIRECT")
        buf = AlignedBuffer(2 * ALIGN)
        data = bytes(range(256)) * 20  # 5,120 bytes
        buf.take(memoryview(data))
        md5 = hashlib.md5()
        write_buffer(fd, buf, 7, md5)  # an unaligned offset: O_DIRECT says EINVAL
        assert md5.hexdigest() == hashlib.md5(data).hexdigest()
    finally:
        os.close(fd)
    assert path.read_bytes() == bytes(7) + data  # written buffered, unpadded
