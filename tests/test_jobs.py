"""client.jobs against the emulator: submit, find, status, wait, stop, logs, fleets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import anyio
import pytest

from aiolightning import InvalidArgumentError
from aiolightning._client import AsyncLightning
from aiolightning._retry import RetryPolicy
from aiolightning.emulator import Emulator
from aiolightning.emulator._config import EmulatorConfig, Timings
from aiolightning.resources._polling import WaitTimeoutError
from aiolightning.resources.jobs import Job, JobNotFoundError, JobRequest, JobStatus

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(base=0.02, max_wait=0.5, max_attempts=8)


def fast_timings(**kw: float) -> Timings:
    base = {
        "job_pending": 0.05,
        "job_creating": 0.05,
        "job_running": 0.2,
        "job_finishing": 0.05,
        "job_stop": 0.05,
        "studio_start": 0.1,
    }
    base.update(kw)
    return Timings(**base)  # type: ignore[arg-type]


def make_client(emu: Emulator, **kw: object) -> AsyncLightning:
    client = emu.client(retry=FAST_RETRY, **kw)
    client.jobs.poll_initial = 0.05
    client.jobs.poll_cap = 0.2
    client.studios.poll_initial = 0.05
    client.studios.poll_cap = 0.2
    return client


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(config=EmulatorConfig(timings=fast_timings())) as e:
        yield e


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncLightning]:
    async with make_client(emu) as c:
        yield c


def test_status_mapping() -> None:
    m = JobStatus.from_state
    assert m("pending") is m("creating") is m("") is m("weird") is JobStatus.PENDING
    assert m("running") is m("restarting") is JobStatus.RUNNING
    for s in ("stopping", "stop", "delete", "complete", "fail"):
        assert m(s) is JobStatus.STOPPING and not m(s).is_terminal
    assert m("stopped") is m("deleted") is JobStatus.STOPPED
    assert m("completed") is JobStatus.COMPLETED and m("failed") is JobStatus.FAILED
    assert {s for s in JobStatus if s.is_terminal} == {
        JobStatus.STOPPED,
        JobStatus.COMPLETED,
        JobStatus.FAILED,
    }


async def test_submit_wait_logs(client: AsyncLightning, emu: Emulator) -> None:
    job = await client.jobs.submit(
        "train",
        "python train.py",
        image="pytorch/pytorch",
        machine="lit-a100-1",
        env={"A": "1"},
        interruptible=True,
        max_runtime=3600,
        tags=["exp"],
    )
    assert isinstance(job, Job) and job.name == "train" and job.machine == "lit-a100-1"
    assert job.raw is None  # a fleet of submits keeps no full models
    raw = await client.jobs.model(job)
    assert raw.spec is not None and raw.id == job.id
    spec = raw.spec
    assert spec.entrypoint == "sh -c" and spec.spot is True
    assert str(spec.requested_run_duration_seconds) == "3600"
    assert {e.name: e.value for e in spec.env or []}["A"] == "1"

    assert (await client.jobs.get("train")).id == job.id
    assert (await client.jobs.get(job.id)).id == job.id
    done = await client.jobs.wait(job, timeout=10)
    assert done.status is JobStatus.COMPLETED
    lines = [line async for line in client.jobs.logs(job, page_size=5)]
    assert lines and all(line.message for line in lines)
    assert lines[0].message != "+ lightning"

    await client.jobs.delete(job)
    with pytest.raises(JobNotFoundError):
        await client.jobs.get("train")
    await client.jobs.delete(job, missing_ok=True)


async def test_studio_job_and_stop(client: AsyncLightning, emu: Emulator) -> None:
    studio = await client.studios.create("dev")
    emu.config.timings.job_running = 30
    job = await client.jobs.submit("long", "sleep 1000", studio="dev")
    assert job.studio_id == studio.id and job.image == ""
    stopped = await client.jobs.stop(job, timeout=10)
    assert stopped.status is JobStatus.STOPPED
    assert emu.counters.get(f"stops:{job.id}") == 1
    await client.jobs.stop(job, timeout=10)  # terminal: nothing sent
    assert emu.counters.get(f"stops:{job.id}") == 1


async def test_wait_times_out(client: AsyncLightning, emu: Emulator) -> None:
    emu.config.timings.job_running = 30
    job = await client.jobs.submit("forever", "sleep 1000", image="ubuntu")
    with pytest.raises(WaitTimeoutError):
        await client.jobs.wait(job, timeout=0.2)


async def test_bad_input_fails_before_any_request(client: AsyncLightning, emu: Emulator) -> None:
    await client.teamspaces.resolve()  # warm the teamspace cache
    before = emu.counters.get("requests")
    bad: list[dict[str, object]] = [
        {"name": "", "command": "x", "image": "u"},
        {"name": "j", "command": "x"},  # neither image nor studio
        {"name": "j", "command": "x", "image": "u", "studio": "s"},  # both
        {"name": "j", "image": "u", "machine": "tpu-v5"},
        {"name": "j", "studio": "s"},  # a studio job needs a command
        {"name": "j", "image": "u", "max_runtime": -5},
        {"name": "j", "image": "u", "tags": [" "]},
    ]
    for kwargs in bad:
        with pytest.raises(InvalidArgumentError):
            await client.jobs.submit(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        await client.jobs.wait("x", timeout=-1)
    assert emu.counters.get("requests") == before


def slow_first(emu: Emulator, method: str, suffix: str, delay: float) -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    fired = False

    async def on_start(
        session: aiohttp.ClientSession, ctx: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        nonlocal fired
        if not fired and params.method == method and params.url.path.endswith(suffix):
            fired = True
            emu.config.faults.latency = delay
            asyncio.get_running_loop().call_later(
                delay + 0.05, setattr, emu.config.faults, "latency", 0.0
            )

    trace.on_request_start.append(on_start)
    return trace


async def test_submit_after_an_ambiguous_timeout_creates_one_job() -> None:
    async with Emulator(config=EmulatorConfig(timings=fast_timings())) as emu:
        trace = slow_first(emu, "POST", "/jobs", 0.6)
        async with make_client(emu, timeout=0.3, trace_configs=[trace]) as client:
            job = await client.jobs.submit("once", "echo", image="ubuntu")
            assert job.name == "once"
            assert emu.counters.get("creates:job:once") == 1
            assert client.limiter.stats()["write"].errors >= 1  # the timeout did happen
            assert [j.name async for j in client.jobs.list()] == ["once"]


async def test_submit_many_and_watch_1000_jobs() -> None:
    async with Emulator(config=EmulatorConfig(timings=fast_timings(job_running=0.5))) as emu:
        async with make_client(emu) as client:
            reqs = [
                JobRequest(
                    name=f"j{i}",
                    command="echo",
                    image="ubuntu",
                    env={"EMULATOR_OUTCOME": "fail"} if i % 10 == 0 else None,
                )
                for i in range(1000)
            ]
            reqs.append(JobRequest(name="", image="ubuntu"))  # fails alone
            outs = await client.jobs.submit_many(reqs, concurrency=64)
            assert sum(o.ok for o in outs) == 1000
            assert isinstance(outs[-1].error, InvalidArgumentError)
            jobs = [o.result() for o in outs[:-1]]

            before = emu.counters.snapshot()
            final: dict[str, JobStatus] = {}
            changes = 0
            async for change in client.jobs.watch(jobs, timeout=30):
                changes += 1
                if change.previous is not None:
                    assert change.previous != change.status
                final[change.job.id] = change.status
            assert len(final) == 1000
            assert all(s.is_terminal for s in final.values())
            assert sum(s is JobStatus.FAILED for s in final.values()) == 100
            after = emu.counters.snapshot()
            gets = "requests:GET /v1/projects/{projectId}/jobs/{id}"
            lists = "requests:GET /v1/projects/{projectId}/jobs"
            # paged list calls, not 1000 GETs per round; a job that changes state while a
            # round lists the states is read alone, so a loaded machine may see a few
            assert after.get(gets, 0) - before.get(gets, 0) < 100
            assert after.get(lists, 0) - before.get(lists, 0) >= 1

            polled = await client.jobs.poll(jobs[:5])  # a few: per-job GETs
            assert set(polled) == {j.id for j in jobs[:5]}
            assert emu.counters.get(gets) - after.get(gets, 0) == 5


async def test_list_follows_pages(client: AsyncLightning) -> None:
    outs = await client.jobs.submit_many(
        [JobRequest(name=f"p{i}", command="true", image="ubuntu") for i in range(25)]
    )
    assert all(o.ok for o in outs)
    names = [j.name async for j in client.jobs.list(page_size=7)]
    assert sorted(names) == sorted(f"p{i}" for i in range(25))


async def test_cancelled_watch_leaves_nothing_in_flight(
    client: AsyncLightning, emu: Emulator
) -> None:
    emu.config.timings.job_running = 30
    outs = await client.jobs.submit_many(
        [JobRequest(name=f"w{i}", command="true", image="ubuntu") for i in range(30)]
    )
    jobs = [o.result() for o in outs]
    with anyio.move_on_after(0.3):
        async for _ in client.jobs.watch(jobs):
            pass
    assert all(st.in_flight == 0 for st in client.limiter.stats().values())
