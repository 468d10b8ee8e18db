"""The cloudspace routes: create, get, list, update and delete studios, and their runs."""

from __future__ import annotations

import re
from typing import Any

from .._call import Call, RouteTable
from .._errors import ApiError
from .._paging import page
from .._validation import filled
from ._lookup import bool_or_400, machine_or_400, studio_for
from ._model import Studio
from ._shapes import studio_json

#: a studio name is one URL segment (the client checks the same rule: STUDIO_NAME_RULE)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

__all__ = ["routes"]

routes = RouteTable()


_UPDATABLE = (
    "codeUrl",
    "description",
    "featured",
    "hideFiles",
    "isCloudspacePrivate",
    "isCodePrivate",
    "isFavorite",
    "isPublished",
    "license",
    "licenseUrl",
    "message",
    "multiUserEdit",
    "operatingCost",
    "paperAuthors",
    "paperOrg",
    "paperOrgAvatarUrl",
    "paperUrl",
    "switchToDefaultMachineOnIdle",
    "tags",
    "thumbnailFileType",
    "userMetadata",
    "dataConnectionMounts",
)


@routes.route(
    "POST", "/v1/projects/{projectId}/cloudspaces", body="CloudSpaceServiceCreateCloudSpaceBody"
)
async def create_studio(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    b = call.body
    name = b.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "invalid name: a non-empty string is required")
    if not _NAME.fullmatch(name):
        raise ApiError(400, f"invalid name {name!r}: 1-64 letters, digits, '-', '_' or '.'")
    st.counters.incr(f"creates:studio:{name}")
    for s in st.studios.by_id.values():
        if s.project_id == p.id and s.name == name:
            raise ApiError(409, f"a cloudspace named {name!r} already exists in this teamspace")
    cluster_id = str(b.get("clusterId") or "") or (p.cluster_ids[0] if p.cluster_ids else "")
    if cluster_id not in p.cluster_ids:
        raise ApiError(400, f"invalid clusterId: {cluster_id!r} is not bound to this teamspace")
    machine = "cpu-4"
    if b.get("computeName"):
        machine = machine_or_400(b["computeName"], "computeName")
    now = st.clock.now()
    s = Studio(
        id=st.ids.new(),
        seq=st.studios.new_seq(),
        name=name,
        display_name=str(b.get("displayName") or name),
        project_id=p.id,
        cluster_id=cluster_id,
        user_id=call.user.id,
        created=now,
        updated=now,
        template_id=str(b.get("cloudSpaceEnvironmentTemplateId") or ""),
        machine=machine,
        spot=bool_or_400(b.get("spot"), "spot"),
    )
    st.studios.by_id[s.id] = s
    st.counters.effect("studio_created", name)
    return studio_json(st, s, now)


@routes.route("GET", "/v1/projects/{projectId}/cloudspaces/{id}")
async def get_studio(call: Call) -> Any:
    _, s = studio_for(call)
    return studio_json(call.state, s, call.state.clock.now())


@routes.route("GET", "/v1/projects/{projectId}/cloudspaces")
async def list_studios(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    name = call.q("name")
    user_id = call.q("userId")
    cluster_id = call.q("clusterId")
    ids = set(call.qlist("ids"))
    active_only = call.qbool("activeOnly")
    now = st.clock.now()

    def keep(s: Studio) -> bool:
        if s.project_id != p.id:
            return False
        if name and s.name != name:
            return False
        if user_id and s.user_id != user_id:
            return False
        if cluster_id and s.cluster_id != cluster_id:
            return False
        if ids and s.id not in ids:
            return False
        if active_only:
            st.studios.settle(s, now)
            if s.instance is None:
                return False
        return True

    items, nxt = page(
        (s for s in st.studios.by_id.values() if keep(s)),
        lambda s: s.seq,
        call.q("pageToken"),
        call.qint("limit"),
        st.config.page_size,
    )
    return {
        "cloudspaces": [studio_json(st, s, now) for s in items],
        "nextPageToken": nxt,
        "previousPageToken": "",
    }


@routes.route(
    "PUT", "/v1/projects/{projectId}/cloudspaces/{id}", body="CloudSpaceServiceUpdateCloudSpaceBody"
)
async def update_studio(call: Call) -> Any:
    st = call.state
    _, s = studio_for(call)
    b = call.body
    if "env" in b and b["env"] is not None:
        env = b["env"]
        if not isinstance(env, list):
            raise ApiError(400, "invalid env: expected a list")
        s.env = [{"name": str(e.get("name", "")), "value": str(e.get("value", ""))} for e in env]
    if b.get("displayName"):
        s.display_name = str(b["displayName"])
    for k in _UPDATABLE:
        if k in b and b[k] is not None:
            s.extra[k] = b[k]
    s.updated = st.clock.now()
    return studio_json(st, s, s.updated)


@routes.route("DELETE", "/v1/projects/{projectId}/cloudspaces/{id}")
async def delete_studio(call: Call) -> Any:
    _, s = studio_for(call)
    del call.state.studios.by_id[s.id]
    call.state.counters.incr("deletes:studio")
    call.state.counters.effect("studio_deleted", s.id)
    return {}


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{cloudspaceId}/runs",
    body="CloudSpaceServiceCreateLightningRunBody",
)
async def create_run(call: Call) -> Any:
    st = call.state
    _, s = studio_for(call, "cloudspaceId")
    now = st.clock.now()
    run = filled(
        "V1LightningRun",
        {
            "id": st.ids.new(),
            "cloudSpaceId": s.id,
            "projectId": s.project_id,
            "clusterId": s.cluster_id,
            "createdAt": st.iso(now),
            "updatedAt": st.iso(now),
            "localSource": bool(call.body.get("localSource", False)),
        },
    )
    s.runs.append(run)
    st.counters.incr("runs:created")
    return run


@routes.route("GET", "/v1/projects/{projectId}/cloudspaces/{cloudspaceId}/runs")
async def list_runs(call: Call) -> Any:
    _, s = studio_for(call, "cloudspaceId")
    return {"runs": list(s.runs)}
