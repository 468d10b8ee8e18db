"""The studio fleet helpers at scale, by counting operations (never time): requests per
studio from the emulator's counters, scans of the name cache, studios waiting at once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from aiolightning._client import AsyncLightning
from aiolightning.emulator import Emulator
from aiolightning.emulator._config import EmulatorConfig, Timings
from aiolightning.resources.studios import StudioStatus
from aiolightning.resources.studios._status import StatusBoard

pytestmark = pytest.mark.anyio

N = 40
LIST = "requests:GET /v1/projects/{projectId}/cloudspaces"
CODESTATUS = "requests:GET /v1/projects/{projectId}/cloudspaces/{id}/codestatus"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    timings = Timings(studio_start=0.3, studio_stop=0.05)
    async with Emulator(config=EmulatorConfig(timings=timings)) as e:
        yield e


class Rounds:
    """Counts the rounds of every status board."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        original = StatusBoard._round

        async def counted(board: StatusBoard) -> None:
            self.n += 1
            await original(board)

        monkeypatch.setattr(StatusBoard, "_round", counted)

    def since(self) -> int:
        n, self.n = self.n, 0
        return n


@pytest.fixture
def rounds(monkeypatch: pytest.MonkeyPatch) -> Rounds:
    return Rounds(monkeypatch)


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncLightning]:
    async with emu.client() as c:
        c.studios.poll_initial = 0.05
        c.studios.poll_cap = 0.1
        await c.teamspaces.resolve(None)  # the default teamspace, looked up once
        yield c


class Requests:
    """The emulator's request counters, as differences since the last call."""

    def __init__(self, emu: Emulator) -> None:
        self._emu = emu
        self._last = emu.counters.snapshot()

    def since(self) -> dict[str, int]:
        now = self._emu.counters.snapshot()
        out = {
            k: v - self._last.get(k, 0)
            for k, v in now.items()
            if k.startswith("requests:") and v != self._last.get(k, 0)
        }
        self._last = now
        return out


def _route(counts: dict[str, int], method: str, suffix: str) -> int:
    template = "/v1/projects/{projectId}/cloudspaces" + suffix
    return counts.get(f"requests:{method} {template}", 0)


async def test_requests_per_studio_of_each_bulk_helper(
    client: AsyncLightning, emu: Emulator, rounds: Rounds
) -> None:
    names = [f"fleet-{i}" for i in range(N)]
    req = Requests(emu)

    created = await client.studios.create_many(names)
    assert all(o.ok for o in created), [o.error for o in created if not o.ok]
    c = req.since()
    assert _route(c, "POST", "") == N  # one create per studio
    assert _route(c, "POST", "/{cloudspaceId}/runs") == N  # the SDK's lightning-run record
    assert c.get(LIST) == 1  # the names: one page of one walk, no lookup per name
    assert sum(c.values()) == 2 * N + 1, c

    started = await client.studios.start_many(names, timeout=30)
    assert all(o.ok for o in started), [o.error for o in started if not o.ok]
    c = req.since()
    assert _route(c, "POST", "/{id}/start") == N  # one start per studio
    assert c.get(CODESTATUS, 0) == 0  # states come from the listing
    # the rest: one page of names and states, then one list call per board round (few
    # studios waiting: asked for by ids), however many rounds the boots took
    assert c.get(LIST) == 1 + rounds.since()
    assert sum(c.values()) == N + c[LIST], c

    stopped = await client.studios.stop_many(names, timeout=30)
    assert all(o.ok and o.value is not None for o in stopped)
    assert all(o.value.status is StudioStatus.STOPPED for o in stopped if o.value is not None)
    c = req.since()
    assert _route(c, "POST", "/{id}/stop") == N  # one stop per studio
    assert c.get(CODESTATUS, 0) == 0
    assert c.get(LIST) == 1 + rounds.since()
    assert sum(c.values()) == N + c[LIST], c

    again = await client.studios.stop_many(names, timeout=30)  # all stopped: nothing to send
    assert all(o.ok for o in again)
    assert req.since() == {LIST: 1}

    deleted = await client.studios.delete_many(names)
    assert all(o.ok for o in deleted)
    c = req.since()
    assert _route(c, "DELETE", "/{id}") == N  # one delete per studio
    assert sum(c.values()) == N + 1, c  # and one page resolving the names


class CountingDict(dict[Any, Any]):
    """A dict that counts the entries any iteration over it visits."""

    visits = 0

    def __iter__(self) -> Iterator[Any]:
        for k in super().__iter__():
            self.visits += 1
            yield k

    def items(self) -> Any:
        return [(k, self[k]) for k in self]

    def values(self) -> Any:
        return [self[k] for k in self]

    def keys(self) -> Any:
        return list(self)


async def test_delete_many_never_scans_the_name_cache(
    client: AsyncLightning, emu: Emulator
) -> None:
    names = [f"d-{i}" for i in range(N)]
    created = await client.studios.create_many(names)
    for o in created:  # each studio cached under its name and its id
        await client.studios.get(o.result().id)
    cache = CountingDict(client.studios._by_name)
    client.studios._by_name = cache
    assert len(cache) == 2 * N
    outs = await client.studios.delete_many(names)
    assert all(o.ok for o in outs)
    assert cache.visits == 0  # a delete costs O(1) in the cache, whatever its size
    assert len(cache) == 0  # and forgets both entries of the studio


async def test_waiting_studios_hold_no_slot(
    client: AsyncLightning, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"w-{i}" for i in range(20)]
    await client.studios.create_many(names)
    waiting = 0
    most = 0
    wait = StatusBoard.wait

    async def counting_wait(self: StatusBoard, *args: Any, **kw: Any) -> Any:
        nonlocal waiting, most
        waiting += 1
        most = max(most, waiting)
        try:
            return await wait(self, *args, **kw)
        finally:
            waiting -= 1

    monkeypatch.setattr(StatusBoard, "wait", counting_wait)
    outs = await client.studios.start_many(names, concurrency=2, timeout=30)
    assert all(o.ok for o in outs)
    assert most == len(names)  # every studio boots at once; only the requests queue
    outs = await client.studios.stop_many(names, concurrency=2, timeout=30)
    assert all(o.ok for o in outs)


async def test_without_waiting_the_states_come_from_the_board(
    client: AsyncLightning, emu: Emulator, rounds: Rounds
) -> None:
    names = [f"nw-{i}" for i in range(N)]
    await client.studios.create_many(names)
    req = Requests(emu)
    outs = await client.studios.start_many(names, wait=False)
    assert all(o.ok and o.value is not None for o in outs)
    assert all(o.value.status is StudioStatus.PENDING for o in outs if o.value is not None)
    c = req.since()
    assert _route(c, "POST", "/{id}/start") == N and c.get(CODESTATUS, 0) == 0
    assert c.get(LIST) == 1 + rounds.since()  # no GET per studio: the board's rounds
    assert sum(c.values()) == N + c[LIST], c
    outs = await client.studios.stop_many(names, timeout=30)
    assert all(o.ok for o in outs)
