"""The blocking client's cost, for bench_transport.py: the hop per call, and threads sharing it.

Against the emulator in another process:

* sequential ``api.auth.whoami``: the async client, the sync client, and beside them a bare
  no-op hop (``run_coroutine_threadsafe`` of a coroutine that returns at once, to a loop in a
  thread) -- the sync client's extra cost per call over the async one should stay within
  1.5x that hop;
* against an emulator with 20 ms latency: 8 threads sharing one sync client vs 1 thread
  (their calls run concurrently on the client's loop: >= 4x the calls per second).
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from aiolightning import Lightning
from aiolightning.emulator import EmulatorConfig, Faults, spawn_emulator


async def _noop() -> None:
    return None


def sequential(url: str, uid: str, key: str, batches: int, size: int) -> dict[str, list[float]]:
    """µs per call, batch by batch, the four rows interleaved batch after batch (so that they
    share the machine's noise): the async client awaited on the sync client's own loop (same
    connection pool), the sync client, a bare no-op hop, and a no-op call of the sync client."""
    rows: dict[str, list[float]] = {"async": [], "sync": [], "bare hop": [], "portal hop": []}
    hop_loop = asyncio.new_event_loop()
    hop_thread = threading.Thread(target=hop_loop.run_forever, daemon=True)
    hop_thread.start()
    with Lightning(url, user_id=uid, api_key=key) as client:
        aio = client.aio

        async def async_batch() -> float:
            t0 = time.perf_counter()
            for _ in range(size):
                await aio.api.auth.whoami()
            return time.perf_counter() - t0

        def timed(fn: Callable[[], object]) -> float:
            t0 = time.perf_counter()
            for _ in range(size):
                fn()
            return time.perf_counter() - t0

        whoami = client.api.auth.whoami
        for i in range(batches + 2):  # the first two warm up
            got = {
                "async": client.run(async_batch()),
                "sync": timed(whoami),
                "bare hop": timed(
                    lambda: asyncio.run_coroutine_threadsafe(_noop(), hop_loop).result()
                ),
                "portal hop": timed(lambda: client.run(_noop())),
            }
            if i >= 2:
                for k, v in got.items():
                    rows[k].append(v / size * 1e6)
    hop_loop.call_soon_threadsafe(hop_loop.stop)
    hop_thread.join()
    hop_loop.close()
    return rows


def threads_calls_per_s(url: str, uid: str, key: str, threads: int, per_thread: int) -> float:
    with Lightning(url, user_id=uid, api_key=key) as client:
        client.api.auth.whoami()

        def work(_i: int) -> None:
            for _ in range(per_thread):
                client.api.auth.whoami()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(threads)))
        return threads * per_thread / (time.perf_counter() - t0)


def run(calls: int, rounds: int) -> None:
    size = 50
    with spawn_emulator(seed=0) as emu:
        rows = sequential(emu.url, emu.user_id, emu.api_key, max(1, calls * rounds // size), size)
    med = {k: statistics.median(v) for k, v in rows.items()}
    best = {k: min(v) for k, v in rows.items()}
    print(
        f"\nsync client: sequential api.auth.whoami, emulator in another process, "
        f"{len(rows['sync']) * size} calls each, in interleaved batches of {size} (µs per call)"
    )
    print(f"{'':<46}{'best batch':>11}{'median':>9}")
    names = {
        "async": "async client (AsyncLightning)",
        "sync": "sync client (Lightning)",
        "bare hop": "bare no-op hop (run_coroutine_threadsafe)",
        "portal hop": "no-op call of the sync client (LoopThread)",
    }
    for key, label in names.items():
        print(f"{label:<46}{best[key]:>11.1f}{med[key]:>9.1f}")
    for what, d in (("best", best), ("median", med)):
        extra = d["sync"] - d["async"]
        print(
            f"sync client's extra cost per call ({what}): {extra:+.1f} µs = "
            f"{extra / d['bare hop']:+.2f}x the bare hop (target <= 1.5x)"
        )

    faults = Faults(latency=0.02)
    with spawn_emulator(seed=0, config=EmulatorConfig(faults=faults)) as emu:
        one = threads_calls_per_s(emu.url, emu.user_id, emu.api_key, 1, 50)
        eight = threads_calls_per_s(emu.url, emu.user_id, emu.api_key, 8, 50)
    print("\nsync client shared by threads, emulator with 20 ms latency (calls/s)")
    print(f"{'1 thread':<44}{one:>10.1f}")
    print(f"{'8 threads, one client':<44}{eight:>10.1f}")
    print(f"8 threads / 1 thread: {eight / one:.2f}x (target >= 4x)")
