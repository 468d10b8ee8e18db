"""Every public bulk helper checks its argument the same way: an iterable of the expected
items, else a TypeError naming the method and the type, before any request is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aiolightning import AsyncLightning, JobRequest, StoragePathError
from aiolightning.emulator import Emulator, EmulatorConfig, Timings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    fast = Timings(job_pending=0.01, job_creating=0.01, job_running=0.01, job_finishing=0.01)
    async with Emulator(config=EmulatorConfig(timings=fast)) as e:
        yield e


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncLightning]:
    async with emu.client() as c:
        yield c


async def test_submit_many_takes_mappings_of_jobrequest_fields(client: AsyncLightning) -> None:
    reqs: list[Any] = [
        {"name": "from-dict", "command": "echo hi", "image": "python:3.12"},
        JobRequest("from-request", "echo hi", image="python:3.12"),
    ]
    outcomes = await client.jobs.submit_many(reqs)
    assert [o.result().name for o in outcomes] == ["from-dict", "from-request"]
    assert outcomes[0].item is reqs[0]


def bad_calls(client: AsyncLightning, tmp: Path) -> list[tuple[Callable[[], Any], str]]:
    s = client.studios
    f = str(tmp / "f")
    return [
        (lambda: client.jobs.submit_many({"name": "j", "command": "x"}), "got a dict"),
        (lambda: client.jobs.submit_many([JobRequest("a", "x", image="i"), 5]), "item 1 is a int"),
        (lambda: client.jobs.submit_many([{"nmae": "typo"}]), "unknown field(s) nmae"),
        (lambda: client.jobs.submit_many([{"command": "x"}]), "no 'name'"),
        (lambda: s.create_many("dev"), "studios.create_many() takes an iterable"),
        (lambda: s.create_many([None]), "item 0 is a NoneType"),
        (lambda: s.start_many("dev"), "studios.start_many() takes an iterable of studio names"),
        (lambda: s.start_many(["ok", 7]), "item 1 is a int"),
        (lambda: s.stop_many(3), "studios.stop_many() takes an iterable"),
        (lambda: s.delete_many([b"x"]), "item 0 is a bytes"),
        (lambda: client.storage.upload_many([(f, "lit:///a", "x")]), "storage.upload_many()"),
        (lambda: client.storage.download_many("lit:///a"), "storage.download_many() takes"),
        (lambda: client.deployments.create_many([{"name": "d"}]), "item 0 is a dict"),
        (lambda: client.deployments.stop_many("api"), "deployments.stop_many() takes"),
        (lambda: client.deployments.delete_many([1.5]), "item 0 is a float"),
        (lambda: client.jobs.poll("job-1"), "jobs.poll() takes an iterable of Job objects"),
        (lambda: client.jobs.poll(["job-1", None]), "jobs.poll(): item 1 is a NoneType"),
        (lambda: client.jobs.poll(iter([{"id": "x"}])), "jobs.poll(): item 0 is a dict"),
        (lambda: anext(client.jobs.watch(7)), "jobs.watch() takes an iterable of Job"),
        (lambda: anext(client.jobs.watch([b"j"])), "jobs.watch(): item 0 is a bytes"),
    ]


async def test_wrong_types_raise_typeerror_before_any_request(
    client: AsyncLightning, emu: Emulator, tmp_path: Path
) -> None:
    before = emu.counters.get("requests")
    for call, words in bad_calls(client, tmp_path):
        with pytest.raises(TypeError) as err:
            await call()
        assert words in str(err.value), str(err.value)
    assert emu.counters.get("requests") == before


async def test_storage_entry_points_name_a_wrong_local_path(
    client: AsyncLightning, emu: Emulator
) -> None:
    before = emu.counters.get("requests")
    st: Any = client.storage
    for call in (
        lambda: st.upload(5, "lit:///a"),
        lambda: st.upload(b"/etc/hostname", "lit:///a"),
        lambda: st.download("lit:///a", None),
        lambda: st.download("lit:///a", ""),
        lambda: st.upload_dir(3.5, "lit:///d/"),
        lambda: st.download_dir("lit:///d/", 7),
    ):
        with pytest.raises(StoragePathError, match=r"must be a non-empty str or os\.PathLike"):
            await call()
    assert emu.counters.get("requests") == before


async def test_a_wrong_item_of_a_lazy_iterable_fails_alone(client: AsyncLightning) -> None:
    def names() -> Iterator[Any]:
        yield "lazy-ok"
        yield 42

    outcomes = await client.studios.create_many(names())
    assert outcomes[0].ok
    assert isinstance(outcomes[1].error, TypeError)
    assert "expected studio names" in str(outcomes[1].error)
