"""Faults after the act: the emulator commits the change, then drops, spoils, cuts or delays
the answer; the effect counters record what really changed, once per change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from conftest import fast_timings

from aiolightning.emulator import Emulator, EmulatorConfig, Faults
from aiolightning.emulator._cli import config_from_args, parser
from aiolightning.emulator._server import cli_args

pytestmark = pytest.mark.anyio

STUDIOS = "/v1/projects/{pid}/cloudspaces"
CREATE_STUDIO = "POST /v1/projects/{projectId}/cloudspaces"
PUT_PART = "PUT /_storage/parts/{upload_id}/{part}"


@pytest.fixture
async def fresh_http(emulator: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A session that opens a new connection per request: aiohttp would otherwise re-send an
    idempotent request once on its own when a kept-alive connection dies."""
    headers = {"Authorization": aiohttp.encode_basic_auth(emulator.user_id, emulator.api_key)}
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(
        base_url=emulator.url, headers=headers, connector=connector
    ) as s:
        yield s


def _studios(emulator: Emulator) -> dict[str, str]:
    return {s.name: s.id for s in emulator.state.studios.by_id.values()}


async def _create_studio(s: aiohttp.ClientSession, emulator: Emulator, name: str) -> Any:
    async with s.post(STUDIOS.format(pid=emulator.teamspace_id), json={"name": name}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_drop_after_commits_then_closes(
    emulator: Emulator, fresh_http: aiohttp.ClientSession
) -> None:
    emulator.config.faults.drop_after_rate = 1.0
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await _create_studio(fresh_http, emulator, "dropped")
    assert "dropped" in _studios(emulator)  # the studio exists: the answer alone was lost
    assert emulator.counters.effects("studio_created") == {"dropped": 1}
    assert emulator.counters.get("faults:drop_after") == 1
    assert emulator.counters.get(f"faults:drop_after:{CREATE_STUDIO}") == 1
    assert emulator.counters.get(f"requests:{CREATE_STUDIO}") == 1  # handled,
    assert not any(k.startswith("responses:") for k in emulator.counters.snapshot())  # unanswered
    emulator.config.faults.drop_after_rate = 0.0
    async with fresh_http.post(
        STUDIOS.format(pid=emulator.teamspace_id), json={"name": "dropped"}
    ) as r:
        assert r.status == 409  # a blind retry meets the studio it created
    assert emulator.counters.effects("studio_created") == {"dropped": 1}


async def test_error_after_commits_then_answers_5xx(
    emulator: Emulator, fresh_http: aiohttp.ClientSession
) -> None:
    emulator.config.faults.error_after_rate = 1.0
    statuses, html = set(), 0
    for i in range(16):
        async with fresh_http.post(
            STUDIOS.format(pid=emulator.teamspace_id), json={"name": f"e{i}"}
        ) as r:
            statuses.add(r.status)
            assert "Retry-After" not in r.headers  # a failure, not a throttle
            if r.content_type == "text/html":
                html += 1
                assert f"{r.status} {r.reason}" in await r.text()
            else:
                assert (await r.json())["code"] in (13, 14)
    assert statuses == {500, 502, 503}
    assert 0 < html < 16  # some answers are a proxy's page, some the service's error body
    assert emulator.counters.effects("studio_created") == {f"e{i}": 1 for i in range(16)}
    assert set(_studios(emulator)) == {f"e{i}" for i in range(16)}
    assert emulator.counters.get("faults:error_after") == 16


async def test_truncate_commits_then_cuts_the_body(
    emulator: Emulator, fresh_http: aiohttp.ClientSession
) -> None:
    emulator.config.faults.truncate_rate = 1.0
    job = {"name": "cut", "spec": {"image": "ubuntu", "instanceName": "cpu-4", "command": "x"}}
    with pytest.raises(aiohttp.ClientPayloadError):
        async with fresh_http.post(f"/v1/projects/{emulator.teamspace_id}/jobs", json=job) as r:
            assert r.status == 200  # the head arrives whole, announcing the full length
            await r.read()
    assert emulator.counters.effects("job_created") == {"cut": 1}
    assert [j.name for j in emulator.state.jobs.by_id.values()] == ["cut"]
    assert emulator.counters.get("faults:truncate") == 1


async def test_slow_commit_lets_the_client_time_out_after_the_commit(
    emulator: Emulator, fresh_http: aiohttp.ClientSession
) -> None:
    emulator.config.faults.slow_commit = 30.0
    with pytest.raises(asyncio.TimeoutError):
        async with fresh_http.post(
            STUDIOS.format(pid=emulator.teamspace_id),
            json={"name": "slow"},
            timeout=aiohttp.ClientTimeout(total=0.3),
        ) as r:
            await r.read()
    assert "slow" in _studios(emulator)
    assert emulator.counters.effects("studio_created") == {"slow": 1}
    assert emulator.counters.get("faults:slow_commit") == 1
    emulator.config.faults.slow_commit_rate = 0.0  # none of the answers is held back now
    await _create_studio(fresh_http, emulator, "quick")


async def test_after_faults_spare_what_never_ran(
    emulator: Emulator, fresh_http: aiohttp.ClientSession
) -> None:
    """A request refused before its handler (a 429, an injected 5xx before) is not also
    spoiled after: only a committed request meets a fault after the act."""
    f = emulator.config.faults
    f.error_rate, f.drop_after_rate = 1.0, 1.0
    for _ in range(3):
        async with fresh_http.get("/v1/auth/whoami") as r:
            assert r.status in (500, 503)
    assert emulator.counters.get("faults:error") == 3
    assert emulator.counters.get("faults:error:GET /v1/auth/whoami") == 3
    assert emulator.counters.get("faults:drop_after") == 0


async def test_after_faults_are_seeded() -> None:
    """The same seed and the same requests meet the same faults, in the same order."""
    faults = Faults(drop_after_rate=0.2, error_after_rate=0.2, truncate_rate=0.2)

    async def run() -> list[str]:
        config = EmulatorConfig(faults=Faults(**vars(faults)), timings=fast_timings())
        seen = []
        async with Emulator(seed=7, config=config) as emu:
            headers = {"Authorization": aiohttp.encode_basic_auth(emu.user_id, emu.api_key)}
            connector = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(headers=headers, connector=connector) as s:
                for _ in range(30):
                    try:
                        # a POST: aiohttp re-sends an idempotent request once on a drop
                        async with s.post(emu.url + "/v1/sdk-command-history", json={}) as r:
                            await r.read()
                            seen.append(str(r.status))
                    except aiohttp.ClientError as e:
                        seen.append(type(e).__name__)
        return seen

    first, second = await run(), await run()
    assert first == second
    assert {"200", "ServerDisconnectedError", "ClientPayloadError"} <= set(first)
    assert set(first) & {"500", "502", "503"}


# -- storage: presigned PUTs and the complete call ----------------------------------------


async def _sign(s: aiohttp.ClientSession, emulator: Emulator, blob: dict[str, Any]) -> Any:
    body = {"cluster_id": emulator.cluster_id, "blobs": [blob]}
    async with s.post(f"/v1/projects/{emulator.teamspace_id}/artifacts/blobs", json=body) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["results"][0]


async def test_storage_faults_after_the_act(
    emulator: Emulator, fresh_http: aiohttp.ClientSession
) -> None:
    f = emulator.config.faults
    start = await _sign(fresh_http, emulator, {"path": "big.bin", "parts": 2, "part_size": 4})
    urls = {u["part_number"]: u["url"] for u in start["urls"]}
    plain = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    async with plain:
        # part 1: stored, then the connection dropped before the ETag reached the client
        f.drop_after_rate = 1.0
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with plain.put(urls[1], data=b"abcd") as r:
                await r.read()
        (up,) = emulator.storage.open_uploads()
        assert sorted(up.received) == [1]
        # part 2: stored, then the answer (no body: an ETag header) cut inside its head
        f.drop_after_rate, f.truncate_rate = 0.0, 1.0
        with pytest.raises(aiohttp.ClientError):
            async with plain.put(urls[2], data=b"ef") as r:
                await r.read()
        assert sorted(up.received) == [1, 2]
        # aiohttp re-sent each PUT once on its own (it does so for an idempotent method whose
        # connection died): each try stored the part again, and each met the fault again
        stored = emulator.counters.effects("part_stored")
        assert stored["big.bin#1"] == emulator.counters.get(f"faults:drop_after:{PUT_PART}")
        assert stored["big.bin#2"] == emulator.counters.get(f"faults:truncate:{PUT_PART}")
        assert set(stored) == {"big.bin#1", "big.bin#2"}
        etags = [{"part_number": n, "etag": up.received[n].etag} for n in (1, 2)]
        # the complete call: the object is assembled, then a 5xx goes back
        f.truncate_rate, f.error_after_rate = 0.0, 1.0
        done = {"path": "big.bin", "upload_id": start["upload_id"], "parts": etags}
        async with fresh_http.post(
            f"/v1/projects/{emulator.teamspace_id}/artifacts/blobs/complete",
            json={"blobs": [done]},
        ) as r:
            assert r.status >= 500
        obj = emulator.storage.get_object(emulator.teamspace_id, "big.bin")
        assert obj is not None and obj.size == 6
        assert emulator.storage.open_uploads() == []
        # a single-part PUT: stored whole, then the XML/HTML 5xx
        single = await _sign_without_faults(fresh_http, emulator, {"path": "one.txt"})
        async with plain.put(single["urls"][0]["url"], data=b"hello") as r:
            assert r.status >= 500
    assert emulator.storage.get_object(emulator.teamspace_id, "one.txt") is not None
    assert emulator.counters.effects("upload_completed") == {"big.bin": 1, "one.txt": 1}


async def _sign_without_faults(
    s: aiohttp.ClientSession, emulator: Emulator, blob: dict[str, Any]
) -> Any:
    f = emulator.config.faults
    saved, f.error_after_rate = f.error_after_rate, 0.0
    try:
        return await _sign(s, emulator, blob)
    finally:
        f.error_after_rate = saved


# -- effect counters: what changed, once per change -----------------------------------------


async def test_effects_count_changes_not_requests(
    emulator: Emulator, emu_http: aiohttp.ClientSession
) -> None:
    pid = emulator.teamspace_id
    sid = (await _create_studio(emu_http, emulator, "fx"))["id"]
    base = f"{STUDIOS.format(pid=pid)}/{sid}"
    for _ in range(2):  # the second start of a starting studio changes nothing
        async with emu_http.post(f"{base}/start", json={}) as r:
            assert r.status == 200
    for _ in range(2):
        async with emu_http.post(f"{base}/stop", json={}) as r:
            assert r.status == 200
    async with emu_http.put(f"{base}/codeconfig", json={"computeConfig": {"name": "cpu-4"}}) as r:
        assert r.status == 200  # the machine it already has: no switch
    await asyncio.sleep(0.1)  # the stop completes (studio_stop = 0.05 s)
    async with emu_http.put(f"{base}/codeconfig", json={"computeConfig": {"name": "cpu-8"}}) as r:
        assert r.status == 200
    job = {"name": "twin", "spec": {"image": "ubuntu", "instanceName": "cpu-4", "command": "x"}}
    jids = []
    for _ in range(2):  # the same name twice: the service names the second `twin-2`
        async with emu_http.post(f"/v1/projects/{pid}/jobs", json=job) as r:
            jids.append((await r.json())["id"])
    for _ in range(2):
        async with emu_http.put(f"/v1/projects/{pid}/jobs/{jids[0]}", json={"state": "stop"}) as r:
            assert r.status == 200
    async with emu_http.delete(f"/v1/projects/{pid}/jobs/{jids[1]}") as r:
        assert r.status == 200
    async with emu_http.delete(base) as r:
        assert r.status == 200
    c = emulator.counters
    assert c.effects("studio_created") == {"fx": 1}
    assert c.effects("studio_started") == {sid: 1}
    assert c.effects("studio_stopped") == {sid: 1}
    assert c.effects("machine_switched") == {sid: 1}
    assert c.effects("studio_deleted") == {sid: 1}
    assert c.effects("job_created") == {"twin": 2}  # a duplicate shows under the asked name
    assert c.effects("job_stopped") == {jids[0]: 1}
    assert c.effects("job_deleted") == {jids[1]: 1}
    assert c.get("effects:studio_started") == 1
    async with emu_http.get("/_emulator/effects") as r:
        everything = await r.json()
    assert everything["job_created"] == {"twin": 2}
    assert everything["studio_deleted"] == {sid: 1}


async def test_effects_of_commands_and_blob_deletes(
    emulator: Emulator, emu_http: aiohttp.ClientSession
) -> None:
    pid = emulator.teamspace_id
    sid = (await _create_studio(emu_http, emulator, "cmd"))["id"]
    base = f"{STUDIOS.format(pid=pid)}/{sid}"
    async with emu_http.post(f"{base}/start", json={}) as r:
        assert r.status == 200
    for _ in range(100):  # running after studio_start / 2 of simulated time
        async with emu_http.post(f"{base}/execute", json={"command": "echo hi"}) as r:
            if r.status == 200:
                break
        await asyncio.sleep(0.02)
    assert emulator.counters.effects("command_executed") == {f"{sid}:echo hi": 1}
    for path in ("d/a.txt", "d/b.txt"):
        url = (await _sign(emu_http, emulator, {"path": path}))["urls"][0]["url"]
        async with aiohttp.ClientSession() as plain, plain.put(url, data=b"x") as r:
            assert r.status == 200
    async with emu_http.delete(f"/v1/projects/{pid}/artifacts/blobs/d/a.txt") as r:
        assert r.status == 204
    async with emu_http.delete(f"/v1/projects/{pid}/artifacts/trees/d") as r:
        assert r.status == 204
    assert emulator.counters.effects("blob_deleted") == {"d/a.txt": 1, "d/b.txt": 1}


# -- the knobs on the command line -----------------------------------------------------------


def test_after_fault_flags_round_trip() -> None:
    faults = Faults(
        drop_after_rate=0.05,
        error_after_rate=0.04,
        truncate_rate=0.03,
        slow_commit=2.5,
        slow_commit_rate=0.1,
    )
    config = config_from_args(parser().parse_args(cli_args(3, EmulatorConfig(faults=faults))))
    assert config.faults == faults
    text = parser().format_help()
    for flag in (
        "--drop-after-rate",
        "--error-after-rate",
        "--truncate-rate",
        "--slow-commit",
        "--slow-commit-rate",
    ):
        assert flag in text
