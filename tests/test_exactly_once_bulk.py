"""Exactly once in bulk: hundreds of items per mutating call, under attack.

Before the act, the emulator answers 3 % of requests with a 500/503 and drops 2 % (its
``error_rate``/``drop_rate``) and enforces a rate limit (429 + ``Retry-After``); after the
act, the fault proxy of ``_fault_proxy.py`` spoils 5 % of the answers the emulator gave
(dropped, 500/502/503 with an HTML body, truncated). Then the emulator's own records must
show each effect exactly once, every item an ``Outcome`` and every outcome a success (no
error that a retry or a reconcile could have absorbed), and nothing half-done.

Each test prints one line per call (run with ``-s`` to see the table for the note).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from _fault_proxy import FaultProxy, fault_proxy, proxied_client
from _storage import PART, small_config

from aiolightning import AsyncLightning
from aiolightning._retry import RetryPolicy
from aiolightning.emulator import Emulator
from aiolightning.emulator._config import EmulatorConfig, Faults, Timings
from aiolightning.fanout import Outcome, map_outcomes
from aiolightning.resources.jobs import JobRequest, JobStatus
from aiolightning.resources.studios import StudioStatus

pytestmark = pytest.mark.anyio

N = 300
RATE = 600.0  # requests/s per credential: the limiter must live with it, not exceed it
RETRY = RetryPolicy(base=0.02, max_wait=0.5, max_attempts=10, deadline=None)
TIMINGS = Timings(
    studio_start=0.1, studio_stop=0.05, studio_switch=0.1, command=0.02,
    job_pending=0.05, job_creating=0.05, job_running=30.0, job_finishing=0.02, job_stop=0.02,
)  # fmt: skip
BEFORE = {"error_rate": 0.03, "drop_rate": 0.02}
AFTER = 0.05
EVERY_METHOD = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


@asynccontextmanager
async def under_attack() -> AsyncIterator[tuple[Emulator, FaultProxy, AsyncLightning]]:
    faults = Faults(rate_limit=RATE, rate_burst=20, **BEFORE)
    async with Emulator(config=EmulatorConfig(timings=TIMINGS, faults=faults)) as emu:
        async with fault_proxy(emu.url, rate=AFTER, methods=EVERY_METHOD) as proxy:
            async with proxied_client(emu, proxy, retry=RETRY, timeout=30) as client:
                client.studios.poll_initial = 0.05
                client.studios.poll_cap = 0.3
                yield emu, proxy, client


class Table:
    """Faults injected during each phase, read from the emulator and the proxy."""

    def __init__(self, emu: Emulator, proxy: FaultProxy) -> None:
        self.emu, self.proxy = emu, proxy
        self._mark()

    def _mark(self) -> None:
        self._counters = dict(self.emu.counters.snapshot())
        self._proxy = Counter(self.proxy.injected)

    def row(self, call: str, items: int, counts: Sequence[int]) -> None:
        """Check and print one call's line: ``counts`` holds, per item, how many times the
        emulator records its effect (it must be 1 for each)."""
        now = self.emu.counters.snapshot()

        def d(key: str) -> int:
            return int(now.get(key, 0)) - int(self._counters.get(key, 0))

        after = self.proxy.injected - self._proxy
        duplicates = sum(n - 1 for n in counts if n > 1)
        lost = sum(1 for n in counts if n == 0)
        print(
            f"\n| {call} | {items} | 429: {d('throttled')}, 5xx before: {d('faults:error')}, "
            f"drop before: {d('faults:drop')}, drop after: {after['drop']}, 5xx after: "
            f"{after['500'] + after['502'] + after['503']}, truncated: {after['truncate']} "
            f"| {sum(counts)} | {duplicates} | {lost} |"
        )
        assert (duplicates, lost) == (0, 0), call
        self._mark()


def all_ok(outs: Sequence[Outcome[Any, Any]], n: int) -> list[Any]:
    assert len(outs) == n
    errors = [(o.item, o.error) for o in outs if not o.ok]
    assert errors == []
    return [o.value for o in outs]


async def test_studios_exactly_once_in_bulk() -> None:
    async with under_attack() as (emu, proxy, client):
        table = Table(emu, proxy)
        studios_of = emu.state.studios.by_id
        names = [f"bulk-{i}" for i in range(N)]

        created = all_ok(await client.studios.create_many(names, concurrency=64), N)
        mine = [s for s in studios_of.values() if s.name.startswith("bulk-")]
        per_name = Counter(s.name for s in mine)
        assert sorted(per_name) == sorted(names) and set(per_name.values()) == {1}
        assert all(emu.counters.get(f"creates:studio:{n}") == 1 for n in names)
        assert all(len(s.runs) == 1 for s in mine)  # each registered its run, once
        table.row("studio create (+ its run)", N, [per_name[n] for n in names])
        ids = [s.id for s in created]

        states = all_ok(await client.studios.start_many(created, timeout=120), N)
        assert all(s.status is StudioStatus.RUNNING for s in states)
        starts = [emu.counters.get(f"starts:{i}") for i in ids]
        assert set(starts) == {1}
        table.row("studio start", N, starts)

        async def run(studio: Any) -> int:
            result = await client.studios.run(studio, f"echo {studio.name}", timeout=60)
            assert result.output.strip() == studio.name
            return result.exit_code

        assert set(all_ok(await map_outcomes(run, created, concurrency=64), N)) == {0}
        sessions = [len(studios_of[i].sessions) for i in ids]
        assert set(sessions) == {1}
        table.row("studio run (command)", N, sessions)

        async def switch(studio: Any) -> Any:
            return await client.studios.switch_machine(studio, "cpu-8", timeout=120)

        switched = all_ok(await map_outcomes(switch, created, concurrency=64), N)
        assert all(s.machine == "cpu-8" for s in switched)
        switches = [emu.counters.get(f"switches:{i}") for i in ids]
        assert set(switches) == {1}
        table.row("studio switch", N, switches)

        stopped = all_ok(await client.studios.stop_many(created, timeout=120), N)
        assert all(s.status is StudioStatus.STOPPED for s in stopped)
        table.row("studio stop", N, [int(s.status is StudioStatus.STOPPED) for s in stopped])

        all_ok(await client.studios.delete_many(created, missing_ok=False), N)
        assert not [s for s in studios_of.values() if s.name.startswith("bulk-")]
        assert emu.counters.get("deletes:studio") == N
        table.row("studio delete", N, [int(i not in studios_of) for i in ids])


async def test_jobs_exactly_once_in_bulk() -> None:
    async with under_attack() as (emu, proxy, client):
        table = Table(emu, proxy)
        jobs_of = emu.state.jobs.by_id
        # 100 names, 3 submits each: the service names them n, n-2, n-3 (the reconcile
        # must find its own among them)
        reqs = [JobRequest(name=f"job-{i % 100}", command="sleep 30", image="python:3.12")
                for i in range(N)]  # fmt: skip
        jobs = all_ok(await client.jobs.submit_many(reqs, concurrency=64), N)
        assert len(jobs_of) == N and len({j.id for j in jobs}) == N
        assert all(emu.counters.get(f"creates:job:job-{k}") == 3 for k in range(100))
        assert sorted(j.name for j in jobs_of.values()) == sorted(
            f"job-{k}{s}" for k in range(100) for s in ("", "-2", "-3")
        )
        per_name = Counter(j.name for j in jobs_of.values())
        table.row("job submit", N, [per_name[j.name] for j in jobs])

        async def stop(job: Any) -> Any:
            return await client.jobs.stop(job, timeout=60)

        stopped = all_ok(await map_outcomes(stop, jobs, concurrency=64), N)
        assert all(j.status is JobStatus.STOPPED for j in stopped)
        stops = [emu.counters.get(f"stops:{j.id}") for j in jobs]
        assert set(stops) == {1}
        table.row("job stop", N, stops)

        async def delete(job: Any) -> None:
            await client.jobs.delete(job)

        all_ok(await map_outcomes(delete, jobs, concurrency=64), N)
        assert len(jobs_of) == 0 and emu.counters.get("deletes:job") == N
        table.row("job delete", N, [int(j.id not in jobs_of) for j in jobs])


def _write(path: Path, size: int, seed: int) -> str:
    data = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    path.write_bytes(data[:size])
    return hashlib.sha256(data[:size]).hexdigest()


async def test_storage_exactly_once_in_bulk(tmp_path: Path) -> None:
    small, parts_per_file, multipart = N, 4, N // 4
    src = tmp_path / "src"
    src.mkdir()
    digests: dict[str, str] = {}
    for i in range(small):
        digests[f"small/{i}.txt"] = _write(src / f"s{i}.txt", 100 + i, i)
    for i in range(multipart):
        size = parts_per_file * PART - 7
        digests[f"big/{i}.bin"] = _write(src / f"b{i}.bin", size, 10_000 + i)
    sizes: dict[str, int] = {}
    local = {remote: src / (f"s{remote[6:-4]}.txt" if remote.startswith("small") else
                            f"b{remote[4:-4]}.bin") for remote in digests}  # fmt: skip
    sizes.update({r: p.stat().st_size for r, p in local.items()})
    async with under_attack() as (emu, proxy, client):
        client.storage.configure(small_config(tmp_path, part_attempts=8))
        table = Table(emu, proxy)
        pairs = [(str(path), f"lit:///{remote}") for remote, path in local.items()]
        results = all_ok(await client.storage.upload_many(pairs, concurrency=32), len(pairs))
        assert sum(r.parts for r in results) == small + multipart * parts_per_file
        assert emu.storage.open_uploads() == []  # nothing left half-done
        completed = emu.counters.get("storage:uploads_completed")
        assert completed == multipart
        listed = {f.path: f.size async for f in client.storage.list("lit:///", recursive=True)}
        assert listed == sizes
        for remote in ("small/7.txt", "big/3.bin"):  # a sample, byte for byte
            out = tmp_path / remote.replace("/", "-")
            await client.storage.download(f"lit:///{remote}", out)
            assert hashlib.sha256(out.read_bytes()).hexdigest() == digests[remote]
        table.row(
            f"storage upload ({small} single PUTs, {multipart} x {parts_per_file} parts + complete)",
            len(pairs), [int(r in listed) for r in digests],
        )  # fmt: skip

        async def delete(remote: str) -> None:
            await client.storage.delete(f"lit:///{remote}")

        all_ok(await map_outcomes(delete, list(digests), concurrency=64), len(digests))
        assert [f async for f in client.storage.list("lit:///", recursive=True)] == []
        table.row("storage delete", len(digests), [1] * len(digests))
