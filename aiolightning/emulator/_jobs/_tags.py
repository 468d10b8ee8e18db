"""Workload tags: a job's tags found or created by name, their JSON, and the tag routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._call import Call, RouteTable
from .._errors import ApiError
from .._validation import filled

if TYPE_CHECKING:
    from .._state import Project, State

__all__ = ["routes", "tag_ids", "tag_json"]

routes = RouteTable()


def tag_json(st: State, p: Project, tag_id: str) -> dict[str, Any]:
    t = p.tags[tag_id]
    return filled("V1WorkloadTag", dict(t))


def tag_ids(st: State, p: Project, names: list[Any], field_name: str) -> list[str]:
    out = []
    for n in names:
        if not isinstance(n, str) or not n.strip():
            raise ApiError(400, f"invalid {field_name}: tag names must be non-empty strings")
        key = " ".join(n.lower().split())
        for tid, t in p.tags.items():
            if " ".join(str(t["name"]).lower().split()) == key:
                out.append(tid)
                break
        else:
            tid = st.ids.new()
            p.tags[tid] = {
                "id": tid,
                "name": n,
                "projectId": p.id,
                "createdAt": st.iso(st.clock.now()),
                "createdBy": "",
                "usageCount": "0",
            }
            out.append(tid)
    return out


@routes.route("GET", "/v1/projects/{projectId}/workload-tags")
async def list_workload_tags(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    return {"tags": [tag_json(st, p, t) for t in p.tags]}


@routes.route(
    "PUT",
    "/v1/projects/{projectId}/workloads/{workloadType}/{workloadId}/tags",
    body="JobsServiceSetWorkloadTagsBody",
)
async def set_workload_tags(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    if call.params["workloadType"] != "job":
        raise ApiError(404, f"{call.params['workloadType']} {call.params['workloadId']} not found")
    j = st.jobs.get(p, call.params["workloadId"])
    tags = call.body.get("tags") or []
    if not isinstance(tags, list):
        raise ApiError(400, "invalid tags: expected a list")
    j.tags = tag_ids(st, p, tags, "tags")
    return {"tags": [tag_json(st, p, t) for t in j.tags]}
