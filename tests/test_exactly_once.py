"""Exactly once under faults after the act: the server acted, then the answer was lost.

Each test puts the fault proxy of ``_fault_proxy.py`` between the client and the emulator,
breaks the answer of one chosen request (or of a random share of them) after the emulator
handled it, and checks the emulator's own records: each effect happened exactly once and
the call reported success.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _fault_proxy import FaultProxy, fault_proxy, proxied_client

from aiolightning import AsyncLightning
from aiolightning._retry import RetryPolicy
from aiolightning.emulator import Emulator, EmulatorThread
from aiolightning.emulator._config import EmulatorConfig, Faults, Timings
from aiolightning.resources.studios import StudioStatus

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(base=0.02, max_wait=0.3, max_attempts=8)
RUNS = r"/cloudspaces/[^/]+/runs$"
TIMINGS = Timings(
    studio_start=0.1, studio_stop=0.05, studio_switch=0.1, command=0.02,
    job_pending=0.02, job_creating=0.02, job_running=0.1, job_finishing=0.02, job_stop=0.02,
)  # fmt: skip


def config() -> EmulatorConfig:
    return EmulatorConfig(timings=TIMINGS)


@pytest.mark.parametrize("kind", ["drop", "500", "502", "503", "truncate"])
async def test_create_finishes_when_the_run_registration_answer_is_lost(kind: str) -> None:
    """Known failure (a): the studio was created, then ``create_lightning_run``'s answer was
    lost; ``create`` used to raise for a studio that exists."""
    async with Emulator(config=config()) as emu, fault_proxy(emu.url) as proxy:
        proxy.break_next("POST", RUNS, kind)
        async with proxied_client(emu, proxy, retry=FAST_RETRY) as client:
            studio = await client.studios.create("after-the-act")
            assert studio.name == "after-the-act"
            assert proxy.injected[kind] == 1
            runs = await client.api.cloud_space.list_lightning_runs(emu.teamspace_id, studio.id)
            assert len(runs.runs or []) == 1  # registered once, not twice
        assert emu.counters.get("creates:studio:after-the-act") == 1


@pytest.mark.parametrize("kind", ["drop", "502", "503", "truncate"])
async def test_a_lost_create_answer_still_registers_the_run(kind: str) -> None:
    """The create's own answer lost: the studio is found by name, and its run is
    registered too (nothing half-done)."""
    async with Emulator(config=config()) as emu, fault_proxy(emu.url) as proxy:
        proxy.break_next("POST", r"/cloudspaces$", kind)
        async with proxied_client(emu, proxy, retry=FAST_RETRY) as client:
            studio = await client.studios.create("lost-answer")
            runs = await client.api.cloud_space.list_lightning_runs(emu.teamspace_id, studio.id)
            assert len(runs.runs or []) == 1
        assert emu.counters.get("creates:studio:lost-answer") == 1


async def test_create_exist_ok_registers_the_run_a_lost_create_left_out() -> None:
    """A studio whose create died before its run was registered (a crash, or the run's
    POST lost for good): ``create(name, exist_ok=True)`` finishes the job, once."""
    async with Emulator(config=config()) as emu, fault_proxy(emu.url) as proxy:
        async with proxied_client(emu, proxy, retry=FAST_RETRY) as client:
            body = {"name": "half-made", "displayName": "half-made"}
            await client.api.cloud_space.create_cloud_space(emu.teamspace_id, body=body)
            proxy.break_next("POST", RUNS, "502")  # and the registration's answer is lost
            for _ in range(2):
                studio = await client.studios.create("half-made", exist_ok=True)
                runs = await client.api.cloud_space.list_lightning_runs(emu.teamspace_id, studio.id)
                assert len(runs.runs or []) == 1
            assert proxy.injected["502"] == 1
        assert emu.counters.get("runs:created") == 1


@pytest.mark.parametrize("kind", ["drop", "500", "502", "503", "truncate"])
async def test_submit_after_a_lost_answer_finds_its_renamed_job(kind: str) -> None:
    """Known failure (b): an older job has the same name, so the service names the new one
    ``<name>-2``; the answer is lost; the reconcile must find ``train-2`` by its submit
    marker instead of sending the POST again (which made ``train-3``)."""
    async with Emulator(config=config()) as emu, fault_proxy(emu.url) as proxy:
        async with proxied_client(emu, proxy, retry=FAST_RETRY) as client:
            older = await client.jobs.submit("train", "echo 1", image="python:3.12")
            proxy.break_next("POST", r"/jobs$", kind)
            job = await client.jobs.submit("train", "echo 2", image="python:3.12")
            assert job.name == "train-2" and job.id != older.id
            names = sorted([j.name async for j in client.jobs.list()])
            assert names == ["train", "train-2"]
        assert emu.counters.get("creates:job:train") == 2  # two submits, two POSTs


async def test_start_many_under_500s_and_503s_starts_every_studio_once() -> None:
    """Issue 12 item 1: ``error_rate`` 0.2 (500 and 503 mixed): every studio created and
    running, each started once."""
    async with Emulator(config=config()) as emu:
        emu.config.faults.error_rate = 0.2
        async with emu.client(retry=FAST_RETRY) as client:
            client.studios.poll_initial = 0.05
            client.studios.poll_cap = 0.2
            names = [f"newcomer-{i}" for i in range(30)]
            created = await client.studios.create_many(names)
            assert [o.error for o in created if not o.ok] == []
            outs = await client.studios.start_many(names, timeout=60)
            assert [o.error for o in outs if not o.ok] == []
            assert all(o.value is not None and o.value.status is StudioStatus.RUNNING for o in outs)
            ids = [o.result().id for o in created]
        snap = emu.counters.snapshot()
        assert snap.get("faults:error", 0) > 0
        assert all(emu.counters.get(f"starts:{i}") == 1 for i in ids)
        assert all(emu.counters.get(f"creates:studio:{n}") == 1 for n in names)


def test_cli_start_many_under_500s_and_503s_starts_every_studio_once(tmp_path: Path) -> None:
    """Issue 12 item 1, as the newcomer ran it: ``studios start-many --count 10`` against an
    emulator answering 20 % of requests with 500 or 503."""
    faults = Faults(error_rate=0.2)
    with EmulatorThread(config=EmulatorConfig(timings=TIMINGS, faults=faults)) as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTNING_")}
        env.update(
            HOME=str(tmp_path),
            XDG_CACHE_HOME=str(tmp_path / ".cache"),
            LIGHTNING_CLOUD_URL=emu.url,
            LIGHTNING_USER_ID=emu.user_id,
            LIGHTNING_API_KEY=emu.api_key,
            LIGHTNING_TEAMSPACE=f"{emu.org_name}/{emu.teamspace_name}",
        )
        proc = subprocess.run(
            [sys.executable, "-m", "aiolightning", "--json", "studios", "start-many",
             "--create", "--count", "10", "--prefix", "newcomer"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout)
        assert [(r["name"], r["ok"], r["status"]) for r in rows] == [
            (f"newcomer-{i}", True, "running") for i in range(10)
        ]
        snap = emu.counters.snapshot()
    assert snap.get("faults:error", 0) > 0
    starts = {k: v for k, v in snap.items() if k.startswith("starts:")}
    assert len(starts) == 10 and set(starts.values()) == {1}
    assert all(snap.get(f"creates:studio:newcomer-{i}") == 1 for i in range(10))


# --- every other mutating call: its answer lost once, after the emulator acted ------------


async def _stop(client: AsyncLightning, emu: Emulator, proxy: FaultProxy, kind: str) -> None:
    s = await client.studios.create("stop-me")
    await client.studios.start(s, timeout=30)
    proxy.break_next("POST", r"/stop$", kind)
    state = await client.studios.stop(s, timeout=30)
    assert state.status is StudioStatus.STOPPED
    assert proxy.injected[kind] == 1


async def _delete_studio(
    client: AsyncLightning, emu: Emulator, proxy: FaultProxy, kind: str
) -> None:
    s = await client.studios.create("delete-me")
    proxy.break_next("DELETE", r"/cloudspaces/[^/]+$", kind)
    await client.studios.delete(s)  # the re-sent DELETE's 404 is the first one's success
    assert emu.counters.get("deletes:studio") == 1


async def _switch(client: AsyncLightning, emu: Emulator, proxy: FaultProxy, kind: str) -> None:
    s = await client.studios.create("switch-me")
    await client.studios.start(s, "cpu-4", timeout=30)
    proxy.break_next("PUT", r"/codeconfig$", kind)
    proxy.break_next("POST", r"/switch-confirm$", kind)
    state = await client.studios.switch_machine(s, "cpu-8", timeout=30)
    assert state.machine == "cpu-8" and state.status is StudioStatus.RUNNING
    assert proxy.injected[kind] == 2
    assert emu.counters.get(f"switches:{s.id}") == 1  # one new machine requested, not two


async def _run(client: AsyncLightning, emu: Emulator, proxy: FaultProxy, kind: str) -> None:
    s = await client.studios.create("run-in-me")
    await client.studios.start(s, timeout=30)
    proxy.break_next("POST", r"/execute$", kind)
    result = await client.studios.run(s, "echo once", timeout=30)
    assert (result.exit_code, result.output.strip()) == (0, "once")
    assert emu.counters.get("commands") == 1


async def _keep_alive(client: AsyncLightning, emu: Emulator, proxy: FaultProxy, kind: str) -> None:
    s = await client.studios.create("keep-me")
    await client.studios.start(s, timeout=30)
    proxy.break_next("POST", r"/keep-alive$", kind)
    await client.studios.keep_alive(s)  # used to raise: a POST is not re-sent by default
    assert proxy.injected[kind] == 1
    assert emu.state.studios.by_id[s.id].kept_alive_at is not None
    # idempotent in effect: the lost one landed, the repeat restarted the idle clock again
    assert emu.counters.effects("studio_kept_alive") == {s.id: 2}


async def _delete_job(client: AsyncLightning, emu: Emulator, proxy: FaultProxy, kind: str) -> None:
    job = await client.jobs.submit("delete-me", "true", image="python:3.12")
    proxy.break_next("DELETE", r"/jobs/[^/]+$", kind)
    await client.jobs.delete(job)
    assert emu.counters.get("deletes:job") == 1


async def _stop_job(client: AsyncLightning, emu: Emulator, proxy: FaultProxy, kind: str) -> None:
    job = await client.jobs.submit("stop-me", "sleep 60", image="python:3.12",
                                   env={"EMULATOR_RUNNING_SECONDS": "60"})  # fmt: skip
    proxy.break_next("PUT", r"/jobs/[^/]+$", kind)
    stopped = await client.jobs.stop(job, timeout=30)
    assert stopped.status.value == "stopped"
    assert emu.counters.get(f"stops:{job.id}") == 1


async def _delete_file(client: AsyncLightning, emu: Emulator, proxy: FaultProxy, kind: str) -> None:
    await client.storage.upload(__file__, "lit:///once/file.py")
    proxy.break_next("DELETE", r"/blobs/", kind)
    await client.storage.delete("lit:///once/file.py")
    assert not await client.storage.exists("lit:///once/file.py")


async def _multi_job(client: AsyncLightning, emu: Emulator, proxy: FaultProxy, kind: str) -> None:
    proxy.break_next("POST", r"/multi-machine-jobs$", kind)
    job = await client.jobs.submit("multi", "true", image="python:3.12", machines=2)
    assert [j.name async for j in client.jobs.list()].count("multi") <= 1
    proxy.break_next("DELETE", r"/multi-machine-jobs/[^/]+$", kind)
    await client.jobs.delete(job)  # the re-sent DELETE's 404 is the first one's success
    assert proxy.injected[kind] == 2


async def _deployment(client: AsyncLightning, emu: Emulator, proxy: FaultProxy, kind: str) -> None:
    proxy.break_next("POST", r"/deployments$", kind)
    d = await client.deployments.create("serve", image="python:3.12")
    assert [x.name async for x in client.deployments.list()] == ["serve"]
    proxy.break_next("DELETE", r"/deployments/[^/]+$", kind)
    await client.deployments.delete(d)
    assert [x.name async for x in client.deployments.list()] == []
    assert proxy.injected[kind] == 2


CALLS = {
    "studio stop": _stop,
    "studio delete": _delete_studio,
    "studio switch": _switch,
    "studio run": _run,
    "studio keep-alive": _keep_alive,
    "job stop": _stop_job,
    "job delete": _delete_job,
    "storage delete": _delete_file,
    "multi-machine job submit + delete": _multi_job,
    "deployment create + delete": _deployment,
}


@pytest.mark.parametrize("kind", ["drop", "502", "truncate"])
@pytest.mark.parametrize("call", list(CALLS))
async def test_a_lost_answer_is_reconciled(call: str, kind: str) -> None:
    async with Emulator(config=config()) as emu, fault_proxy(emu.url) as proxy:
        async with proxied_client(emu, proxy, retry=FAST_RETRY) as client:
            client.studios.poll_initial = 0.05
            client.studios.poll_cap = 0.2
            await CALLS[call](client, emu, proxy, kind)
