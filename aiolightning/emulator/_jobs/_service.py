"""The jobs service routes: submit, get, find by name, list, stop/rename, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._call import Call, RouteTable
from .._errors import ApiError
from .._machines import find_machine, valid_slugs
from .._paging import page
from ._model import TERMINAL, Job
from ._shapes import job_json
from ._tags import tag_ids

if TYPE_CHECKING:
    from .._state import Project

__all__ = ["routes"]

routes = RouteTable()


def _env_value(env: list[Any], key: str) -> str | None:
    for e in env:
        if isinstance(e, dict) and e.get("name") == key:
            return str(e.get("value", ""))
    return None


@routes.route("POST", "/v1/projects/{projectId}/jobs", body="JobsServiceCreateJobBody")
async def create_job(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    b = call.body
    name = b.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "invalid name: a non-empty string is required")
    spec = b.get("spec")
    if not isinstance(spec, dict):
        raise ApiError(400, "invalid spec: an object is required")
    st.counters.incr(f"creates:job:{name}")
    image = str(spec.get("image") or "")
    cloudspace_id = str(spec.get("cloudspaceId") or "")
    if bool(image) == bool(cloudspace_id):
        raise ApiError(
            400, "invalid spec: exactly one of spec.image and spec.cloudspaceId is required"
        )
    if cloudspace_id:
        st.studios.get(p, cloudspace_id)  # 404 if unknown
        if not spec.get("command"):
            raise ApiError(400, "invalid spec.command: a studio job needs a command")
    inst = spec.get("instanceName") or spec.get("instanceType") or ""
    if not inst:
        raise ApiError(400, "invalid spec.instanceName: a machine is required")
    if not isinstance(inst, str) or find_machine(inst) is None:
        raise ApiError(
            400,
            f"invalid spec.instanceName: unknown machine {inst!r}; valid slugs: {', '.join(valid_slugs())}",
        )
    cluster_id = str(spec.get("clusterId") or "") or (p.cluster_ids[0] if p.cluster_ids else "")
    if cluster_id not in p.cluster_ids:
        raise ApiError(
            400, f"invalid spec.clusterId: {cluster_id!r} is not bound to this teamspace"
        )
    env = spec.get("env") or []
    if not isinstance(env, list):
        raise ApiError(400, "invalid spec.env: expected a list")
    tmg = st.config.timings
    outcome = (_env_value(env, "EMULATOR_OUTCOME") or tmg.job_outcome).lower()
    if outcome in ("failed", "failure"):
        outcome = "fail"
    if outcome not in ("complete", "fail"):
        outcome = "complete"
    running = tmg.job_running
    override = _env_value(env, "EMULATOR_RUNNING_SECONDS")
    if override:
        try:
            running = float(override)
        except ValueError:
            raise ApiError(400, "invalid EMULATOR_RUNNING_SECONDS: expected a number") from None
    now = st.clock.now()
    t1 = now + max(0.0, tmg.job_pending)
    t2 = t1 + max(0.0, tmg.job_creating)
    t3 = t2 + max(0.0, running)
    t4 = t3 + max(0.0, tmg.job_finishing)
    stored = dict(spec)
    stored["clusterId"] = cluster_id
    stored["instanceName"] = inst
    for k in ("requestedRunDurationSeconds",):
        if k in stored and stored[k] is not None:
            stored[k] = str(stored[k])
    tags = b.get("tags") or []
    if not isinstance(tags, list):
        raise ApiError(400, "invalid tags: expected a list")
    j = Job(
        id=st.ids.new(),
        seq=st.jobs.new_seq(),
        name=st.jobs.unique_name(p.id, name),
        project_id=p.id,
        user_id=call.user.id,
        spec=stored,
        tags=tag_ids(st, p, tags, "tags"),
        created=now,
        t_creating=t1,
        t_running=t2,
        t_finishing=t3,
        t_done=t4,
        outcome=outcome,
        updated=now,
    )
    st.jobs.by_id[j.id] = j
    st.jobs.by_name[(p.id, j.name)] = j.id
    st.counters.effect("job_created", name)
    return job_json(st, p, j, now)


def _job(call: Call) -> tuple[Project, Job]:
    p = call.state.project_for(call.params["projectId"], call.user)
    return p, call.state.jobs.get(p, call.params["id"])


@routes.route("GET", "/v1/projects/{projectId}/jobs/{id}")
async def get_job(call: Call) -> Any:
    p, j = _job(call)
    return job_json(call.state, p, j, call.state.clock.now())


@routes.route("GET", "/v1/projects/{projectId}/jobs/find")
async def find_job(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    name = call.q("name")
    jid = st.jobs.by_name.get((p.id, name))
    if not name or jid is None:
        raise ApiError(404, f"job {name!r} not found")
    return job_json(st, p, st.jobs.by_id[jid], st.clock.now())


@routes.route("GET", "/v1/projects/{projectId}/jobs")
async def list_jobs(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    now = st.clock.now()
    standalone = call.qbool("standalone")
    cloudspace_id = call.q("cloudspaceId")
    user_id = call.q("userId")
    state = call.q("state").lower()
    mmt_id = call.q("multiMachineJobId")
    if call.q("deploymentId"):
        return {"jobs": [], "nextPageToken": "", "previousPageToken": ""}
    tag_ids = set(call.qlist("tagIds"))

    def keep(j: Job) -> bool:
        if j.project_id != p.id:
            return False
        of = j.extra.get("multiMachineJobId", "")
        if (mmt_id and of != mmt_id) or (standalone is not None and standalone == bool(of)):
            return False
        if cloudspace_id and j.spec.get("cloudspaceId") != cloudspace_id:
            return False
        if user_id and j.user_id != user_id:
            return False
        if tag_ids and not tag_ids.intersection(j.tags):
            return False
        return not (state and j.state_at(now) != state)

    items, nxt = page(
        (j for j in st.jobs.by_id.values() if keep(j)),
        lambda j: j.seq,
        call.q("pageToken"),
        call.qint("limit"),
        st.config.page_size,
    )
    return {
        "jobs": [job_json(st, p, j, now) for j in items],
        "nextPageToken": nxt,
        "previousPageToken": "",
    }


@routes.route("PUT", "/v1/projects/{projectId}/jobs/{id}", body="JobsServiceUpdateJobBody")
async def update_job(call: Call) -> Any:
    st = call.state
    p, j = _job(call)
    now = st.clock.now()
    b = call.body
    new_state = b.get("state")
    if new_state not in (None, ""):
        if not isinstance(new_state, str):
            raise ApiError(400, "invalid state: expected a string")
        if new_state.lower() in ("stop", "stopped", "stopping"):
            if j.state_at(now) not in TERMINAL and j.stop_at is None:
                j.stop_at = now
                j.stopped_at = now + max(0.0, st.config.timings.job_stop)
                st.counters.incr(f"stops:{j.id}")
                st.counters.effect("job_stopped", j.id)
        else:
            raise ApiError(400, f"invalid state: cannot set a job to {new_state!r}")
    new_name = b.get("name")
    if new_name not in (None, ""):
        if not isinstance(new_name, str):
            raise ApiError(400, "invalid name: expected a string")
        if new_name != j.name:
            if (p.id, new_name) in st.jobs.by_name:
                raise ApiError(409, f"a job named {new_name!r} already exists")
            del st.jobs.by_name[(p.id, j.name)]
            j.name = new_name
            st.jobs.by_name[(p.id, new_name)] = j.id
    j.updated = now
    return job_json(st, p, j, now)


@routes.route("DELETE", "/v1/projects/{projectId}/jobs/{id}")
async def delete_job(call: Call) -> Any:
    st = call.state
    p, j = _job(call)
    del st.jobs.by_id[j.id]
    st.jobs.by_name.pop((p.id, j.name), None)
    st.counters.incr("deletes:job")
    st.counters.effect("job_deleted", j.id)
    return {}
