"""Exactly once in bulk: hundreds of items per mutating call, under attack.

The emulator injects faults before the act (3 % of requests answered 500/503, 2 % dropped:
``error_rate``/``drop_rate``; 3 % of storage PUTs refused: ``part_failure_rate``), enforces a
rate limit (429 + ``Retry-After``), and spoils 5 % of the answers after the act
(``drop_after_rate`` 2 %, ``error_after_rate`` 2 %: a 500/502/503, some with an HTML body,
``truncate_rate`` 1 %), API calls and presigned storage PUTs alike; 1 % of the answers are
held back after the commit (``slow_commit``) past the client's read timeout.
Then its effect counters (``counters.effects(kind)``: counted where the state really
changes) must show each effect exactly once, every item an ``Outcome`` and every outcome a
success (no error that a retry or a reconcile could have absorbed), and nothing half-done.

Each test prints one line per call (run with ``-s`` to see the table for the note).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from _storage import PART, small_config

from aiolightning import AsyncLightning
from aiolightning._retry import RetryPolicy
from aiolightning._transport import Timeout
from aiolightning.emulator import Emulator
from aiolightning.emulator._config import EmulatorConfig, Faults, Timings
from aiolightning.fanout import Outcome, map_outcomes
from aiolightning.resources.deployments import DeploymentRequest
from aiolightning.resources.jobs import JobRequest, JobStatus
from aiolightning.resources.studios import StudioStatus

pytestmark = pytest.mark.anyio

N = 300
RATE = 600.0  # requests/s per credential: the limiter must live with it, not exceed it
BURST = 100  # the bucket (the emulator's default is a second's worth); each 429 pauses >= 1 s
RETRY = RetryPolicy(base=0.02, max_wait=0.5, max_attempts=10, deadline=None)
TIMINGS = Timings(
    studio_start=0.1, studio_stop=0.05, studio_switch=0.1, command=0.02,
    job_pending=0.05, job_creating=0.05, job_running=30.0, job_finishing=0.02, job_stop=0.02,
)  # fmt: skip
BEFORE = {"error_rate": 0.03, "drop_rate": 0.02}
AFTER = {"drop_after_rate": 0.02, "error_after_rate": 0.02, "truncate_rate": 0.01}
# the client gives up on an answer after READ s without a byte: a slow commit outlasts that
READ = 1.0
SLOW = {"slow_commit": 1.5 * READ, "slow_commit_rate": 0.01}


@asynccontextmanager
async def under_attack() -> AsyncIterator[tuple[Emulator, AsyncLightning]]:
    faults = Faults(rate_limit=RATE, rate_burst=BURST, **BEFORE, **AFTER, **SLOW)
    timeout = Timeout(total=None, connect=10.0, read=READ)
    async with Emulator(config=EmulatorConfig(timings=TIMINGS, faults=faults)) as emu:
        async with emu.client(retry=RETRY, timeout=timeout) as client:
            for group in (client.studios, client.jobs, client.deployments):
                group.poll_initial = 0.05
                group.poll_cap = 0.3
            yield emu, client


_KINDS = {
    "429": "throttled",
    "5xx before": "faults:error",
    "part 5xx before": "storage:parts_failed",
    "drop before": "faults:drop",
    "drop after": "faults:drop_after",
    "5xx after": "faults:error_after",
    "truncated after": "faults:truncate",
    "slow commit": "faults:slow_commit",
}


class Table:
    """Faults injected during each phase and effects counted, read from the emulator."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self._before = self.emu.counters.snapshot()

    def row(
        self,
        call: str,
        items: int,
        kind: str,
        expected: Mapping[str, int],
        *,
        repeats_ok: bool = False,
        advance: bool = True,
    ) -> None:
        """Check and print one call's line: the emulator must count the effect ``kind`` as
        often as ``expected`` says for each item key (once, mostly) and for nothing else.
        ``repeats_ok``: the call is idempotent in effect (a keep-alive: nothing can be read
        back, so one whose answer was lost is sent again, and the repeat changes nothing);
        repeats are shown as such, not a failure. ``advance=False``: the next row reads
        the same phase."""
        now = self.emu.counters.snapshot()
        before = self._before

        def d(key: str) -> int:
            return int(now.get(key, 0)) - int(before.get(key, 0))

        injected = ", ".join(f"{label}: {d(k)}" for label, k in _KINDS.items())
        counts = {key: d(f"effects:{kind}:{key}") for key in expected}
        total = d(f"effects:{kind}")
        extra = total - sum(counts.values())  # effects on items nobody asked for
        duplicates = extra + sum(max(0, counts[k] - n) for k, n in expected.items())
        lost = sum(max(0, n - counts[k]) for k, n in expected.items())
        dup = f"{duplicates} repeats (idempotent)" if repeats_ok else str(duplicates)
        print(f"\n| {call} | {items} | {injected} | {kind}: {total} | {dup} | {lost} |")
        assert lost == 0 and (repeats_ok or duplicates == 0), (call, counts)
        if advance:
            self._before = now


def all_ok(outs: Sequence[Outcome[Any, Any]], n: int) -> list[Any]:
    assert len(outs) == n
    errors = [(o.item, o.error) for o in outs if not o.ok]
    assert errors == []
    return [o.value for o in outs]


async def test_studios_exactly_once_in_bulk() -> None:
    async with under_attack() as (emu, client):
        table = Table(emu)
        studios_of = emu.state.studios.by_id
        names = [f"bulk-{i}" for i in range(N)]

        created = all_ok(await client.studios.create_many(names, concurrency=64), N)
        mine = [s for s in studios_of.values() if s.name.startswith("bulk-")]
        per_name = Counter(s.name for s in mine)
        assert sorted(per_name) == sorted(names) and set(per_name.values()) == {1}
        assert all(emu.counters.get(f"creates:studio:{n}") == 1 for n in names)
        assert all(len(s.runs) == 1 for s in mine)  # each registered its run, once
        table.row("studio create (+ its run)", N, "studio_created", dict.fromkeys(names, 1))
        ids = [s.id for s in created]

        states = all_ok(await client.studios.start_many(created, timeout=120), N)
        assert all(s.status is StudioStatus.RUNNING for s in states)
        starts = [emu.counters.get(f"starts:{i}") for i in ids]
        assert set(starts) == {1}
        table.row("studio start", N, "studio_started", dict.fromkeys(ids, 1))

        async def keep_alive(studio: Any) -> None:
            await client.studios.keep_alive(studio)

        all_ok(await map_outcomes(keep_alive, created, concurrency=64), N)
        assert all(studios_of[i].kept_alive_at is not None for i in ids)
        table.row(
            "studio keep-alive", N, "studio_kept_alive", dict.fromkeys(ids, 1), repeats_ok=True
        )

        async def run(studio: Any) -> int:
            result = await client.studios.run(studio, f"echo {studio.name}", timeout=60)
            assert result.output.strip() == studio.name
            return result.exit_code

        assert set(all_ok(await map_outcomes(run, created, concurrency=64), N)) == {0}
        sessions = [len(studios_of[i].sessions) for i in ids]
        assert set(sessions) == {1}
        table.row(
            "studio run (command)", N, "command_executed",
            {f"{s.id}:echo {s.name}": 1 for s in created},
        )  # fmt: skip

        async def switch(studio: Any) -> Any:
            return await client.studios.switch_machine(studio, "cpu-8", timeout=120)

        switched = all_ok(await map_outcomes(switch, created, concurrency=64), N)
        assert all(s.machine == "cpu-8" for s in switched)
        switches = [emu.counters.get(f"switches:{i}") for i in ids]
        assert set(switches) == {1}
        table.row("studio switch", N, "machine_switched", dict.fromkeys(ids, 1))

        stopped = all_ok(await client.studios.stop_many(created, timeout=120), N)
        assert all(s.status is StudioStatus.STOPPED for s in stopped)
        table.row("studio stop", N, "studio_stopped", dict.fromkeys(ids, 1))

        all_ok(await client.studios.delete_many(created, missing_ok=False), N)
        assert not [s for s in studios_of.values() if s.name.startswith("bulk-")]
        assert emu.counters.get("deletes:studio") == N
        table.row("studio delete", N, "studio_deleted", dict.fromkeys(ids, 1))


async def test_jobs_exactly_once_in_bulk() -> None:
    async with under_attack() as (emu, client):
        table = Table(emu)
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
        table.row("job submit", N, "job_created", {f"job-{k}": 3 for k in range(100)})

        async def stop(job: Any) -> Any:
            return await client.jobs.stop(job, timeout=60)

        stopped = all_ok(await map_outcomes(stop, jobs, concurrency=64), N)
        assert all(j.status is JobStatus.STOPPED for j in stopped)
        stops = [emu.counters.get(f"stops:{j.id}") for j in jobs]
        assert set(stops) == {1}
        table.row("job stop", N, "job_stopped", {j.id: 1 for j in jobs})

        async def delete(job: Any) -> None:
            await client.jobs.delete(job)

        all_ok(await map_outcomes(delete, jobs, concurrency=64), N)
        assert len(jobs_of) == 0 and emu.counters.get("deletes:job") == N
        table.row("job delete", N, "job_deleted", {j.id: 1 for j in jobs})

        # multi-machine jobs (2 machines each): one multi-machine job per name
        mreqs = [JobRequest(name=f"mm-{i}", command="sleep 30", image="python:3.12", machines=2)
                 for i in range(N)]  # fmt: skip
        multi = all_ok(await client.jobs.submit_many(mreqs, concurrency=64), N)
        names = [r.name for r in mreqs]
        assert sorted(m.name for m in emu.state.mmts.by_id.values()) == sorted(names)
        table.row("multi-machine job submit", N, "mmt_created", dict.fromkeys(names, 1))
        stopped = all_ok(await map_outcomes(stop, multi, concurrency=64), N)
        assert all(j.status is JobStatus.STOPPED for j in stopped)
        table.row("multi-machine job stop", N, "mmt_stopped", {j.id: 1 for j in multi})
        all_ok(await map_outcomes(delete, multi, concurrency=64), N)
        assert not emu.state.mmts.by_id and not jobs_of
        table.row("multi-machine job delete", N, "mmt_deleted", {j.id: 1 for j in multi})


async def test_deployments_exactly_once_in_bulk() -> None:
    async with under_attack() as (emu, client):
        table = Table(emu)
        deployments_of = emu.state.deployments.by_id
        reqs = [DeploymentRequest(name=f"dep-{i}", image="python:3.12", command="serve")
                for i in range(N)]  # fmt: skip
        made = all_ok(await client.deployments.create_many(reqs, concurrency=64), N)
        names = [r.name for r in reqs]
        assert sorted(d.name for d in deployments_of.values()) == sorted(names)
        table.row("deployment create", N, "deployment_created", dict.fromkeys(names, 1))
        ids = [d.id for d in made]

        async def update(d: Any) -> Any:
            return await client.deployments.update(d, replicas=2)

        updated = all_ok(await map_outcomes(update, made, concurrency=64), N)
        assert {d.replicas for d in updated} == {2}
        table.row("deployment update", N, "deployment_updated", dict.fromkeys(ids, 1))

        all_ok(await client.deployments.stop_many(made, wait=False, concurrency=64), N)
        assert {deployments_of[i].replicas for i in ids} == {0}
        table.row("deployment stop", N, "deployment_stopped", dict.fromkeys(ids, 1), advance=False)
        table.row("deployment stop (its update)", N, "deployment_updated", dict.fromkeys(ids, 1))

        async def start(d: Any) -> Any:
            return await client.deployments.start(d, replicas=1, wait=False)

        all_ok(await map_outcomes(start, made, concurrency=64), N)
        assert {deployments_of[i].replicas for i in ids} == {1}
        table.row("deployment start", N, "deployment_started", dict.fromkeys(ids, 1))

        all_ok(await client.deployments.delete_many(made, missing_ok=False, concurrency=64), N)
        assert not deployments_of
        table.row("deployment delete", N, "deployment_deleted", dict.fromkeys(ids, 1))


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
    async with under_attack() as (emu, client):
        client.storage.configure(small_config(tmp_path, part_attempts=8, part_timeout=READ))
        # a PUT refused before the store kept it looks to the client like one whose answer
        # was lost after: parts recorded by their MD5 that complete then refuses, sent again
        emu.config.faults.part_failure_rate = 0.03
        table = Table(emu)
        pairs = [(str(path), f"lit:///{remote}") for remote, path in local.items()]
        results = all_ok(await client.storage.upload_many(pairs, concurrency=32), len(pairs))
        assert sum(r.parts for r in results) == small + multipart * parts_per_file
        assert emu.storage.open_uploads() == []  # nothing left half-done
        completed = emu.counters.get("storage:uploads_completed")
        assert completed == multipart
        assert emu.counters.get("storage:completes_refused") > 0  # that path was taken
        listed = {f.path: f.size async for f in client.storage.list("lit:///", recursive=True)}
        assert listed == sizes
        for remote in ("small/7.txt", "big/3.bin"):  # a sample, byte for byte
            out = tmp_path / remote.replace("/", "-")
            await client.storage.download(f"lit:///{remote}", out)
            assert hashlib.sha256(out.read_bytes()).hexdigest() == digests[remote]
        parts = {
            f"{r}#{k}": 1
            for r in digests
            for k in range(1, 1 + (parts_per_file if r.startswith("big/") else 1))
        }
        table.row(
            f"storage upload: {small} single PUTs, {multipart} x {parts_per_file} parts",
            len(parts),
            "part_stored",
            parts,
            advance=False,
        )
        table.row(
            f"storage upload: {small} single + {multipart} multipart objects completed",
            len(pairs), "upload_completed", dict.fromkeys(digests, 1),
        )  # fmt: skip

        async def delete(remote: str) -> None:
            await client.storage.delete(f"lit:///{remote}")

        all_ok(await map_outcomes(delete, list(digests), concurrency=64), len(digests))
        assert [f async for f in client.storage.list("lit:///", recursive=True)] == []
        table.row("storage delete", len(digests), "blob_deleted", dict.fromkeys(digests, 1))
