"""Client overhead of the aiolightning Transport against bare aiohttp.

A tiny aiohttp server runs in another process on 127.0.0.1 and answers a small JSON GET.
The client sends the same requests at a fixed concurrency, first with a bare
``aiohttp.ClientSession`` (``resp.read()`` + ``msgspec`` decode, the cheapest honest
baseline), then through ``AsyncLightning(...).transport.request`` (auth header, limiter slot,
retry bookkeeping, error mapping, typed msgspec decoding). It prints requests/s and client
CPU per request (``time.process_time`` of this process: the server's CPU is not counted)
and the ratio.

    python benchmarks/bench_transport.py [--requests 20000] [--concurrency 100] [--rounds 3]
                                         [--sync-calls 2000] [--sync-only]

Then the blocking client (benchmarks/_bench_sync.py): its extra cost per call over the
async client beside a bare no-op ``run_coroutine_threadsafe`` hop, and 8 threads vs 1
sharing one client against an emulator with 20 ms latency.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

import aiohttp
import msgspec

SERVER = r"""
import sys
from aiohttp import web
BODY = b'{"id":"cs-123","name":"my-studio","projectId":"p-1","state":"CLOUD_SPACE_STATE_RUNNING","sizeGb":"100"}'
async def handler(request):
    return web.Response(body=BODY, content_type="application/json")
app = web.Application()
app.router.add_get("/v1/item", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


class Item(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    id: str | None = None
    name: str | None = None
    project_id: str | None = msgspec.field(default=None, name="projectId")
    state: str | None = None
    size_gb: str | int | None = msgspec.field(default=None, name="sizeGb")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


async def drive(
    one: Callable[[], Awaitable[object]], total: int, concurrency: int
) -> tuple[float, float]:
    """Run ``total`` calls of ``one`` with ``concurrency`` workers; (wall s, client CPU s)."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - w0, time.process_time() - c0


#: what aiolightning sends on every API call (UA, Accept, Basic auth for user-123/key-abc)
API_HEADERS = {
    "User-Agent": "aiolightning/bench",
    "Accept": "application/json",
    "Authorization": "Basic dXNlci0xMjM6a2V5LWFiYw==",
}


async def bench_bare(
    url: str, total: int, concurrency: int, headers: dict[str, str] | None = None
) -> tuple[float, float]:
    decoder = msgspec.json.Decoder(Item)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        target = url + "/v1/item"

        async def one() -> object:
            async with session.get(target, headers=headers) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(resp.status)
                return decoder.decode(body)

        await drive(one, min(2000, total), concurrency)  # warm up the pool
        return await drive(one, total, concurrency)


async def bench_transport(url: str, total: int, concurrency: int) -> tuple[float, float]:
    from aiolightning import AsyncLightning, LimiterConfig

    limits = LimiterConfig(initial=concurrency, max=concurrency)
    async with AsyncLightning(
        url, user_id="user-123", api_key="key-abc", connector_limit=concurrency, limits=limits
    ) as client:
        transport = client.transport

        async def one() -> object:
            return await transport.request("GET", "/v1/item", response_type=Item)

        await drive(one, min(2000, total), concurrency)
        result = await drive(one, total, concurrency)
        st = client.limiter.stats("read")
        assert st.in_flight == 0 and st.retries == 0, st
        return result


class _StubResponse:
    status = 200
    reason = "OK"
    headers: ClassVar[dict[str, str]] = {}

    async def read(self) -> bytes:
        return STUB_BODY

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


class _StubSession:
    """Answers instantly from memory: isolates the CPU of the aiolightning layer itself."""

    closed = False
    connector = None
    trust_env = False  # no environment proxies: the stub is never a network
    headers: ClassVar[dict[str, str]] = {}
    _resp = _StubResponse()

    async def request(self, method: str, url: object, **kw: object) -> _StubResponse:
        return self._resp

    async def close(self) -> None:
        pass


STUB_BODY = (
    b'{"id":"cs-123","name":"my-studio","projectId":"p-1",'
    b'"state":"CLOUD_SPACE_STATE_RUNNING","sizeGb":"100"}'
)


async def layer_cost(n: int = 100_000) -> tuple[float, float]:
    """(µs per call: the same stub call + decode done by hand, µs through Transport.request)."""
    from aiolightning import AsyncLightning

    stub = _StubSession()
    decoder = msgspec.json.Decoder(Item)

    async def by_hand() -> object:
        resp = await stub.request("GET", "http://x/v1/item", headers=API_HEADERS)
        body = await resp.read()
        resp.release()
        return decoder.decode(body)

    client = AsyncLightning(
        "http://x",
        user_id="user-123",
        api_key="key-abc",
        session=stub,  # type: ignore[arg-type]
    )
    transport = client.transport
    out = []
    for fn in (by_hand, lambda: transport.request("GET", "/v1/item", response_type=Item)):
        gc.collect()
        c0 = time.process_time()
        for _ in range(n):
            await fn()
        out.append((time.process_time() - c0) / n * 1e6)
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sync-calls", type=int, default=2000, help="calls per sync-client round")
    ap.add_argument("--sync-only", action="store_true", help="only the sync-client rows")
    args = ap.parse_args()
    if not args.sync_only:
        transport_rows(args)
    from _bench_sync import run as sync_rows

    sync_rows(args.sync_calls, args.rounds)


def transport_rows(args: argparse.Namespace) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}"
        results: dict[str, list[tuple[float, float]]] = {
            "bare aiohttp": [],
            "aiohttp+headers": [],
            "aiolightning": [],
        }
        for _ in range(args.rounds):  # interleave to share the machine's noise
            results["bare aiohttp"].append(
                asyncio.run(bench_bare(url, args.requests, args.concurrency))
            )
            results["aiohttp+headers"].append(
                asyncio.run(bench_bare(url, args.requests, args.concurrency, API_HEADERS))
            )
            results["aiolightning"].append(
                asyncio.run(bench_transport(url, args.requests, args.concurrency))
            )
    finally:
        server.terminate()
        server.wait(10)

    print(
        f"\nsmall JSON GET, {args.requests} requests x {args.rounds} rounds, "
        f"concurrency {args.concurrency}, server in another process, {os.cpu_count()} CPUs"
    )
    print(f"{'client':<18}{'req/s (best)':>14}{'CPU us/req (best)':>20}{'CPU us/req (median)':>22}")
    best: dict[str, float] = {}
    median: dict[str, float] = {}
    for name, runs in results.items():
        rps = max(args.requests / wall for wall, _ in runs)
        cpus = sorted(cpu / args.requests * 1e6 for _, cpu in runs)
        best[name] = cpus[0]
        median[name] = cpus[len(cpus) // 2]
        print(f"{name:<18}{rps:>14,.0f}{cpus[0]:>20.1f}{cpus[len(cpus) // 2]:>22.1f}")
    print()
    for base in ("bare aiohttp", "aiohttp+headers"):
        rb = best["aiolightning"] / best[base]
        rm = median["aiolightning"] / median[base]
        print(
            f"client CPU per request, aiolightning / {base}: best {rb:.2f}x "
            f"({(rb - 1) * 100:+.0f}%), median {rm:.2f}x ({(rm - 1) * 100:+.0f}%)"
        )
    print(
        "(aiohttp+headers sends the same User-Agent, Accept and Authorization headers as "
        "aiolightning; bare aiohttp sends only its defaults)"
    )
    hand, layer = min(asyncio.run(layer_cost()) for _ in range(3))
    print(
        f"\naiolightning layer alone (stub session, no network): {layer:.1f} µs per request "
        f"vs {hand:.1f} µs for the same stub call by hand -> {layer - hand:.1f} µs of "
        f"auth/limiter/retry/decoding bookkeeping per request"
    )


if __name__ == "__main__":
    main()
