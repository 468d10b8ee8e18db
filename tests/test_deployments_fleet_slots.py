"""client.deployments' fleet helpers hold a concurrency slot only while their requests are in
flight: the waits for replicas run side by side (counted, never timed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiolightning.emulator import Emulator
from aiolightning.emulator._config import EmulatorConfig, Timings
from aiolightning.resources.deployments import DeploymentRequest, DeploymentStatus
from aiolightning.resources.deployments._waits import DeploymentWaits

pytestmark = pytest.mark.anyio


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    timings = Timings(job_pending=0.05, job_creating=0.1, job_running=0.2, job_stop=0.1)
    async with Emulator(config=EmulatorConfig(timings=timings)) as e:
        yield e


async def test_waits_hold_no_slot(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    waiting = most = 0
    wait = DeploymentWaits.wait

    async def counting(self: DeploymentWaits, *args: Any, **kw: Any) -> Any:
        nonlocal waiting, most
        waiting += 1
        most = max(most, waiting)
        try:
            return await wait(self, *args, **kw)
        finally:
            waiting -= 1

    monkeypatch.setattr(DeploymentWaits, "wait", counting)
    async with emu.client() as client:
        client.deployments.poll_initial = 0.05
        client.deployments.poll_cap = 0.2
        reqs = [DeploymentRequest(f"d{i}", image="img", replicas=1) for i in range(4)]
        outs = await client.deployments.create_many(reqs, wait=True, concurrency=1, timeout=60)
        assert all(o.ok and o.value is not None for o in outs), [o.error for o in outs]
        assert all(o.value.status is DeploymentStatus.READY for o in outs if o.value)
        assert most == len(reqs)  # all four waited at once, though one request at a time
        most = 0
        stops = await client.deployments.stop_many(
            [f"d{i}" for i in range(4)], concurrency=1, timeout=60
        )
        assert all(o.ok and o.value is not None and o.value.replicas == 0 for o in stops)
        assert most == len(reqs)
