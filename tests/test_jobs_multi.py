"""Multi-machine jobs and following logs, against the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from aiolightning import InvalidArgumentError
from aiolightning._client import AsyncLightning
from aiolightning._retry import RetryPolicy
from aiolightning.emulator import Emulator
from aiolightning.emulator._config import EmulatorConfig, Faults, Timings
from aiolightning.resources.jobs import JobRequest, JobStatus

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(base=0.02, max_wait=0.5, max_attempts=8)


def make_client(emu: Emulator, **kw: object) -> AsyncLightning:
    client = emu.client(retry=FAST_RETRY, **kw)
    client.jobs.poll_initial = 0.05
    client.jobs.poll_cap = 0.2
    client.jobs.follow_initial = 0.05
    client.jobs.follow_cap = 0.1
    return client


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    t = Timings(job_pending=0.05, job_creating=0.05, job_running=0.3, job_finishing=0.05,
                job_stop=0.05, log_lines=5)  # fmt: skip
    async with Emulator(config=EmulatorConfig(timings=t)) as e:
        yield e


async def test_four_machines_to_completion_with_per_machine_logs(emu: Emulator) -> None:
    async with make_client(emu) as client:
        job = await client.jobs.submit("train", "python train.py", image="pytorch", machines=4)
        assert job.is_multi_machine and job.machines == 4
        assert job.status in (JobStatus.PENDING, JobStatus.RUNNING)
        done = await client.jobs.wait(job, timeout=20)
        assert done.status is JobStatus.COMPLETED
        machines = await client.jobs.machines(job)
        assert [m.rank for m in machines] == [0, 1, 2, 3]
        assert all(m.status is JobStatus.COMPLETED and m.multi_machine_job_id == job.id
                   for m in machines)  # fmt: skip
        for m in machines:
            lines = [ln async for ln in client.jobs.logs(job, rank=m.rank)]
            assert {ln.resource_id for ln in lines} == {m.id}
            assert [ln.line for ln in lines] == list(
                range(2, 2 + len(lines))
            )  # "+ lightning" dropped
            assert lines[-1].message == f"Job {m.name} finished successfully"
        every = [ln async for ln in client.jobs.logs("train")]
        assert len(every) == 4 * 8 - 1 and {ln.resource_id for ln in every} == {
            m.id for m in machines
        }
        assert (await client.jobs.get("train")).id == job.id  # found by name (getbyname)
        await client.jobs.delete(job)
        assert not emu.state.mmts.by_id and not emu.state.jobs.by_id


async def test_stop_a_failing_rank_and_follow_all_ranks(emu: Emulator) -> None:
    async with make_client(emu) as client:
        long = await client.jobs.submit(
            "long", "sleep", image="x", machines=2, env={"EMULATOR_RUNNING_SECONDS": "60"}
        )
        stopped = await client.jobs.stop(long, timeout=10)
        assert stopped.status is JobStatus.STOPPED
        assert all(m.status is JobStatus.STOPPED for m in await client.jobs.machines(long))

        bad = await client.jobs.submit(
            "bad", "x", image="x", machines=3, env={"EMULATOR_FAIL_RANK": "1"}
        )
        followed = [ln async for ln in client.jobs.logs(bad, follow=True)]
        assert (await client.jobs.status(bad)) is JobStatus.FAILED
        by_machine = {m.rank: m for m in await client.jobs.machines(bad)}
        assert (
            by_machine[1].status is JobStatus.FAILED and by_machine[0].status is JobStatus.COMPLETED
        )
        for m in by_machine.values():
            mine = [ln.line for ln in followed if ln.resource_id == m.id]
            assert mine == sorted(set(mine)) and len(mine) == 8 - (m.rank == 0)


async def test_submit_many_watch_and_poll_mix_single_and_multi(emu: Emulator) -> None:
    async with make_client(emu) as client:
        reqs = [JobRequest(f"m{i}", "run", image="x", machines=1 + i % 3) for i in range(30)]
        reqs.append(JobRequest("zero", "run", image="x", machines=0))  # fails alone
        outs = await client.jobs.submit_many(reqs)
        assert [o.ok for o in outs] == [True] * 30 + [False]
        assert isinstance(outs[-1].error, InvalidArgumentError)
        jobs = [o.result() for o in outs[:30]]
        assert sum(j.is_multi_machine for j in jobs) == 20
        final = {c.job.id: c.status async for c in client.jobs.watch(jobs, timeout=30)}
        assert len(final) == 30 and set(final.values()) == {JobStatus.COMPLETED}
        polled = await client.jobs.poll(jobs)
        assert set(polled) == {j.id for j in jobs}
        assert len(emu.state.mmts.by_id) == 20


async def test_follow_10000_lines_exactly_once_in_order(emu: Emulator) -> None:
    async with make_client(emu) as client:
        job = await client.jobs.submit(
            "chatty", "python loop.py", image="x",
            env={"EMULATOR_LOG_LINES": "10000", "EMULATOR_RUNNING_SECONDS": "1.5"},
        )  # fmt: skip
        emu.config.faults = Faults(error_rate=0.05)
        got = [ln async for ln in client.jobs.logs(job, follow=True, page_size=700)]
        assert (await client.jobs.status(job)) is JobStatus.COMPLETED
        steps = [ln.message for ln in got if "] step " in ln.message]
        assert steps == [f"[chatty] step {i}/10000" for i in range(1, 10001)]
        assert [ln.line for ln in got] == list(range(2, 10004))
        assert got[-1].message == "Job chatty finished successfully"
        assert emu.counters.get("faults:error") > 0
        polls = emu.counters.get("requests:GET /v1/projects/{projectId}/page-logs")
        assert polls > 15  # read while it ran, not once at the end


async def test_mmt_submit_after_an_ambiguous_timeout_makes_one(emu: Emulator) -> None:
    trace = aiohttp.TraceConfig()
    fired = False

    async def on_start(s: object, ctx: object, params: aiohttp.TraceRequestStartParams) -> None:
        nonlocal fired
        if (
            not fired
            and params.method == "POST"
            and params.url.path.endswith("/multi-machine-jobs")
        ):
            fired = True
            emu.config.faults.latency = 0.6
            asyncio.get_running_loop().call_later(0.65, setattr, emu.config.faults, "latency", 0.0)

    trace.on_request_start.append(on_start)
    async with make_client(emu, timeout=0.3, trace_configs=[trace]) as client:
        job = await client.jobs.submit("once", "run", image="x", machines=2)
        assert job.name == "once" and job.machines == 2
        assert client.limiter.stats()["write"].errors >= 1
        assert len(emu.state.mmts.by_id) == 1 and len(emu.state.jobs.by_id) == 2


async def test_bad_input_before_any_request(emu: Emulator) -> None:
    async with make_client(emu) as client:
        before = emu.counters.get("requests")
        for kw in ({"machines": 0}, {"machines": -2}, {"machines": 2.5}):
            with pytest.raises(InvalidArgumentError):
                await client.jobs.submit("x", "run", image="x", **kw)  # type: ignore[arg-type]
        for kw2 in ({"rank": -1}, {"page_size": 0}, {"interval": -1}):
            with pytest.raises(InvalidArgumentError):
                async for _ in client.jobs.logs("x", **kw2):  # type: ignore[arg-type]
                    pass
        assert emu.counters.get("requests") == before
