"""The JSON of a job at a moment: its state, start/stop times, cost and filled-in spec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from .._machines import find_machine
from .._validation import filled
from ._model import TERMINAL, Job
from ._tags import tag_json

if TYPE_CHECKING:
    from .._state import Project, State

__all__ = ["job_json", "job_listed"]


def job_listed(st: State, p: Project, j: Job, now: float) -> Any:
    """The job as a list page carries it; a finished job's JSON no longer changes, so it is
    encoded once (a walk of 100,000 mostly finished jobs re-renders only the others)."""
    state = j.state_at(now)
    if state not in TERMINAL:
        return job_json(st, p, j, now)
    key = (state, j.updated, j.name, tuple(j.tags))
    cached = j.json_cache
    if cached is None or cached[0] != key:
        cached = j.json_cache = (key, msgspec.json.encode(job_json(st, p, j, now)))
    return msgspec.Raw(cached[1])


def job_json(st: State, p: Project, j: Job, now: float) -> dict[str, Any]:
    state = j.state_at(now)
    started = (
        j.t_running
        if now >= j.t_running and (j.stop_at is None or j.stop_at >= j.t_running)
        else None
    )
    ended = j.ended_at(now)
    running_secs = 0.0
    if started is not None:
        running_secs = max(0.0, (ended if ended is not None else now) - started)
    m = find_machine(str(j.spec.get("instanceName") or ""))
    cost = round(running_secs / 3600 * (m.cost if m else 0.0), 6)
    spec = filled(
        "V1JobSpec",
        {
            "artifactsDestination": "",
            "artifactsSource": "",
            "cloudspaceId": "",
            "clusterId": "",
            "command": "",
            "currentRunAttempt": 1,
            "dataPaths": [],
            "entrypoint": "",
            "env": [],
            "image": "",
            "imageClusterCredentials": False,
            "imageSecretRef": "",
            "instanceName": "",
            "instanceType": m.instance_id if m else "",
            "maxRunAttempts": 1,
            "pathMappings": [],
            "placementGroupId": "",
            "quantity": 1,
            "rank": 0,
            "regions": [],
            "requestedRunDurationSeconds": "0",
            "reserveMachinesTimeoutMinutes": 0,
            "runId": "",
            "spot": False,
            "volumes": [],
            **j.spec,
        },
    )
    data: dict[str, Any] = {
        "id": j.id,
        "name": j.name,
        "projectId": j.project_id,
        "userId": j.user_id,
        "state": state,
        "spec": spec,
        "createdAt": st.iso(j.created),
        "updatedAt": st.iso(max(j.updated, j.created)),
        "startedAt": st.iso(started),
        "stoppedAt": st.iso(ended),
        "readyAt": st.iso(started),
        "deletedAt": None,
        "totalCost": cost,
        "publicIpAddress": "",
        "privateIpAddress": f"10.1.0.{j.seq % 250 + 1}" if state == "running" else "",
        "multiMachineJobId": "",
        "deploymentId": "",
        "pipelineId": "",
        "releaseId": "",
        "message": "",
        "serverError": "",
        "tags": [tag_json(st, p, t) for t in j.tags if t in p.tags],
        "urls": [],
        "restartCount": 0,
        "restartTimings": [],
        "timings": {},
        "isHealthy": state == "running",
        "totalSizeBytes": "0",
    }
    data.update(j.extra)
    return filled("V1Job", data)
