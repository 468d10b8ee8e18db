"""Emulator jobs: lifecycle and outcome, stop, find, rename, delete, pagination, logs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio

TERMINAL = {"completed", "failed", "stopped"}


def _spec(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "image": "ubuntu:22.04",
        "command": "echo hi",
        "entrypoint": "sh -c",
        "instanceName": "cpu-4",
        "env": [],
        "spot": False,
        "pathMappings": [],
    }
    spec.update(over)
    return spec


async def _submit(s: aiohttp.ClientSession, pid: str, name: str, **over: Any) -> dict[str, Any]:
    async with s.post(f"/v1/projects/{pid}/jobs", json={"name": name, "spec": _spec(**over)}) as r:
        assert r.status == 200, await r.text()
        return await r.json()  # type: ignore[no-any-return]


async def _get(s: aiohttp.ClientSession, pid: str, jid: str) -> dict[str, Any]:
    async with s.get(f"/v1/projects/{pid}/jobs/{jid}") as r:
        assert r.status == 200
        return await r.json()  # type: ignore[no-any-return]


async def _states_until_terminal(s: aiohttp.ClientSession, pid: str, jid: str) -> list[str]:
    states: list[str] = []
    deadline = time.monotonic() + 5
    while True:
        st = (await _get(s, pid, jid))["state"]
        if not states or states[-1] != st:
            states.append(st)
        if st in TERMINAL:
            return states
        assert time.monotonic() < deadline, states
        await asyncio.sleep(0.005)


async def test_complete(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    job = await _submit(emu_http, pid, "ok")
    assert job["state"] == "pending"
    assert job["spec"]["image"] == "ubuntu:22.04"
    assert job["spec"]["clusterId"] == emulator.cluster_id
    assert job["startedAt"] is None and job["stoppedAt"] is None
    states = await _states_until_terminal(emu_http, pid, job["id"])
    assert states == ["pending", "creating", "running", "complete", "completed"]
    final = await _get(emu_http, pid, job["id"])
    assert final["startedAt"] and final["stoppedAt"]
    assert emulator.counters.get("creates:job:ok") == 1


async def test_fail_by_env_and_by_config(
    emulator: Emulator, emu_http: aiohttp.ClientSession
) -> None:
    pid = emulator.teamspace_id
    job = await _submit(emu_http, pid, "bad", env=[{"name": "EMULATOR_OUTCOME", "value": "fail"}])
    states = await _states_until_terminal(emu_http, pid, job["id"])
    assert states[-2:] == ["fail", "failed"]
    emulator.config.timings.job_outcome = "fail"
    job = await _submit(emu_http, pid, "bad-too")
    assert (await _states_until_terminal(emu_http, pid, job["id"]))[-1] == "failed"


async def test_stop(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    job = await _submit(
        emu_http, pid, "long", env=[{"name": "EMULATOR_RUNNING_SECONDS", "value": "60"}]
    )
    async with emu_http.put(f"/v1/projects/{pid}/jobs/{job['id']}", json={"state": "stop"}) as r:
        assert r.status == 200
        assert (await r.json())["state"] == "stopping"
    assert (await _states_until_terminal(emu_http, pid, job["id"]))[-1] == "stopped"
    # stopping a terminal job changes nothing
    async with emu_http.put(f"/v1/projects/{pid}/jobs/{job['id']}", json={"state": "stop"}) as r:
        assert (await r.json())["state"] == "stopped"
    async with emu_http.put(f"/v1/projects/{pid}/jobs/{job['id']}", json={"state": "explode"}) as r:
        assert r.status == 400


async def test_find_rename_delete(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    job = await _submit(emu_http, pid, "named")
    async with emu_http.get(f"/v1/projects/{pid}/jobs/find", params={"name": "named"}) as r:
        assert (await r.json())["id"] == job["id"]
    async with emu_http.get(f"/v1/projects/{pid}/jobs/find", params={"name": "absent"}) as r:
        assert r.status == 404
        assert (await r.json())["code"] == 5
    async with emu_http.put(f"/v1/projects/{pid}/jobs/{job['id']}", json={"name": "renamed"}) as r:
        assert (await r.json())["name"] == "renamed"
    async with emu_http.get(f"/v1/projects/{pid}/jobs/find", params={"name": "renamed"}) as r:
        assert r.status == 200
    async with emu_http.get(f"/v1/projects/{pid}/jobs/find", params={"name": "named"}) as r:
        assert r.status == 404
    # duplicate names are de-duplicated by the server
    dup = await _submit(emu_http, pid, "renamed")
    assert dup["name"] == "renamed-2"
    async with emu_http.delete(
        f"/v1/projects/{pid}/jobs/{job['id']}", params={"cloudspaceId": ""}, json={}
    ) as r:
        assert r.status == 200
    async with emu_http.get(f"/v1/projects/{pid}/jobs/{job['id']}") as r:
        assert r.status == 404
    async with emu_http.get(f"/v1/projects/{pid}/multi-machine-jobs") as r:
        assert (await r.json()) == {"multiMachineJobs": []}
    async with emu_http.get(f"/v1/projects/{pid}/multi-machine-jobs/renamed/getbyname") as r:
        assert r.status == 404


async def test_validation(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    url = f"/v1/projects/{pid}/jobs"
    async with emu_http.post(
        url, json={"name": "x", "spec": _spec(instanceName="warp-drive")}
    ) as r:
        assert r.status == 400
        msg = (await r.json())["message"]
        assert "spec.instanceName" in msg and "cpu-2" in msg
    async with emu_http.post(
        url, json={"name": "x", "spec": _spec(image="", cloudspaceId="")}
    ) as r:
        assert r.status == 400
    async with emu_http.post(
        url, json={"name": "x", "spec": _spec(image="", cloudspaceId="nope")}
    ) as r:
        assert r.status == 404
    async with emu_http.post(url, json={"spec": _spec()}) as r:
        assert r.status == 400


async def test_studio_job(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    async with emu_http.post(f"/v1/projects/{pid}/cloudspaces", json={"name": "js"}) as r:
        sid = (await r.json())["id"]
    job = await _submit(emu_http, pid, "from-studio", image="", cloudspaceId=sid, entrypoint=None)
    assert job["spec"]["cloudspaceId"] == sid
    async with emu_http.get(f"/v1/projects/{pid}/jobs", params={"cloudspaceId": sid}) as r:
        assert [j["id"] for j in (await r.json())["jobs"]] == [job["id"]]


async def test_list_pagination_and_filters(
    emulator: Emulator, emu_http: aiohttp.ClientSession
) -> None:
    pid = emulator.teamspace_id
    emulator.config.timings.job_pending = 60  # they all stay pending, however slow the machine
    ids = [(await _submit(emu_http, pid, f"j{i}"))["id"] for i in range(12)]
    seen: list[str] = []
    token = ""
    while True:
        params: dict[str, str] = {"limit": "5", "standalone": "True"}
        if token:
            params["pageToken"] = token
        async with emu_http.get(f"/v1/projects/{pid}/jobs", params=params) as r:
            body = await r.json()
        assert len(body["jobs"]) <= 5
        assert body["previousPageToken"] == ""
        seen += [j["id"] for j in body["jobs"]]
        token = body["nextPageToken"]
        if not token:
            break
    assert seen == ids
    async with emu_http.get(f"/v1/projects/{pid}/jobs", params={"limit": "x"}) as r:
        assert r.status == 400
    async with emu_http.get(f"/v1/projects/{pid}/jobs", params={"state": "pending"}) as r:
        assert len((await r.json())["jobs"]) == 12
    async with emu_http.get(f"/v1/projects/{pid}/jobs", params={"multiMachineJobId": "m"}) as r:
        assert (await r.json())["jobs"] == []


async def test_tags(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    async with emu_http.post(
        f"/v1/projects/{pid}/jobs", json={"name": "t", "tags": ["Nightly Run"], "spec": _spec()}
    ) as r:
        job = await r.json()
    assert [t["name"] for t in job["tags"]] == ["Nightly Run"]
    async with emu_http.get(f"/v1/projects/{pid}/workload-tags") as r:
        tags = (await r.json())["tags"]
    tag_id = tags[0]["id"]
    await _submit(emu_http, pid, "untagged")
    async with emu_http.get(
        f"/v1/projects/{pid}/jobs", params=[("tagIds", tag_id), ("tagIds", "zzz")]
    ) as r:
        assert [j["name"] for j in (await r.json())["jobs"]] == ["t"]


async def test_logs(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    job = await _submit(emu_http, pid, "logged")
    await _states_until_terminal(emu_http, pid, job["id"])
    lines: list[dict[str, Any]] = []
    token = ""
    while True:
        params = {"jobIds": job["id"], "pageSize": "7"}
        if token:
            params["pageToken"] = token
        async with emu_http.get(f"/v1/projects/{pid}/page-logs", params=params) as r:
            body = await r.json()
        lines += body["entries"]
        token = body["nextPageToken"]
        if not token:
            break
    n = emulator.config.timings.log_lines
    assert len(lines) == n + 3
    assert lines[0]["message"] == "+ lightning"
    assert lines[-1]["message"] == "Job logged finished successfully"
    assert [e["line"] for e in lines] == [str(i) for i in range(1, n + 4)]
    assert all(e["resourceId"] == job["id"] and e["timestamp"].endswith("Z") for e in lines)
    # deterministic: the same messages again
    async with emu_http.get(f"/v1/projects/{pid}/page-logs", params={"jobIds": job["id"]}) as r:
        assert [e["message"] for e in (await r.json())["entries"]] == [e["message"] for e in lines]
    async with emu_http.get(f"/v1/projects/{pid}/page-logs") as r:
        assert r.status == 400


async def test_many_jobs_are_cheap(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    sem = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with sem:
            await _submit(emu_http, pid, f"bulk-{i}")

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(5000)))
    assert time.perf_counter() - t < 60
    count = 0
    token = ""
    while True:
        params = {"limit": "1000"}
        if token:
            params["pageToken"] = token
        async with emu_http.get(f"/v1/projects/{pid}/jobs", params=params) as r:
            body = await r.json()
        count += len(body["jobs"])
        token = body["nextPageToken"]
        if not token:
            break
    assert count == 5000
