"""How to test your own Lightning automation with the emulator, in pytest.

    python -m pytest examples/test_with_emulator.py -q

Installing aiolightning installs its pytest plugin: the fixtures ``lightning_emulator`` (a
fresh emulator per test, on its own thread), ``lightning_client`` (an AsyncLightning wired to
it) and ``lightning_sync_client`` (a Lightning, the blocking client) are there without any
conftest. The emulator is a real HTTP server on 127.0.0.1 that behaves like the Lightning API
(studio and job state machines, storage, pagination, error bodies), so the tests exercise
exactly what runs in production. Set its knobs per test with
``@pytest.mark.lightning_emulator(rate_limit=..., error_rate=..., drop_rate=...,
job_outcome="fail", latency=...)`` or live on ``lightning_emulator.config``, and read
``lightning_emulator.counters`` to see what happened. Async tests use anyio's pytest plugin
(installed with anyio). ``-p no:aiolightning`` turns the plugin off.
"""

from __future__ import annotations

import pytest

from aiolightning import AsyncLightning, JobRequest, JobStatus, Lightning
from aiolightning.emulator import EmulatorThread

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


def provision(client: Lightning, names: list[str]) -> list[str]:
    """A blocking script's job: create and start studios, return the ones that run."""
    client.studios.create_many(names, exist_ok=True)
    outcomes = client.studios.start_many(names, "cpu-4")
    return [str(o.item) for o in outcomes if o.ok]


# --- tests ---------------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_nightly_training_completes(lightning_client: AsyncLightning) -> None:
    final = await nightly_training(lightning_client, [1e-2, 1e-3, 1e-4])
    assert final == {
        "nightly-0.01": "completed",
        "nightly-0.001": "completed",
        "nightly-0.0001": "completed",
    }


@pytest.mark.anyio
@pytest.mark.lightning_emulator(job_outcome="fail")  # every job fails
async def test_failed_jobs_are_reported(lightning_client: AsyncLightning) -> None:
    final = await nightly_training(lightning_client, [1e-3])
    assert final == {"nightly-0.001": JobStatus.FAILED.value}


@pytest.mark.anyio
@pytest.mark.lightning_emulator(rate_limit=50, rate_burst=10)  # above it: 429 + Retry-After
async def test_survives_rate_limiting(
    lightning_emulator: EmulatorThread, lightning_client: AsyncLightning
) -> None:
    final = await nightly_training(lightning_client, [float(i) for i in range(1, 9)])
    assert set(final.values()) == {"completed"}
    assert lightning_emulator.counters.get("throttled") > 0  # it really was throttled, and coped


def test_blocking_code(
    lightning_emulator: EmulatorThread, lightning_sync_client: Lightning
) -> None:
    """Synchronous code gets the blocking client; the knobs can change mid-test too."""
    lightning_emulator.config.faults.latency = 0.01  # every request now takes 10 ms longer
    assert provision(lightning_sync_client, ["a", "b", "c"]) == ["a", "b", "c"]
    assert lightning_emulator.counters.get("faults:latency") > 0
    # lightning_emulator.sdk_env() gives LIGHTNING_CLOUD_URL / _USER_ID / _API_KEY for a
    # subprocess (a CLI, the official SDK) talking to the same emulator
    assert lightning_emulator.sdk_env()["LIGHTNING_CLOUD_URL"] == lightning_emulator.url
