"""Clusters, their accelerators and the studio environment templates, plus the SDK telemetry sink."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from ._call import Call, RouteTable
from ._errors import ApiError
from ._machines import MACHINES
from ._validation import filled

if TYPE_CHECKING:
    from ._state import Cluster, State, User

__all__ = ["routes"]

routes = RouteTable()


# -- clusters ------------------------------------------------------------------------------


def cluster_json(state: State, c: Cluster) -> dict[str, Any]:
    return filled(
        "V1ExternalCluster",
        {
            "id": c.id,
            "name": c.name,
            "createdAt": state.iso(c.created),
            "protected": False,
            "spec": filled(
                "V1ExternalClusterSpec",
                {
                    "clusterType": "CLUSTER_TYPE_GLOBAL",
                    "driver": "AWS",
                    "awsV1": {"region": c.region},
                    "availableAccelerators": [m.slug for m in MACHINES],
                    "userId": "",
                },
            ),
            "status": {"phase": "CLUSTER_STATE_RUNNING"},
        },
    )


def _accessible_clusters(state: State, user: User, project_id: str) -> list[Cluster]:
    if project_id:
        p = state.project_for(project_id, user)
        return [state.clusters[c] for c in p.cluster_ids]
    return list(state.clusters.values())


@routes.route("GET", "/v1/projects/{projectId}/clusters")
async def list_project_clusters(call: Call) -> Any:
    st = call.state
    return {
        "clusters": [
            cluster_json(st, c)
            for c in _accessible_clusters(st, call.user, call.params["projectId"])
        ]
    }


@routes.route("GET", "/v1/core/clusters")
async def list_clusters(call: Call) -> Any:
    st = call.state
    clusters = _accessible_clusters(st, call.user, call.q("projectId"))
    return {
        "clusters": [cluster_json(st, c) for c in clusters],
        "defaultCluster": clusters[0].id if clusters else "",
    }


@routes.route("GET", "/v1/core/clusters/{id}")
async def get_cluster(call: Call) -> Any:
    st = call.state
    c = st.clusters.get(call.params["id"])
    if c is None:
        raise ApiError(404, f"cluster {call.params['id']} not found")
    return cluster_json(st, c)


@routes.route("GET", "/v1/projects/{projectId}/projectclustersbindings")
async def list_cluster_bindings(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    return {
        "clusters": [
            filled(
                "V1ProjectClusterBinding",
                {
                    "clusterId": c,
                    "clusterName": st.clusters[c].name,
                    "clusterRegion": st.clusters[c].region,
                    "projectId": p.id,
                    "createdAt": st.iso(st.clusters[c].created),
                    "updatedAt": st.iso(st.clusters[c].created),
                    "isClusterHealthy": True,
                },
            )
            for c in p.cluster_ids
        ]
    }


@functools.cache
def _accelerators(cluster_id: str) -> list[dict[str, Any]]:  # read-only once built
    return [m.accelerator(cluster_id) for m in MACHINES]


@routes.route("GET", "/v1/core/accelerators")
async def list_default_accelerators(call: Call) -> Any:
    st = call.state
    provider = call.q("cloudProvider").upper()
    if provider and provider not in ("AWS", "CLOUD_PROVIDER_AWS", "CLOUD_PROVIDER_UNSPECIFIED"):
        return {"accelerator": []}
    return {"accelerator": _accelerators(st.cluster.id)}


@routes.route("GET", "/v1/core/clusters/{id}/accelerators")
async def list_cluster_accelerators(call: Call) -> Any:
    st = call.state
    cid = call.params["id"]
    if cid not in st.clusters:
        raise ApiError(404, f"cluster {cid} not found")
    return {"accelerator": _accelerators(cid)}


# -- studio environment templates, telemetry -------------------------------------------------

_TEMPLATE_IDS = ("default", "pytorch", "tensorflow")


def _template(st: State, tid: str) -> dict[str, Any]:
    names = {"default": "Default", "pytorch": "PyTorch", "tensorflow": "TensorFlow"}
    return filled(
        "V1CloudSpaceEnvironmentTemplate",
        {
            "id": f"tpl-{tid}",
            "name": names[tid],
            "managedId": tid,
            "managed": True,
            "disabled": False,
            "description": f"{names[tid]} environment",
            "icon": "",
            "orgId": "",
            "userId": "",
            "createdAt": st.iso(st.cluster.created),
            "updatedAt": st.iso(st.cluster.created),
            "config": None,
        },
    )


@routes.route("GET", "/v1/cloudspaces/environment-templates/managed")
async def list_managed_templates(call: Call) -> Any:
    return {"templates": [_template(call.state, t) for t in _TEMPLATE_IDS]}


@routes.route("GET", "/v1/cloudspaces/environment-templates")
async def list_templates(call: Call) -> Any:
    return {"templates": []}


@routes.route("GET", "/v1/cloudspaces/environment-templates/{id}")
async def get_template(call: Call) -> Any:
    for t in _TEMPLATE_IDS:
        if call.params["id"] in (t, f"tpl-{t}"):
            return _template(call.state, t)
    raise ApiError(404, f"environment template {call.params['id']} not found")


@routes.route("POST", "/v1/sdk-command-history", body="V1CreateSDKCommandHistoryRequest")
async def sdk_command_history(call: Call) -> Any:
    call.state.counters.incr("sdk_command_history")
    return {}
