"""client.deployments against the emulator: lifecycle, endpoint, idempotent creates, fleets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from aiolightning import ConflictError, InvalidArgumentError
from aiolightning._client import AsyncLightning
from aiolightning._retry import RetryPolicy
from aiolightning.emulator import Emulator
from aiolightning.emulator._config import EmulatorConfig, Faults, Timings
from aiolightning.resources.deployments import (
    AutoScale,
    BasicAuth,
    DeploymentNotFoundError,
    DeploymentRequest,
    DeploymentStatus,
    TokenAuth,
)

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(base=0.02, max_wait=0.5, max_attempts=8)


def timings() -> Timings:
    return Timings(job_pending=0.05, job_creating=0.1, job_running=0.2, job_finishing=0.05,
                   job_stop=0.1)  # fmt: skip


def make_client(emu: Emulator, **kw: object) -> AsyncLightning:
    client = emu.client(retry=FAST_RETRY, **kw)
    client.deployments.poll_initial = 0.05
    client.deployments.poll_cap = 0.2
    return client


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(config=EmulatorConfig(timings=timings())) as e:
        yield e


async def test_lifecycle_create_wait_update_stop_start_delete(emu: Emulator) -> None:
    async with make_client(emu) as client:
        d = await client.deployments.create(
            "serve", image="ghcr.io/acme/model:1", command="python serve.py", machine="cpu-2",
            replicas=2, ports=[8000], env={"MODE": "prod"}, secrets={"HF_TOKEN": "hf-secret"},
        )  # fmt: skip
        assert d.name == "serve" and d.replicas == 2 and d.ports == (8000,)
        assert d.status is DeploymentStatus.PENDING  # replicas still coming up
        assert d.url.startswith(emu.url)
        ready = await client.deployments.wait(d, timeout=10)
        assert ready.status is DeploymentStatus.READY and ready.ready_replicas == 2
        answer = await client.deployments.request(ready, "GET", "/health")
        assert answer.ok and answer.json()["path"] == "/health"
        env = {e.name: (e.value, e.from_secret) for e in ready.raw.spec.env}  # type: ignore[union-attr]
        assert env["MODE"] == ("prod", None) and env["HF_TOKEN"] == (None, "hf-secret")

        scaled = await client.deployments.update("serve", replicas=3)
        assert scaled.replicas == 3 and scaled.status is DeploymentStatus.PENDING
        assert (await client.deployments.wait("serve", timeout=10)).ready_replicas == 3

        bigger = await client.deployments.update(d, autoscale=AutoScale(1, 4, "CPU", 80))
        assert (bigger.min_replicas, bigger.max_replicas) == (1, 4)
        moved = await client.deployments.update(d, machine="cpu-4")
        assert moved.machine == "cpu-4" and moved.release_id != d.release_id

        stopped = await client.deployments.stop("serve", timeout=10)
        assert stopped.status is DeploymentStatus.STOPPED and stopped.replicas == 0
        assert (await client.deployments.request(stopped)).status == 503
        again = await client.deployments.stop("serve", timeout=10)  # a no-op
        assert again.status is DeploymentStatus.STOPPED

        started = await client.deployments.start("serve", replicas=1, timeout=10)
        assert started.status is DeploymentStatus.READY and started.replicas == 1
        assert [x.name async for x in client.deployments.list()] == ["serve"]

        await client.deployments.delete("serve")
        with pytest.raises(DeploymentNotFoundError):
            await client.deployments.get("serve")
        await client.deployments.delete("serve", missing_ok=True)
        assert emu.counters.get("creates:deployment:serve") == 1


async def test_endpoint_auth(emu: Emulator) -> None:
    async with make_client(emu) as client:
        tok = await client.deployments.create("tok", image="img", auth=TokenAuth("s3cr3t-tok"))
        basic = await client.deployments.create("basic", image="img", auth=BasicAuth("u", "pw"))
        public = await client.deployments.create("pub", image="img", auth=None)
        for d in (tok, basic, public):
            d = await client.deployments.wait(d, timeout=10)
            assert (await client.deployments.request(d)).ok
        assert "s3cr3t-tok" not in repr(tok) and "pw" not in repr(BasicAuth("u", "pw"))
        async with aiohttp.ClientSession() as s, s.get(tok.url + "/") as r:
            assert r.status == 401  # no credentials


async def test_bad_input_is_rejected_before_any_request(emu: Emulator) -> None:
    async with make_client(emu) as client:
        before = emu.counters.get("requests")
        bad = [
            {"image": "img", "replicas": -1},
            {"image": "img", "machine": "no-such-machine"},
            {"image": "img", "autoscale": AutoScale(3, 1)},
            {"image": "img", "autoscale": AutoScale(0, 2, "RAM")},  # type: ignore[arg-type]
            {"image": "img", "autoscale": AutoScale(0, 2, "CPU", 150)},
            {"image": "img", "ports": []},
            {"image": "img", "ports": [70000]},
            {"image": "img", "auth": "password"},
            {},  # neither image nor studio
            {"image": "img", "studio": "s"},
            {"studio": "s"},  # a studio deployment needs a command
        ]
        for kw in bad:
            with pytest.raises(InvalidArgumentError):
                await client.deployments.create("x", **kw)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            await client.deployments.create("", image="img")
        with pytest.raises(InvalidArgumentError):
            await client.deployments.update("x")
        with pytest.raises(InvalidArgumentError):
            await client.deployments.start("x", replicas=0)
        assert emu.counters.get("requests") == before


async def test_service_checks_the_wire(emu: Emulator) -> None:
    """What the client cannot check is checked by the service: a taken name is a 409, a bad
    update a 400 that leaves the deployment unchanged."""
    async with make_client(emu) as client:
        d = await client.deployments.create("dup", image="img")
        with pytest.raises(ConflictError):
            await client.deployments.create("dup", image="img")
        api = client.api.jobs
        from aiolightning import BadRequestError

        with pytest.raises(BadRequestError, match="minReplicas 3 is larger"):
            await api.update_deployment(
                d.teamspace_id, d.id, body={"autoscaling": {"minReplicas": 3, "maxReplicas": 1}}
            )
        with pytest.raises(BadRequestError, match="unknown machine"):
            await api.update_deployment(
                d.teamspace_id, d.id, body={"spec": {"instanceName": "tpu-9000"}}
            )
        same = await client.deployments.refresh(d)
        assert (same.min_replicas, same.max_replicas, same.machine) == (1, 1, "cpu-4")
        assert emu.counters.get("creates:deployment:dup") == 2


def slow_first(emu: Emulator, method: str, suffix: str, delay: float) -> aiohttp.TraceConfig:
    """The first matching request is slowed past the client's timeout (the server still acts)."""
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


async def test_create_after_an_ambiguous_timeout_makes_one(emu: Emulator) -> None:
    trace = slow_first(emu, "POST", "/deployments", 0.6)
    async with make_client(emu, timeout=0.3, trace_configs=[trace]) as client:
        d = await client.deployments.create("once", image="img")
        assert d.name == "once"
        assert client.limiter.stats()["write"].errors >= 1  # the timeout did happen
        assert [x.name async for x in client.deployments.list()] == ["once"]
        assert len(emu.state.deployments.by_id) == 1


async def test_create_many_50_under_faults_each_once(emu: Emulator) -> None:
    emu.config.faults = Faults(rate_limit=100, rate_burst=10, error_rate=0.05, drop_rate=0.02)
    async with make_client(emu) as client:
        reqs = [DeploymentRequest(f"d{i}", image="img", replicas=1 + i % 3) for i in range(50)]
        reqs.append(DeploymentRequest("bad", image="img", replicas=-1))  # fails alone
        outs = await client.deployments.create_many(reqs)
        assert len(outs) == 51 and [o.item for o in outs] == reqs
        assert [o.error for o in outs[:50] if not o.ok] == []
        assert isinstance(outs[50].error, InvalidArgumentError)
        snap = emu.counters.snapshot()
        assert snap.get("faults:error", 0) > 0 and snap.get("throttled", 0) > 0
        assert len(emu.state.deployments.by_id) == 50  # each created once
        assert all(snap.get(f"creates:deployment:d{i}", 0) >= 1 for i in range(50))
    names = [o.value.name for o in outs[:50] if o.value is not None]
    emu.config.faults = Faults(error_rate=0.05)
    # a fresh client: the throttled one's limiter takes a while to speed up again
    async with make_client(emu) as client:
        ready = await asyncio.gather(*(client.deployments.wait(n, timeout=30) for n in names))
        assert all(d.status is DeploymentStatus.READY for d in ready)
        stops = await client.deployments.stop_many(names, timeout=30)
        assert all(o.ok and o.value is not None and o.value.replicas == 0 for o in stops)
        dels = await client.deployments.delete_many([*names, "never-was"])
        assert len(dels) == 51 and all(o.ok for o in dels)
        assert not emu.state.deployments.by_id
