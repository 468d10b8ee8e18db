"""Emulator studios: create/list/find, the codestatus lifecycle, switch, commands."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio

READY_TIMEOUT = 5.0


async def _create(s: aiohttp.ClientSession, pid: str, name: str) -> dict[str, Any]:
    async with s.post(
        f"/v1/projects/{pid}/cloudspaces", json={"name": name, "displayName": name}
    ) as r:
        assert r.status == 200, await r.text()
        return await r.json()  # type: ignore[no-any-return]


async def _status(s: aiohttp.ClientSession, pid: str, sid: str) -> dict[str, Any]:
    async with s.get(f"/v1/projects/{pid}/cloudspaces/{sid}/codestatus") as r:
        assert r.status == 200
        return await r.json()  # type: ignore[no-any-return]


async def _wait_ready(s: aiohttp.ClientSession, pid: str, sid: str) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        st = await _status(s, pid, sid)
        iu = st["inUse"]
        if iu and iu["startupStatus"]["topUpRestoreFinished"]:
            return st
        await asyncio.sleep(0.02)
    raise AssertionError("studio never became ready")


async def _start(s: aiohttp.ClientSession, pid: str, sid: str, machine: str = "cpu-4") -> None:
    body = {"computeConfig": {"name": machine, "spot": False}}
    async with s.post(f"/v1/projects/{pid}/cloudspaces/{sid}/start", json=body) as r:
        assert r.status == 200, await r.text()


async def test_lifecycle(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    studio = await _create(emu_http, pid, "life")
    sid = studio["id"]
    assert studio["clusterId"] == emulator.cluster_id
    assert studio["state"] == "CLOUD_SPACE_STATE_READY"
    assert studio["env"] == [] and studio["codeStatus"]["inUse"] is None
    assert studio["createdAt"].endswith("Z") and studio["publishedAt"] is None
    assert (await _status(emu_http, pid, sid))["inUse"] is None  # Stopped

    await _start(emu_http, pid, sid, "lit-t4-1")
    first = await _status(emu_http, pid, sid)
    assert first["inUse"]["phase"] == "CLOUD_SPACE_INSTANCE_STATE_PENDING"
    assert first["inUse"]["startupStatus"]["topUpRestoreFinished"] is False
    phases = set()
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        st = await _status(emu_http, pid, sid)
        phases.add(st["inUse"]["phase"])
        if st["inUse"]["startupStatus"]["topUpRestoreFinished"]:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert phases >= {"CLOUD_SPACE_INSTANCE_STATE_PENDING", "CLOUD_SPACE_INSTANCE_STATE_RUNNING"}
    iu = st["inUse"]
    assert iu["phase"] == "CLOUD_SPACE_INSTANCE_STATE_RUNNING"
    assert iu["startupStatus"]["initialRestoreFinished"] is True
    assert iu["computeConfig"] == {**iu["computeConfig"], "name": "lit-t4-1", "spot": False}
    assert iu["publicIpAddress"]
    first_instance = iu["cloudSpaceInstanceId"]
    assert first_instance == first["inUse"]["cloudSpaceInstanceId"]

    async with emu_http.get(f"/v1/projects/{pid}/cloudspaces/{sid}/codeconfig") as r:
        assert (await r.json())["computeConfig"]["name"] == "lit-t4-1"
    async with emu_http.post(f"/v1/projects/{pid}/cloudspaces/{sid}/keep-alive", json={}) as r:
        assert r.status == 200

    async with emu_http.post(f"/v1/projects/{pid}/cloudspaces/{sid}/stop", json={}) as r:
        assert r.status == 200
    assert (await _status(emu_http, pid, sid))["inUse"][
        "phase"
    ] == "CLOUD_SPACE_INSTANCE_STATE_STOPPING"
    await asyncio.sleep(0.1)
    assert (await _status(emu_http, pid, sid))["inUse"] is None

    # a new start reports a new instance id
    await _start(emu_http, pid, sid)
    st = await _wait_ready(emu_http, pid, sid)
    assert st["inUse"]["cloudSpaceInstanceId"] != first_instance
    assert emulator.counters.get(f"starts:{sid}") == 2

    async with emu_http.delete(f"/v1/projects/{pid}/cloudspaces/{sid}", json={}) as r:
        assert r.status == 200
    async with emu_http.get(f"/v1/projects/{pid}/cloudspaces/{sid}") as r:
        assert r.status == 404


async def test_start_while_running(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    sid = (await _create(emu_http, pid, "twice"))["id"]
    await _start(emu_http, pid, sid)
    iid = (await _status(emu_http, pid, sid))["inUse"]["cloudSpaceInstanceId"]
    await _start(emu_http, pid, sid)  # same machine: no new instance
    assert (await _status(emu_http, pid, sid))["inUse"]["cloudSpaceInstanceId"] == iid
    async with emu_http.post(
        f"/v1/projects/{pid}/cloudspaces/{sid}/start",
        json={"computeConfig": {"name": "lit-a100-8"}},
    ) as r:
        assert r.status == 400  # running on another machine
    assert emulator.counters.get(f"starts:{sid}") == 3
    assert emulator.counters.get("creates:studio:twice") == 1


async def test_duplicate_name_conflict(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    await _create(emu_http, pid, "dup")
    async with emu_http.post(f"/v1/projects/{pid}/cloudspaces", json={"name": "dup"}) as r:
        assert r.status == 409
        assert (await r.json())["code"] == 6
    assert emulator.counters.get("creates:studio:dup") == 2


async def test_switch_machine(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    sid = (await _create(emu_http, pid, "switch"))["id"]
    await _start(emu_http, pid, sid)
    old = (await _wait_ready(emu_http, pid, sid))["inUse"]["cloudSpaceInstanceId"]
    body = {"computeConfig": {"name": "lit-l4-1", "spot": True}}
    async with emu_http.put(f"/v1/projects/{pid}/cloudspaces/{sid}/codeconfig", json=body) as r:
        assert r.status == 200
    st = await _status(emu_http, pid, sid)
    assert st["requested"]["startupStatus"]["initialRestoreFinished"] is False
    assert st["inUse"]["cloudSpaceInstanceId"] == old
    async with emu_http.post(f"/v1/projects/{pid}/cloudspaces/{sid}/switch-confirm", json={}) as r:
        assert r.status == 400  # not ready yet
    deadline = time.monotonic() + READY_TIMEOUT
    while not (await _status(emu_http, pid, sid))["requested"]["startupStatus"][
        "initialRestoreFinished"
    ]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    async with emu_http.post(f"/v1/projects/{pid}/cloudspaces/{sid}/switch-confirm", json={}) as r:
        assert r.status == 200
    st = await _wait_ready(emu_http, pid, sid)
    assert st["requested"] is None
    assert st["inUse"]["cloudSpaceInstanceId"] != old
    assert st["inUse"]["computeConfig"]["name"] == "lit-l4-1"
    assert st["inUse"]["computeConfig"]["spot"] is True
    async with emu_http.get(f"/v1/projects/{pid}/cloudspaces/{sid}/codeconfig") as r:
        assert (await r.json())["computeConfig"]["name"] == "lit-l4-1"


async def test_list_pagination_and_find(
    emulator: Emulator, emu_http: aiohttp.ClientSession
) -> None:
    pid = emulator.teamspace_id
    names = [f"s{i:02d}" for i in range(23)]
    for n in names:
        await _create(emu_http, pid, n)
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        params = {"limit": "10", "userId": emulator.user_id}
        if token:
            params["pageToken"] = token
        async with emu_http.get(f"/v1/projects/{pid}/cloudspaces", params=params) as r:
            body = await r.json()
        pages += 1
        seen += [c["name"] for c in body["cloudspaces"]]
        token = body["nextPageToken"]
        if not token:
            break
    assert seen == names and pages == 3
    # default page size applies without a limit
    emulator.config.page_size = 5
    async with emu_http.get(f"/v1/projects/{pid}/cloudspaces") as r:
        body = await r.json()
    assert len(body["cloudspaces"]) == 5 and body["nextPageToken"]
    async with emu_http.get(f"/v1/projects/{pid}/cloudspaces", params={"name": "s07"}) as r:
        found = (await r.json())["cloudspaces"]
    assert [c["name"] for c in found] == ["s07"]
    async with emu_http.get(f"/v1/projects/{pid}/cloudspaces", params={"name": "nope"}) as r:
        assert (await r.json())["cloudspaces"] == []
    async with emu_http.get(
        f"/v1/projects/{pid}/cloudspaces", params={"pageToken": "garbage!"}
    ) as r:
        assert r.status == 400


async def _run(s: aiohttp.ClientSession, pid: str, sid: str, command: str) -> str:
    async with s.post(
        f"/v1/projects/{pid}/cloudspaces/{sid}/execute", json={"command": command, "detached": True}
    ) as r:
        assert r.status == 200, await r.text()
        session = (await r.json())["sessionName"]
    assert session
    return session


async def _stream(
    s: aiohttp.ClientSession, pid: str, sid: str, session: str
) -> list[dict[str, Any]]:
    async with s.get(f"/v1/projects/{pid}/cloudspaces/{sid}/execute/{session}/stream") as r:
        assert r.status == 200
        text = await r.text()
    return [json.loads(line)["result"] for line in text.splitlines() if line.strip()]


async def _finish(s: aiohttp.ClientSession, pid: str, sid: str, session: str) -> tuple[str, int]:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        results = await _stream(s, pid, sid, session)
        if results and results[-1]["exitCode"] != -1:
            codes = {r["exitCode"] for r in results}
            assert len(codes) == 1
            return "".join(r["output"] for r in results), codes.pop()
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def test_execute_and_stream(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    sid = (await _create(emu_http, pid, "cmd"))["id"]
    async with emu_http.post(
        f"/v1/projects/{pid}/cloudspaces/{sid}/execute",
        json={"command": "echo hi", "detached": True},
    ) as r:
        assert r.status == 400  # not running
    await _start(emu_http, pid, sid)
    await _wait_ready(emu_http, pid, sid)

    cases = {
        "echo a b": ("a b\n", 0),
        "true": ("", 0),
        "false": ("", 1),
        "exit 3": ("", 3),
        "echo one; echo two && echo three": ("one\ntwo\nthree\n", 0),
        "false && echo no; echo yes": ("yes\n", 0),
        "echo x; exit 7; echo never": ("x\n", 7),
        "frobnicate --all": ("sh: 1: frobnicate: not found\n", 127),
        "echo 'a; b'": ("a; b\n", 0),
    }
    for command, expected in cases.items():
        session = await _run(emu_http, pid, sid, command)
        assert await _finish(emu_http, pid, sid, session) == expected, command

    # while running: one line, output so far, exitCode -1; the final code is always present
    session = await _run(emu_http, pid, sid, "echo before; sleep 0.3; echo after")
    running = await _stream(emu_http, pid, sid, session)
    assert running == [{"output": "before\n", "exitCode": -1}]
    out, code = await _finish(emu_http, pid, sid, session)
    assert (out, code) == ("before\nafter\n", 0)
    again = await _stream(emu_http, pid, sid, session)  # re-polls repeat the full output
    assert "".join(r["output"] for r in again) == out
    assert all("exitCode" in r for r in again)

    async with emu_http.get(f"/v1/projects/{pid}/cloudspaces/{sid}/execute/nope/stream") as r:
        assert r.status == 404
    # synchronous variant
    async with emu_http.post(
        f"/v1/projects/{pid}/cloudspaces/{sid}/execute",
        json={"command": "echo sync", "detached": False},
    ) as r:
        body = await r.json()
    assert body["output"] == "sync\n" and body["exitCode"] == 0


async def test_env_update(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    sid = (await _create(emu_http, pid, "envs"))["id"]
    async with emu_http.put(
        f"/v1/projects/{pid}/cloudspaces/{sid}",
        json={"env": [{"name": "A", "value": "1"}], "description": "d"},
    ) as r:
        body = await r.json()
    assert body["env"] == [{"name": "A", "value": "1", "fromSecret": ""}]
    assert body["description"] == "d"


async def test_many_studios_are_cheap(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            sid = (await _create(emu_http, pid, f"fleet-{i}"))["id"]
            await _start(emu_http, pid, sid)

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(500)))
    assert time.perf_counter() - t < 30
    assert len(asyncio.all_tasks()) < 100  # connection handlers only: no task per studio
    async with emu_http.get(f"/v1/projects/{pid}/cloudspaces", params={"limit": "1000"}) as r:
        assert len((await r.json())["cloudspaces"]) == 500
