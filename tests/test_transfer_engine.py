"""The transfer engine against a deliberately flaky object server (a tiny aiohttp app)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from aiolightning import AsyncLightning
from aiolightning.transfer import ByteBudget, RemoteTarget, TransferConfig, TransferEngine

pytestmark = pytest.mark.anyio

PAYLOAD = hashlib.sha256(b"seed").digest() * (1024 * 1024 // 32)  # 1 MiB
KiB = 1024


class Flaky:
    """Serves PAYLOAD with Range support; the first request for the whole object or for a
    whole 256 KiB range is cut halfway through its body."""

    def __init__(self) -> None:
        self.ranges: list[str] = []
        self.cut: set[str] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        size = len(PAYLOAD)
        headers = {"ETag": '"x"', "Accept-Ranges": "bytes"}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(size)})
        rng = request.headers.get("Range", "")
        self.ranges.append(rng)
        start, end = 0, size - 1
        status = 200
        if rng:
            a, _, b = rng[6:].partition("-")
            start, end = int(a), int(b) if b else size - 1
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        body = PAYLOAD[start : end + 1]
        headers["Content-Length"] = str(len(body))
        resp = web.StreamResponse(status=status, headers=headers)
        await resp.prepare(request)
        whole = rng == "" or (start % (256 * KiB) == 0 and end - start + 1 == 256 * KiB)
        if whole and rng not in self.cut and len(body) > 1:
            self.cut.add(rng)
            await resp.write(body[: len(body) // 2])
            assert request.transport is not None
            request.transport.close()  # the connection breaks mid-body
            return resp
        await resp.write(body)
        await resp.write_eof()
        return resp


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[str, Flaky]]:
    f = Flaky()
    app = web.Application()
    app.router.add_route("*", "/v1/projects/p/artifacts/blobs/{path:.*}", f.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", f
    await runner.cleanup()


@pytest.mark.parametrize("ranged", [True, False])
async def test_a_broken_range_continues_where_it_stopped(
    flaky: tuple[str, Flaky], tmp_path: Path, ranged: bool
) -> None:
    url, server = flaky
    cfg = TransferConfig(
        download_part_size=256 * KiB,
        download_threshold=(128 * KiB) if ranged else (4 * 1024 * KiB),
        write_chunk=64 * KiB,
        retry_base=0.01,
        fsync=False,
    )
    async with AsyncLightning(url, user_id="u", api_key="k") as client:
        engine = TransferEngine(client.transport, cfg)
        target = RemoteTarget("/v1/projects/p/artifacts", "a/b.bin")
        dest = tmp_path / "b.bin"
        res = await engine.download_file(target, dest)
    assert dest.read_bytes() == PAYLOAD
    assert res.ranges == (4 if ranged else 1)
    # every range broke once and was asked again from where its bytes stopped, not from
    # its start (bytes already in the file are not fetched twice)
    assert len(server.cut) == res.ranges
    again = [r for r in server.ranges if r not in server.cut]
    assert len(again) == res.ranges
    for r in again:
        start = int(r[6:].split("-")[0])
        assert start % (256 * KiB) != 0 or (not ranged and start > 0)
    assert not list(tmp_path.glob(".*aiolightning-part"))  # noqa: ASYNC240


async def test_byte_budget_is_fifo_and_never_exceeded() -> None:
    import anyio.lowlevel

    budget = ByteBudget(100)
    order: list[int] = []

    async def take(i: int, n: int) -> None:
        async with budget.hold(n):
            order.append(i)
            assert budget.in_use <= 100 or budget.in_use == n
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        for i, n in enumerate([60, 60, 10, 500, 10]):
            tg.start_soon(take, i, n)
            await anyio.lowlevel.checkpoint()
    assert order == [0, 1, 2, 3, 4]  # FIFO: the small ones do not overtake the big one
    assert budget.peak <= 500 and budget.in_use == 0
