"""Every emulated operation's response decodes strictly into the spec's response model,
and carries every field of it (zero values included), as grpc-gateway emits them."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgspec
import pytest

from aiolightning import models
from aiolightning.api._operations import OPERATIONS
from aiolightning.emulator import Emulator
from aiolightning.emulator._app import EMULATED_ROUTES
from aiolightning.emulator._router import Router, split_path

pytestmark = pytest.mark.anyio

_OPS = {(o.method.upper(), o.path): o for o in OPERATIONS}


_ROUTER: Router[str] = Router()
for _r in EMULATED_ROUTES:
    _ROUTER.add(_r.method, _r.template, _r.template)


def _template_for(method: str, path: str) -> str:
    m = _ROUTER.match(method, split_path(path))
    assert m, f"no emulated route for {method} {path}"
    return m.template


class Checker:
    def __init__(self, s: aiohttp.ClientSession) -> None:
        self.s = s
        self.checked: set[tuple[str, str]] = set()

    async def __call__(self, method: str, path: str, **kw: Any) -> Any:
        async with self.s.request(method, path, **kw) as r:
            raw = await r.read()
            assert r.status == 200, (method, path, r.status, raw[:300])
        template = _template_for(method, path.split("?")[0])
        op = _OPS[(method, template)]
        model = getattr(models, op.response_model)
        if op.ndjson_stream:
            for line in raw.splitlines():
                msgspec.json.decode(line, type=model, strict=True)
            self.checked.add((method, template))
            return raw
        msgspec.json.decode(raw, type=model, strict=True)  # types match the spec
        data = msgspec.json.decode(raw)
        wire = set(getattr(model, "__struct_encode_fields__", ()))
        if wire and data:  # every declared field emitted (empty responses stay `{}`)
            missing = wire - set(data)
            assert not missing, f"{op.operation_id}: missing {sorted(missing)}"
        self.checked.add((method, template))
        return data


async def test_response_shapes(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    c = Checker(emu_http)
    pid = emulator.teamspace_id
    await c("GET", "/v1/auth/whoami")
    await c("GET", "/v1/auth/user")
    await c(
        "POST", "/v1/auth/login", json={"username": emulator.username, "apiKey": emulator.api_key}
    )
    await c("POST", "/v1/auth/token-login", json={"tokenKey": emulator.api_key})
    await c("POST", "/v1/auth/refresh", json={"duration": "900"})
    await c("GET", "/v1/users/search", params={"query": emulator.username})
    await c("GET", "/v1/orgs")
    await c("GET", "/v1/orgs/", params={"name": emulator.org_name})
    await c("GET", "/v1/memberships", params={"filterByUserId": "True"})
    await c("GET", f"/v1/projects/{pid}")
    await c("POST", "/v1/projects", json={"name": "new-ts", "displayName": "new-ts"})
    await c("GET", f"/v1/projects/{pid}/memberships")
    await c("GET", f"/v1/projects/{pid}/clusters")
    await c("GET", "/v1/core/clusters", params={"projectId": pid})
    await c("GET", f"/v1/core/clusters/{emulator.cluster_id}")
    await c("GET", f"/v1/projects/{pid}/projectclustersbindings")
    await c("GET", "/v1/core/accelerators", params={"cloudProvider": "AWS", "projectId": pid})
    await c("GET", f"/v1/core/clusters/{emulator.cluster_id}/accelerators")
    await c("GET", "/v1/cloudspaces/environment-templates/managed")
    await c("GET", "/v1/cloudspaces/environment-templates")
    await c("GET", "/v1/cloudspaces/environment-templates/tpl-default")
    await c("POST", "/v1/sdk-command-history", json={"command": "x"})

    cs = await c("POST", f"/v1/projects/{pid}/cloudspaces", json={"name": "shape"})
    sid = cs["id"]
    base = f"/v1/projects/{pid}/cloudspaces/{sid}"
    await c("GET", base)
    await c("GET", f"/v1/projects/{pid}/cloudspaces", params={"name": "shape"})
    await c("PUT", base, json={"env": [{"name": "A", "value": "1"}]})
    await c("POST", base + "/runs", json={"clusterId": emulator.cluster_id, "localSource": True})
    await c("GET", base + "/runs")
    await c("GET", base + "/codestatus")
    await c("POST", base + "/start", json={"computeConfig": {"name": "cpu-4", "spot": False}})
    status = await c("GET", base + "/codestatus")
    assert status["inUse"]["startupStatus"]["topUpRestoreFinished"] is False
    await asyncio.sleep(0.25)
    status = await c("GET", base + "/codestatus")
    assert status["inUse"]["startupStatus"]["topUpRestoreFinished"] is True
    await c("GET", base + "/codeconfig")
    await c("PUT", base + "/sleepconfig", json={"disableAutoShutdown": True})
    await c("POST", base + "/keep-alive", json={})
    ex = await c("POST", base + "/execute", json={"command": "echo hi", "detached": True})
    await c("GET", f"{base}/execute/{ex['sessionName']}/stream")
    await c("PUT", base + "/codeconfig", json={"computeConfig": {"name": "lit-t4-1"}})
    await c("POST", base + "/switch-cancel", json={})
    await c("POST", base + "/stop", json={})

    job = await c(
        "POST",
        f"/v1/projects/{pid}/jobs",
        json={
            "name": "shape-job",
            "tags": ["t"],
            "spec": {"image": "x", "instanceName": "cpu-2", "env": []},
        },
    )
    jbase = f"/v1/projects/{pid}/jobs/{job['id']}"
    await c("GET", jbase)
    await c("GET", f"/v1/projects/{pid}/jobs/find", params={"name": "shape-job"})
    await c("GET", f"/v1/projects/{pid}/jobs", params={"standalone": "True"})
    await c("GET", f"/v1/projects/{pid}/workload-tags")
    await c("PUT", f"/v1/projects/{pid}/workloads/job/{job['id']}/tags", json={"tags": ["u"]})
    mmt = await c(
        "POST",
        f"/v1/projects/{pid}/multi-machine-jobs",
        json={"name": "shape-mmt", "machines": 2, "spec": {"image": "x", "instanceName": "cpu-2"}},
    )
    mbase = f"/v1/projects/{pid}/multi-machine-jobs/{mmt['id']}"
    await c("GET", f"/v1/projects/{pid}/multi-machine-jobs")
    await c("GET", f"/v1/projects/{pid}/multi-machine-jobs/shape-mmt/getbyname")
    await c("GET", mbase)
    await c("GET", f"/v1/projects/{pid}/jobs", params={"multiMachineJobId": mmt["id"]})
    await asyncio.sleep(0.4)
    await c("GET", f"/v1/projects/{pid}/page-logs", params={"jobIds": job["id"]})
    await c("PUT", jbase, json={"name": "shape-job-2"})
    await c("PUT", jbase, json={"state": "stop"})
    await c("GET", f"/v1/projects/{pid}/page-logs", params={"mmtId": mmt["id"]})
    await c("PUT", mbase, json={"desiredState": "MultiMachineJob_STATE_STOP"})
    await c("DELETE", mbase, json={})
    await c("DELETE", jbase, params={"cloudspaceId": ""}, json={})
    await c("DELETE", base, json={})

    dep = await c(
        "POST",
        f"/v1/projects/{pid}/deployments",
        json={
            "name": "shape-dep",
            "replicas": 1,
            "autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 1},
            "endpoint": {"ports": ["8080"], "auth": {"enabled": True, "userApiKey": True}},
            "spec": {"image": "x", "instanceName": "cpu-2"},
        },
    )
    dbase = f"/v1/projects/{pid}/deployments/{dep['id']}"
    await c("GET", dbase)
    await c("GET", dbase + "/status")
    await c("GET", f"/v1/projects/{pid}/deployments/shape-dep/getbyname")
    await c("GET", f"/v1/projects/{pid}/deployments")
    await c("PUT", dbase, json={**dep, "replicas": 2})
    await c("DELETE", dbase, json={})

    # the rest answer errors by design (404s), or are the synchronous execute variant
    not_200 = {
        ("POST", "/v1/projects/{projectId}/cloudspaces/{id}/switch-confirm"),
    }
    emulated = {(r.method, r.template) for r in EMULATED_ROUTES}
    assert emulated - c.checked - not_200 == set()


# handlers that check the body against the model themselves, after reading the int64
# autoscaling bounds the SDK sends as JSON numbers as strings (wire-flows §5.10)
_OWN_BODY_CHECK = {"jobs_service_create_deployment", "jobs_service_update_deployment"}


def test_emulated_routes_are_spec_operations() -> None:
    for r in EMULATED_ROUTES:
        op = _OPS.get((r.method, r.template))
        assert op is not None, f"{r.method} {r.template} is not in the spec"
        if op.operation_id in _OWN_BODY_CHECK:
            continue
        assert r.body_model == (op.body_model or None), op.operation_id
