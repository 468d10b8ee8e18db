"""The JSON of a deployment at a moment: wanted replicas, replica counts, endpoint URLs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._machines import find_machine
from .._validation import filled
from ._model import Deployment

if TYPE_CHECKING:
    from .._state import State

__all__ = ["deployment_json", "endpoint_url"]


def endpoint_url(st: State, d: Deployment) -> str:
    """Where the deployment's endpoint answers: a path on the emulator's own listener."""
    return f"{st.base_url}/_endpoints/{d.id}"


def deployment_json(st: State, d: Deployment, now: float) -> dict[str, Any]:
    ready, pending, deleting = d.counts(now)
    m = find_machine(str(d.spec.get("instanceName") or ""))
    urls = [endpoint_url(st, d)]
    spec = filled(
        "V1JobSpec",
        {
            "cloudspaceId": d.cloudspace_id,
            "clusterId": "",
            "command": "",
            "entrypoint": "",
            "env": [],
            "image": "",
            "instanceName": "",
            "instanceType": m.instance_id if m else "",
            "pathMappings": [],
            "quantity": 1,
            "spot": False,
            **d.spec,
        },
    )
    autoscaling = filled("V1AutoscalingSpec", dict(d.autoscaling))
    for k in ("minReplicas", "maxReplicas"):
        autoscaling[k] = str(int(autoscaling.get(k) or 0))  # int64: a JSON string
    endpoint = filled("V1Endpoint", {**d.endpoint, "urls": urls})
    endpoint["auth"] = filled("V1EndpointAuth", endpoint.get("auth") or {"enabled": False})
    data: dict[str, Any] = {
        "id": d.id,
        "name": d.name,
        "projectId": d.project_id,
        "userId": d.user_id,
        "cloudspaceId": d.cloudspace_id,
        "createdAt": st.iso(d.created),
        "updatedAt": st.iso(max(d.updated, d.created)),
        "replicas": d.wanted(),
        "autoscaling": autoscaling,
        "endpoint": endpoint,
        "spec": spec,
        "strategy": d.strategy,
        "releaseId": d.release_id,
        "currentState": d.current_state(now),
        "desiredState": d.desired_state,
        "status": filled(
            "V1DeploymentStatus",
            {
                "readyReplicas": ready,
                "pendingReplicas": pending,
                "failingReplicas": 0,
                "deletingReplicas": deleting,
                "queuedReplicas": 0,
                "urls": urls,
            },
        ),
        "totalCost": 0.0,
    }
    return filled("V1Deployment", data)
