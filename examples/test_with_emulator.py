"""How to test your own Lightning automation with the emulator, in pytest.

    python -m pytest examples/test_with_emulator.py -q

The emulator is a real HTTP server on 127.0.0.1 that behaves like the Lightning API (studio
and job state machines, storage, pagination, error bodies). Your code talks to it with an
ordinary client, so the tests exercise exactly what runs in production. Its knobs are live:
change ``emu.config`` in a test to add latency, rate limits (429 + Retry-After), 5xx
answers, dropped connections or failing jobs, and read ``emu.counters`` to see what
happened. Async tests use anyio's pytest plugin (installed with anyio).
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import AsyncIterator

import pytest

from aiolightning import AsyncLightning, JobRequest, JobStatus
from aiolightning.emulator import Emulator, EmulatorConfig, EmulatorThread, Timings

pytestmark = pytest.mark.anyio


# --- the code under test: what you would have in your own package --------------------------


async def nightly_training(client: AsyncLightning, lrs: list[float]) -> dict[str, str]:
    """Submit one job per learning rate, wait for all, return {job name: final status}."""
    requests = [
        JobRequest(name=f"nightly-{lr:g}", command=f"python train.py --lr {lr:g}", image="py:3")
        for lr in lrs
    ]
    outcomes = await client.jobs.submit_many(requests)
    jobs = [o.result() for o in outcomes]
    final: dict[str, str] = {}
    async for change in client.jobs.watch(jobs, timeout=60):
        if change.status.is_terminal:
            final[change.job.name] = change.status.value
    return final


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """A fresh emulator per test, with fast state machines (jobs finish in ~0.2 s)."""
    timings = Timings(job_pending=0.02, job_creating=0.02, job_running=0.1, job_finishing=0.02)
    async with Emulator(seed=0, config=EmulatorConfig(timings=timings)) as e:
        yield e


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncLightning]:
    """A client pointed at the emulator, with its generated credentials."""
    async with AsyncLightning(
        emu.url, user_id=emu.user_id, api_key=emu.api_key, teamspace=emu.teamspace_name
    ) as c:
        c.jobs.poll_initial = 0.05  # poll faster than against the real service
        yield c


# --- tests ---------------------------------------------------------------------------------


async def test_nightly_training_completes(client: AsyncLightning) -> None:
    final = await nightly_training(client, [1e-2, 1e-3, 1e-4])
    assert final == {
        "nightly-0.01": "completed",
        "nightly-0.001": "completed",
        "nightly-0.0001": "completed",
    }


async def test_failed_jobs_are_reported(emu: Emulator, client: AsyncLightning) -> None:
    emu.config.timings.job_outcome = "fail"  # every job from now on fails
    final = await nightly_training(client, [1e-3])
    assert final == {"nightly-0.001": JobStatus.FAILED.value}


async def test_survives_rate_limiting(emu: Emulator, client: AsyncLightning) -> None:
    emu.config.faults.rate_limit = 50  # requests/s; above it the emulator answers 429
    emu.config.faults.rate_burst = 10
    final = await nightly_training(client, [float(i) for i in range(1, 9)])
    assert set(final.values()) == {"completed"}
    assert emu.counters.get("throttled") > 0  # it really was throttled, and coped


def test_synchronous_code_with_a_background_emulator() -> None:
    """For synchronous code (or a subprocess), run the emulator on a background thread."""
    with EmulatorThread() as emu:
        token = base64.b64encode(f"{emu.user_id}:{emu.api_key}".encode()).decode()
        req = urllib.request.Request(
            f"{emu.url}/v1/auth/whoami", headers={"Authorization": f"Basic {token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.load(resp)["userId"] == emu.user_id
        # emu.sdk_env() gives LIGHTNING_CLOUD_URL / _USER_ID / _API_KEY for a subprocess
        assert emu.sdk_env()["LIGHTNING_CLOUD_URL"] == emu.url
