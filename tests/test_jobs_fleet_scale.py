"""Job fleets at scale, by counting operations (never time): pages per status round, objects
the garbage collector tracks per job."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from aiolightning._client import AsyncLightning
from aiolightning.emulator import Emulator
from aiolightning.emulator._config import EmulatorConfig, Timings
from aiolightning.resources.jobs import Job, JobRequest, JobStatus
from aiolightning.resources.jobs._watch import ACTIVE_STATES, JobWatch

pytestmark = pytest.mark.anyio

LIST = "requests:GET /v1/projects/{projectId}/jobs"
GET = "requests:GET /v1/projects/{projectId}/jobs/{id}"
N, LONG, PAGE = 400, 20, 4  # a full walk: 100 pages


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    timings = Timings(job_pending=0.01, job_creating=0.01, job_finishing=0.01, job_stop=0.01)
    async with Emulator(config=EmulatorConfig(timings=timings)) as e:
        yield e


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncLightning]:
    async with emu.client() as c:
        c.jobs.list_page_size = PAGE
        c.jobs.poll_initial = c.jobs.poll_cap = 0.05
        yield c


async def submit_fleet(client: AsyncLightning, long_seconds: float) -> list[Job]:
    reqs = [
        JobRequest(
            name=f"j-{i}",
            command="true",
            image="busybox",
            env={"EMULATOR_RUNNING_SECONDS": str(long_seconds if i % (N // LONG) == 0 else 0)},
        )
        for i in range(N)
    ]
    return [o.result() for o in await client.jobs.submit_many(reqs)]


async def test_a_round_over_a_mostly_finished_fleet_costs_what_can_change(
    client: AsyncLightning, emu: Emulator
) -> None:
    jobs = await submit_fleet(client, 3600)
    for _ in range(200):  # until the short ones are done (a loop, not a timing assertion)
        now = await client.jobs.poll(jobs)
        if sum(j.status.is_terminal for j in now.values()) == N - LONG:
            break
    pending = [j for j in now.values() if not j.status.is_terminal]
    assert len(pending) == LONG
    full_walk = N // PAGE
    before = emu.counters.snapshot()
    found, gone = await client.jobs._poll_many(pending, None, 64, active=True)
    after = emu.counters.snapshot()
    pages = after.get(LIST, 0) - before.get(LIST, 0)
    assert after.get(GET, 0) == before.get(GET, 0)  # nothing read alone
    assert set(found) == {j.id for j in pending} and not gone
    # one page per unfinished state, and the running ones on LONG / PAGE pages
    assert pages == len(ACTIVE_STATES) - 1 + LONG // PAGE
    assert pages <= full_walk * 0.15


async def watch_until(
    client: AsyncLightning, jobs: list[Job], ready: anyio.Event
) -> dict[str, JobStatus]:
    """Watch the fleet to its end; the long jobs are stopped once ``ready`` is set."""
    final: dict[str, JobStatus] = {}

    async def stop_when_ready() -> None:
        await ready.wait()
        long = [j for i, j in enumerate(jobs) if i % (N // LONG) == 0]
        for j in long:
            await client.jobs.stop(j, wait=False)

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_when_ready)
        async for change in client.jobs.watch(jobs, timeout=120):
            final[change.job.id] = change.status
    return final


async def test_watch_sees_every_end_through_state_listings(
    client: AsyncLightning, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_state = anyio.Event()
    page = JobWatch._page

    async def spy(self: JobWatch, ts_id: str, token: str | None, state: str | None = None) -> Any:
        if state is not None:
            by_state.set()  # a round asked by state: now let the long jobs end
        return await page(self, ts_id, token, state)

    monkeypatch.setattr(JobWatch, "_page", spy)
    jobs = await submit_fleet(client, 3600)
    final = await watch_until(client, jobs, by_state)
    assert len(final) == N
    assert sum(s is JobStatus.COMPLETED for s in final.values()) == N - LONG
    assert sum(s is JobStatus.STOPPED for s in final.values()) == LONG


async def test_a_service_that_ignores_the_state_filter_gets_full_walks(
    client: AsyncLightning, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_state = anyio.Event()
    page = JobWatch._page

    async def ignoring(
        self: JobWatch, ts_id: str, token: str | None, state: str | None = None
    ) -> Any:
        if state is not None:
            by_state.set()
        return await page(self, ts_id, token)

    monkeypatch.setattr(JobWatch, "_page", ignoring)
    jobs = await submit_fleet(client, 3600)
    final = await watch_until(client, jobs, by_state)
    assert len(final) == N
    assert sum(s is JobStatus.COMPLETED for s in final.values()) == N - LONG
    assert sum(s is JobStatus.STOPPED for s in final.values()) == LONG
    assert client.jobs._no_state_filter == {jobs[0].teamspace_id}


async def test_jobs_held_per_item_are_not_tracked_by_the_collector(
    client: AsyncLightning,
) -> None:
    jobs = await submit_fleet(client, 0)
    polled = await client.jobs.poll(jobs)
    assert len(polled) == N
    assert not any(gc.is_tracked(j) for j in [*jobs, *polled.values()])
    assert all(j.raw is None for j in [*jobs, *polled.values()])  # no full models kept
    one = await client.jobs.refresh(jobs[0])
    assert one.raw is not None and one.raw.id == one.id  # one job: the full model


async def test_a_refresh_keeps_only_what_changed(client: AsyncLightning) -> None:
    jobs = await submit_fleet(client, 3600)
    for _ in range(200):  # until the short ones are done (a loop, not a timing assertion)
        first = await client.jobs.poll(jobs)
        if sum(j.status.is_terminal for j in first.values()) == N - LONG:
            break
        await anyio.sleep(0.05)
    for j in jobs:
        now = first[j.id]
        assert now.name is j.name and now.id is j.id  # the strings already held, not copies
        assert now.command is j.command and now.created_at is j.created_at
    again = await client.jobs.poll(list(first.values()))
    finished = [j for j in first.values() if j.status.is_terminal]
    assert all(again[j.id] is j for j in finished)  # unchanged: the same object, nothing new
