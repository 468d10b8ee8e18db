"""Emulator: auth, error bodies, routing precedence, validation, 501 for non-emulated ops."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio


async def _error(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    body = await resp.json()
    assert set(body) == {"code", "message", "details"}
    assert body["details"] == []
    return body


async def test_basic_auth_whoami(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    async with emu_http.get("/v1/auth/whoami") as r:
        assert r.status == 200
        body = await r.json()
    assert body["userId"] == emulator.user_id
    assert body["username"] == emulator.username
    # every field present, zero values included
    assert body["orgId"] == "" and body["authType"] == "AUTH_TYPE_USER"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic " + "bm9wZTpub3Bl",  # nope:nope
        "Bearer not-a-token",
        "Bearer a.b.c",
        "Token xyz",
    ],
)
async def test_bad_credentials_401(emulator: Emulator, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    async with (
        aiohttp.ClientSession() as s,
        s.get(emulator.url + "/v1/auth/whoami", headers=headers) as r,
    ):
        assert r.status == 401
        assert r.reason == "Unauthorized"
        body = await _error(r)
    assert body["code"] == 16


async def test_login_bearer_token_and_expiry(emulator: Emulator) -> None:
    emulator.config.token_ttl = 0.5
    async with aiohttp.ClientSession(base_url=emulator.url) as s:
        async with s.post(
            "/v1/auth/login",
            json={"username": emulator.username, "apiKey": emulator.api_key, "duration": "3600"},
        ) as r:
            assert r.status == 200
            token = (await r.json())["token"]
        assert token.count(".") == 2  # a JWT
        bearer = {"Authorization": f"Bearer {token}"}
        async with s.get("/v1/auth/whoami", headers=bearer) as r:
            assert r.status == 200
            assert (await r.json())["userId"] == emulator.user_id
        async with s.post("/v1/auth/refresh", headers=bearer, json={"duration": "900"}) as r:
            assert r.status == 200
            assert (await r.json())["token"]
        await asyncio.sleep(0.6)
        async with s.get("/v1/auth/whoami", headers=bearer) as r:
            assert r.status == 401
            assert "expired" in (await _error(r))["message"]
        async with s.post(
            "/v1/auth/login", json={"username": emulator.username, "apiKey": "wrong"}
        ) as r:
            assert r.status == 401
        async with s.post("/v1/auth/token-login", json={"tokenKey": emulator.api_key}) as r:
            assert r.status == 200
            assert (await r.json())["token"]


async def test_bearer_api_key(emulator: Emulator) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            emulator.url + "/v1/auth/user", headers={"Authorization": f"Bearer {emulator.api_key}"}
        ) as r,
    ):
        assert r.status == 200
        assert (await r.json())["username"] == emulator.username


async def test_not_emulated_is_501(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    async with emu_http.get(f"/v1/projects/{emulator.teamspace_id}/secrets") as r:
        assert r.status == 501
        assert r.reason == "Not Implemented"
        body = await _error(r)
    assert body["code"] == 12
    assert "secret_service_list_secrets" in body["message"]
    assert emulator.counters.get("unimplemented") == 1


async def test_unknown_path_404_wrong_method_405(emu_http: aiohttp.ClientSession) -> None:
    async with emu_http.get("/v1/definitely/not/a/route") as r:
        assert r.status == 404
        assert (await _error(r))["code"] == 5
    async with emu_http.delete("/v1/auth/whoami") as r:
        assert r.status == 405
        assert "GET" in r.headers["Allow"]
        await _error(r)


async def test_missing_studio_404(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    async with emu_http.get(f"/v1/projects/{emulator.teamspace_id}/cloudspaces/nope") as r:
        assert r.status == 404
        assert r.reason == "Not Found"
        assert "nope" in (await _error(r))["message"]


async def test_project_membership(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    async with emu_http.get("/v1/projects/unknown-project/cloudspaces") as r:
        assert r.status == 404
    private = emulator.state.private.id  # another user's teamspace
    async with emu_http.get(f"/v1/projects/{private}/cloudspaces") as r:
        assert r.status == 403
        assert (await _error(r))["code"] == 7


async def test_routing_precedence(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    # literal `find` beats `{id}`: find answers 404 naming the job name
    async with emu_http.get(f"/v1/projects/{pid}/jobs/find", params={"name": "x"}) as r:
        assert r.status == 404
        assert "'x'" in (await r.json())["message"]
    async with emu_http.get(f"/v1/projects/{pid}/jobs/find-me") as r:
        assert r.status == 404
        assert "job find-me not found" in (await r.json())["message"]
    # `/v1/orgs/` with an empty id (org by name) vs `/v1/orgs` (list)
    async with emu_http.get("/v1/orgs/", params={"name": emulator.org_name}) as r:
        assert r.status == 200
        assert (await r.json())["name"] == emulator.org_name
    async with emu_http.get("/v1/orgs") as r:
        assert r.status == 200
        assert [o["name"] for o in (await r.json())["organizations"]] == [emulator.org_name]
    # `/v1/projects/temporary_storage` (literal, not emulated) vs `/v1/projects/{id}`
    async with emu_http.post("/v1/projects/temporary_storage", json={"filename": "x"}) as r:
        assert r.status == 501
        assert "temporary" in (await r.json())["message"]
    async with emu_http.get(f"/v1/projects/{pid}") as r:
        assert r.status == 200
    # managed templates (literal) vs template by id
    async with emu_http.get("/v1/cloudspaces/environment-templates/managed") as r:
        assert r.status == 200
        assert len((await r.json())["templates"]) >= 1
    # %2F stays inside one path segment
    async with emu_http.get(f"/v1/projects/{pid}/jobs/a%2Fb") as r:
        assert r.status == 404
        assert "job a/b not found" in (await r.json())["message"]


async def test_double_slash_base_url(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    # LIGHTNING_CLOUD_URL with a trailing slash makes the SDK send `//v1/...`
    async with emu_http.get(emulator.url + "//v1/auth/whoami") as r:
        assert r.status == 200


async def test_bad_body_names_field(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    async with emu_http.post(f"/v1/projects/{pid}/cloudspaces", json={"name": "s"}) as r:
        sid = (await r.json())["id"]
    url = f"/v1/projects/{pid}/cloudspaces/{sid}/start"
    async with emu_http.post(url, json={"computeConfig": {"name": 5}}) as r:
        assert r.status == 400
        assert r.reason == "Bad Request"
        body = await _error(r)
    assert body["code"] == 3
    assert "computeConfig.name" in body["message"]
    async with emu_http.post(url, json={"computeConfig": {"name": "gpu-9000"}}) as r:
        assert r.status == 400
        msg = (await r.json())["message"]
    assert "computeConfig.name" in msg and "gpu-9000" in msg
    assert "cpu-4" in msg and "lit-h100-8" in msg
    async with emu_http.post(
        url, data=b"{not json", headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 400
    async with emu_http.post(
        f"/v1/projects/{pid}/jobs", json={"name": "j", "spec": {"spot": "yes"}}
    ) as r:
        assert r.status == 400
        assert "$.spec.spot" in (await r.json())["message"]


async def test_snake_case_int64_and_bool_query(
    emulator: Emulator, emu_http: aiohttp.ClientSession
) -> None:
    pid = emulator.teamspace_id
    spec = {
        "image": "ubuntu",
        "command": "true",
        "instance_name": "cpu-2",  # snake_case key
        "requested_run_duration_seconds": 3600,  # int64 as a number
        "env": [],
    }
    async with emu_http.post(f"/v1/projects/{pid}/jobs", json={"name": "snake", "spec": spec}) as r:
        assert r.status == 200, await r.text()
        job = await r.json()
    assert job["spec"]["instanceName"] == "cpu-2"
    assert job["spec"]["requestedRunDurationSeconds"] == "3600"  # int64 out as a string
    for flag in ("True", "true", "TRUE"):
        async with emu_http.get(f"/v1/projects/{pid}/jobs", params={"standalone": flag}) as r:
            assert r.status == 200
            assert [j["name"] for j in (await r.json())["jobs"]] == ["snake"]
    async with emu_http.get(f"/v1/projects/{pid}/jobs", params={"standalone": "maybe"}) as r:
        assert r.status == 400


async def test_directory_lookups(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    pid = emulator.teamspace_id
    async with emu_http.get("/v1/memberships", params={"filterByUserId": "True"}) as r:
        names = {m["name"] for m in (await r.json())["memberships"]}
    assert emulator.teamspace_name in names
    async with emu_http.get("/v1/users/search", params={"query": emulator.username}) as r:
        assert (await r.json())["users"][0]["id"] == emulator.user_id
    async with emu_http.get("/v1/core/clusters", params={"projectId": pid}) as r:
        clusters = (await r.json())["clusters"]
    assert clusters[0]["id"] == emulator.cluster_id
    assert clusters[0]["spec"]["awsV1"] is not None
    assert clusters[0]["spec"]["clusterType"] == "CLUSTER_TYPE_GLOBAL"
    async with emu_http.get(f"/v1/projects/{pid}/projectclustersbindings") as r:
        assert (await r.json())["clusters"][0]["clusterId"] == emulator.cluster_id
    async with emu_http.get(
        "/v1/core/accelerators", params={"cloudProvider": "AWS", "projectId": pid}
    ) as r:
        slugs = {a["slug"] for a in (await r.json())["accelerator"]}
    for slug in (
        "cpu-2 cpu-4 cpu-8 lit-t4-1 lit-t4-2 lit-l4-1 lit-a100-1 lit-a100-8 "
        "lit-h100-1 lit-h100-8 lit-h200x-1 lit-b200x-8"
    ).split():
        assert slug in slugs
    async with emu_http.get(f"/v1/core/clusters/{emulator.cluster_id}/accelerators") as r:
        assert len((await r.json())["accelerator"]) == len(slugs)
    async with emu_http.post("/v1/sdk-command-history", json={"command": "x"}) as r:
        assert r.status == 200
        assert await r.json() == {}


async def test_deterministic_under_seed() -> None:
    async with Emulator(seed=7) as a, Emulator(seed=7) as b, Emulator(seed=8) as c:
        assert (a.user_id, a.api_key, a.teamspace_id) == (b.user_id, b.api_key, b.teamspace_id)
        assert a.api_key != c.api_key


async def test_router_tail_params() -> None:
    from aiolightning.emulator._router import Router, split_path

    r: Router[str] = Router()
    r.add("GET", "/v1/p/{pid}/blobs/{path:.*}", "blob")
    r.add("GET", "/v1/p/{pid}/blobs/complete", "literal")
    m = r.match("GET", split_path("/v1/p/x/blobs/a/b%2Fc/d.txt"))
    assert m and m.target == "blob" and m.params == {"pid": "x", "path": "a/b/c/d.txt"}
    m = r.match("GET", split_path("/v1/p/x/blobs/"))
    assert m and m.params["path"] == ""
    m = r.match("GET", split_path("/v1/p/x/blobs/complete"))
    assert m and m.target == "literal"
    assert r.match("PUT", split_path("/v1/p/x/blobs/a")) is False


async def test_wrong_method_on_storage_path_405(
    emulator: Emulator, emu_http: aiohttp.ClientSession
) -> None:
    async with emu_http.put(
        f"/v1/projects/{emulator.teamspace_id}/artifacts/blobs/a.txt", data=b"x"
    ) as r:
        assert r.status == 405
        assert "GET" in r.headers["Allow"]


async def test_client_is_wired_to_each_way_of_running() -> None:
    from aiolightning.emulator import EmulatorThread

    async with Emulator() as emu, emu.client() as c:
        me = await c.api.auth.whoami()
        assert me.user_id == emu.user_id
        assert c.default_teamspace == emu.teamspace_name
    with EmulatorThread() as thread_emu:
        async with thread_emu.client(teamspace="personal") as c:
            assert (await c.api.auth.whoami()).user_id == thread_emu.user_id
            assert c.default_teamspace == "personal"
