"""Requests per second the emulator serves, in its own process, at concurrency 64.

Drives, with one aiohttp client in this process:

* `GET /v1/auth/whoami`                                (small GET: auth + routing + JSON)
* `GET /v1/projects/{pid}/cloudspaces/{id}/codestatus` (a running studio's status)

against `python -m aiolightning.emulator` started by `spawn_emulator` (no faults), and, as
the baseline, a bare `aiohttp.web` app in a subprocess answering a fixed small JSON body.

    python benchmarks/bench_emulator.py                 # 3 rounds x 3 rows x 3 s
    python benchmarks/bench_emulator.py --seconds 2 --rounds 1 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp

from aiolightning.emulator import EmulatorConfig, Timings, spawn_emulator

BARE_SERVER = r"""
import sys
from aiohttp import web

async def whoami(request):
    return web.json_response({"userId": "u", "username": "emu-user"})

async def main():
    app = web.Application()
    app.router.add_get("/v1/auth/whoami", whoami)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    import asyncio
    await asyncio.Event().wait()

import asyncio
asyncio.run(main())
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), for CPU per request under load."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


@contextlib.contextmanager
def bare_server() -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen([sys.executable, "-c", BARE_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def drive(
    url: str, headers: dict[str, str], seconds: float, concurrency: int, server_pid: int
) -> tuple[float, float, float, float]:
    """(requests/s, p50 ms, p99 ms, server CPU µs per request) over `seconds` after a warm-up."""
    conn = aiohttp.TCPConnector(limit=concurrency)
    latencies: list[float] = []
    count = 0
    async with aiohttp.ClientSession(connector=conn, headers=headers) as s:
        measuring = False
        stop_at = 0.0

        async def worker() -> None:
            nonlocal count
            while True:
                t = time.perf_counter()
                if measuring and t >= stop_at:
                    return
                async with s.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{url}: HTTP {r.status}")
                if measuring:
                    latencies.append(time.perf_counter() - t)
                    count += 1

        warm_end = time.perf_counter() + 0.5
        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(max(0.0, warm_end - time.perf_counter()))
        start = time.perf_counter()
        cpu0 = cpu_seconds(server_pid)
        stop_at = start + seconds
        measuring = True
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(server_pid) - cpu0
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return count / elapsed, p50, p99, cpu / count * 1e6


async def studio_url(base: str, pid: str, headers: dict[str, str]) -> str:
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.post(f"{base}/v1/projects/{pid}/cloudspaces", json={"name": "bench"}) as r:
            sid = (await r.json())["id"]
        body = {"computeConfig": {"name": "cpu-4", "spot": False}}
        async with s.post(f"{base}/v1/projects/{pid}/cloudspaces/{sid}/start", json=body) as r:
            assert r.status == 200
        await asyncio.sleep(0.1)
    return f"{base}/v1/projects/{pid}/cloudspaces/{sid}/codestatus"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="rows interleaved; best round reported")
    a = ap.parse_args()

    names = [
        "bare aiohttp.web, small JSON (baseline)",
        "emulator GET /v1/auth/whoami",
        "emulator GET .../cloudspaces/{id}/codestatus",
    ]
    best: dict[str, tuple[float, float, float, float]] = {}

    def keep(name: str, result: tuple[float, float, float, float]) -> None:
        if name not in best or result[0] > best[name][0]:
            best[name] = result

    config = EmulatorConfig(timings=Timings(studio_start=0.05))
    with bare_server() as (bare, bare_pid), spawn_emulator(seed=0, config=config) as emu:
        emu_pid = emu.proc.pid  # type: ignore[attr-defined]
        headers = {"Authorization": aiohttp.encode_basic_auth(emu.user_id, emu.api_key)}
        status_url = asyncio.run(studio_url(emu.url, emu.teamspace_id, headers))
        targets = [
            (names[0], bare + "/v1/auth/whoami", {}, bare_pid),
            (names[1], emu.url + "/v1/auth/whoami", headers, emu_pid),
            (names[2], status_url, headers, emu_pid),
        ]
        for _ in range(a.rounds):
            for name, url, hdrs, pid in targets:
                keep(name, asyncio.run(drive(url, hdrs, a.seconds, a.concurrency, pid)))

    base = best[names[0]][0]
    print(
        f"\nconcurrency {a.concurrency}, {a.seconds:g} s per row, best of {a.rounds} interleaved "
        "rounds, server in its own process, client in this one, loopback\n"
    )
    print(
        f"{'endpoint':<46} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'vs bare':>8}"
        f" {'server CPU µs/req':>18}"
    )
    print("-" * 99)
    for name in names:
        rps, p50, p99, cpu_us = best[name]
        print(
            f"{name:<46} {rps:>8,.0f} {p50:>7.2f} {p99:>7.2f} {rps / base:>7.2f}x {cpu_us:>18.0f}"
        )
    print(
        "\nreq/s is bounded by whichever side saturates a core first (usually this client);"
        "\nserver CPU µs/req is the emulator's own cost and holds up better on a busy machine."
    )


if __name__ == "__main__":
    main()
