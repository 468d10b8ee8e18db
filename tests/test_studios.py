"""client.studios against the emulator: lifecycle, commands, idempotent starts, fleets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import anyio
import pytest

from aiolightning import InvalidArgumentError, LightningError
from aiolightning._client import AsyncLightning
from aiolightning._retry import RetryPolicy
from aiolightning.emulator import Emulator
from aiolightning.emulator._config import EmulatorConfig, Faults, Timings
from aiolightning.models import (
    StreamResultOfV1GetLongRunningCommandInCloudSpaceResponse as StreamItem,
)
from aiolightning.resources.studios import (
    CommandError,
    CommandTimeoutError,
    Studio,
    StudioError,
    StudioNotFoundError,
    StudioStatus,
)
from aiolightning.resources.studios._commands import _parse_command_stream

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(base=0.02, max_wait=0.5, max_attempts=8)


def fast_timings(**kw: float) -> Timings:
    base = {"studio_start": 0.2, "studio_stop": 0.05, "studio_switch": 0.2, "command": 0.05}
    base.update(kw)
    return Timings(**base)  # type: ignore[arg-type]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(config=EmulatorConfig(timings=fast_timings())) as e:
        yield e


def make_client(emu: Emulator, **kw: object) -> AsyncLightning:
    client = emu.client(retry=kw.pop("retry", FAST_RETRY), **kw)
    client.studios.poll_initial = 0.05
    client.studios.poll_cap = 0.2
    return client


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncLightning]:
    async with make_client(emu) as c:
        yield c


def items(*lines: dict[str, object]) -> list[StreamItem]:
    import msgspec

    return [msgspec.convert(x, StreamItem) for x in lines]


def test_command_stream_parsing() -> None:
    assert _parse_command_stream([]) == ("", None)  # nothing yet
    running = items({"result": {"output": "", "exitCode": -1}})
    assert _parse_command_stream(running) == ("", None)
    # exitCode 0 omitted (protojson drops zero values) still means "finished with 0"
    assert _parse_command_stream(items({"result": {"output": "hi\n"}})) == ("hi\n", 0)
    two = items(
        {"result": {"output": "a", "exitCode": 2}}, {"result": {"output": "b", "exitCode": 2}}
    )
    assert _parse_command_stream(two) == ("ab", 2)
    with pytest.raises(CommandError, match="boom"):
        _parse_command_stream(items({"error": {"code": 13, "message": "boom"}}))
    with pytest.raises(CommandError, match="conflicting"):
        _parse_command_stream(
            items({"result": {"output": "", "exitCode": 1}}, {"result": {"exitCode": 2}})
        )


async def test_lifecycle(client: AsyncLightning, emu: Emulator) -> None:
    s = await client.studios.create("lab")
    assert isinstance(s, Studio) and s.name == "lab" and s.teamspace_id == emu.teamspace_id
    assert await client.studios.status("lab") is StudioStatus.STOPPED
    assert (await client.studios.get(s.id)).id == s.id
    assert [x.name async for x in client.studios.list()] == ["lab"]

    state = await client.studios.start(s, "lit-t4-1", timeout=10)
    assert state.status is StudioStatus.RUNNING and state.ready and state.machine == "lit-t4-1"
    # starting again on the same machine is a no-op
    await client.studios.start(s, "lit-t4-1", timeout=10)
    assert emu.counters.get(f"starts:{s.id}") == 1
    with pytest.raises(StudioError, match="switch_machine"):
        await client.studios.start(s, "cpu-4", timeout=10)

    state = await client.studios.switch_machine(s, "cpu-8", timeout=10)
    assert state.machine == "cpu-8" and state.ready

    await client.studios.keep_alive(s)
    state = await client.studios.stop(s, timeout=10)
    assert state.status is StudioStatus.STOPPED
    await client.studios.stop(s, timeout=10)  # already stopped: fine

    await client.studios.delete(s)
    with pytest.raises(LightningError):
        await client.studios.get("lab")
    await client.studios.delete(s, missing_ok=True)


async def test_create_is_not_duplicated(client: AsyncLightning) -> None:
    a = await client.studios.create("dup")
    b = await client.studios.create("dup", exist_ok=True)
    assert a.id == b.id
    with pytest.raises(LightningError, match="already exists"):
        await client.studios.create("dup")


async def test_run_returns_output_and_exit_codes(client: AsyncLightning) -> None:
    s = await client.studios.create("cmd")
    with pytest.raises(StudioError, match="not running"):
        await client.studios.run(s, "echo hi")
    await client.studios.start(s, timeout=10)
    ok = await client.studios.run(s, "echo hello", timeout=10)
    assert ok.output.strip() == "hello" and ok.exit_code == 0 and ok.ok
    bad = await client.studios.run(s, "echo oops; exit 3", timeout=10)
    assert bad.exit_code == 3 and "oops" in bad.output and not bad.ok
    with pytest.raises(CommandError, match="exited with 3"):
        await client.studios.run(s, "exit 3", check=True, timeout=10)


async def test_run_times_out(client: AsyncLightning, emu: Emulator) -> None:
    s = await client.studios.create("slow")
    await client.studios.start(s, timeout=10)
    emu.config.timings.command = 5.0
    with anyio.fail_after(3):
        with pytest.raises(CommandTimeoutError) as info:
            await client.studios.run(s, "sleep 100", timeout=0.3)
    assert isinstance(info.value, TimeoutError)
    assert info.value.session


async def test_bad_input_fails_before_any_request(client: AsyncLightning, emu: Emulator) -> None:
    s = await client.studios.create("valid")
    before = emu.counters.get("requests")
    with pytest.raises(InvalidArgumentError, match="lit-a100-1"):
        await client.studios.start(s, "gpu-9000")
    with pytest.raises(ValueError):
        await client.studios.start(s, "gpu-9000")
    with pytest.raises(InvalidArgumentError):
        await client.studios.start("", "cpu-4")
    with pytest.raises(InvalidArgumentError):
        await client.studios.create("   ")
    with pytest.raises(InvalidArgumentError, match="negative"):
        await client.studios.start(s, timeout=-1)
    with pytest.raises(InvalidArgumentError):
        await client.studios.wait(s, timeout=-0.5)
    with pytest.raises(InvalidArgumentError):
        await client.studios.run(s, "", timeout=1)
    with pytest.raises(InvalidArgumentError):
        await client.studios.start_many([s], "nope")
    assert emu.counters.get("requests") == before


def slow_first(emu: Emulator, method: str, suffix: str, delay: float) -> aiohttp.TraceConfig:
    """A trace that makes the server slow for the first ``method`` request whose path ends
    with ``suffix`` (the server handles it after the client timed out), then heals."""
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


async def test_start_after_an_ambiguous_timeout_is_not_sent_twice() -> None:
    """The start POST times out client-side but the server acts on it: before re-sending,
    start looks at codestatus, sees the studio starting, and does not send it again."""
    async with Emulator(config=EmulatorConfig(timings=fast_timings())) as emu:
        trace = slow_first(emu, "POST", "/start", 0.6)
        async with make_client(emu, timeout=0.3, trace_configs=[trace]) as client:
            s = await client.studios.create("amb")
            state = await client.studios.start(s, timeout=15)
            assert state.status is StudioStatus.RUNNING
            assert (
                emu.counters.get("requests:POST /v1/projects/{projectId}/cloudspaces/{id}/start")
                == 1
            )
            assert emu.counters.get(f"starts:{s.id}") == 1
            assert client.limiter.stats()["write"].errors >= 1  # the timeout did happen


async def test_start_many_200_under_rate_limit_and_5xx() -> None:
    config = EmulatorConfig(timings=fast_timings(studio_start=0.5))
    async with Emulator(config=config) as emu:
        async with make_client(emu) as client:
            created = await client.studios.create_many([f"fleet-{i}" for i in range(200)])
            studios = [o.result() for o in created]
            emu.config.faults = Faults(rate_limit=100, error_rate=0.05)
            progress: list[int] = []
            outs = await client.studios.start_many(
                studios, "cpu-4", timeout=60, on_progress=lambda p: progress.append(p.done)
            )
            assert [o.error for o in outs if not o.ok] == []
            assert all(o.value is not None and o.value.ready for o in outs)
            assert progress[-1] == 200
            counts = emu.counters.snapshot()
            assert all(counts.get(f"starts:{s.id}") == 1 for s in studios)
            assert counts.get("faults:error", 0) > 0  # the faults did happen
            assert counts.get("throttled", 0) > 0
            stats = client.limiter.stats()
            assert all(st.in_flight == 0 for st in stats.values())


async def test_cancelling_start_many_leaves_nothing_in_flight() -> None:
    config = EmulatorConfig(timings=fast_timings(studio_start=30.0))
    async with Emulator(config=config) as emu:
        async with make_client(emu) as client:
            studios = [o.result() for o in await client.studios.create_many(
                [f"c-{i}" for i in range(60)]
            )]  # fmt: skip
            emu.config.faults.latency = 0.01
            with anyio.move_on_after(0.5) as scope:
                await client.studios.start_many(studios, concurrency=16, timeout=60)
            assert scope.cancelled_caught
            stats = client.limiter.stats()
            assert all(st.in_flight == 0 for st in stats.values())
            await anyio.sleep(0.05)
            seen = emu.counters.get("requests")
            await anyio.sleep(0.3)
            assert emu.counters.get("requests") == seen


async def test_stop_many_and_delete_many(client: AsyncLightning, emu: Emulator) -> None:
    names = [f"s-{i}" for i in range(10)]
    await client.studios.create_many(names)
    listed = [s.name async for s in client.studios.list(page_size=3)]  # 4 pages
    assert sorted(listed) == sorted(names)
    outs = await client.studios.start_many(names, timeout=10)
    assert all(o.ok for o in outs), [o.error for o in outs]
    outs2 = await client.studios.stop_many(names, timeout=10)
    assert all(o.ok and o.value is not None for o in outs2)
    assert all(o.value.status is StudioStatus.STOPPED for o in outs2 if o.value is not None)
    outs3 = await client.studios.delete_many([*names, "never-existed"])
    assert all(o.ok for o in outs3)
    assert [s async for s in client.studios.list()] == []


async def test_start_of_a_missing_studio_needs_create(
    client: AsyncLightning, emu: Emulator
) -> None:
    """One behaviour for the library and the CLI: a missing studio is an error unless the
    caller asks for it to be created (``create=True``, ``--create``)."""
    with pytest.raises(StudioNotFoundError, match="'ghost' does not exist"):
        await client.studios.start("ghost")
    [missing] = await client.studios.start_many(["ghost"])
    assert isinstance(missing.error, StudioNotFoundError)
    assert not [s for s in emu.state.studios.by_id.values() if s.name == "ghost"]

    state = await client.studios.start("ghost", create=True)
    assert state.status is StudioStatus.RUNNING
    again = await client.studios.start("ghost", create=True)  # exists now: just started
    assert again.status is StudioStatus.RUNNING
    names = ["ghost", *(f"fleet-new-{i}" for i in range(3))]
    outcomes = await client.studios.start_many(names, create=True)
    assert [o.ok for o in outcomes] == [True] * 4
    created = [s.name for s in emu.state.studios.by_id.values()]
    assert sorted(created) == sorted(names)  # each studio made once
    with pytest.raises(InvalidArgumentError, match="create must be True or False"):
        await client.studios.start("ghost", create="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", ["bad name/with slash", "a/b", "-lead", "x" * 65, "tab\there", "ünï", ".hidden"]
)
async def test_studio_names_follow_the_naming_rule_before_any_request(
    client: AsyncLightning, emu: Emulator, name: str
) -> None:
    before = emu.counters.get("requests")
    for call in (
        client.studios.create(name),
        client.studios.start(name, create=True),
        client.studios.get(name),
    ):
        with pytest.raises(InvalidArgumentError, match="letters, digits"):
            await call
    assert emu.counters.get("requests") == before


async def test_the_emulator_refuses_what_the_client_refuses(client: AsyncLightning) -> None:
    ts = await client.teamspaces.resolve()
    body = {"name": "bad name/with slash", "displayName": "x"}
    with pytest.raises(LightningError, match="invalid name"):
        await client.transport.request("POST", f"/v1/projects/{ts.id}/cloudspaces", json=body)
    for ok in ("dev", "lr-0.01", "Worker_7", "x" * 64):
        assert (await client.studios.create(ok)).name == ok
