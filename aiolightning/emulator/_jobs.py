"""Jobs (the v2 jobs service): submit, get, find by name, list, stop, rename, delete, logs.

States are lower-case strings computed lazily from the job's creation time and the
durations in `Timings` captured when the job was created:

    pending (job_pending) → creating (job_creating) → running (job_running)
      → complete | fail (job_finishing) → completed | failed
    PUT {"state": "stop"} while not terminal → stopping (job_stop) → stopped

The outcome defaults to `Timings.job_outcome`. A job overrides it with env vars in its spec:
`EMULATOR_OUTCOME=fail|complete`, and `EMULATOR_RUNNING_SECONDS=<float>` for how long it
runs. Duplicate names are de-duplicated by the server (`name-2`, `name-3`, ...), as the
SDK expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._call import Call, RouteTable
from ._errors import ApiError
from ._machines import find_machine, valid_slugs
from ._paging import page
from ._store import ProjectStore
from ._validation import filled

if TYPE_CHECKING:
    from ._state import Project, State

__all__ = ["Job", "JobStore", "routes"]

routes = RouteTable()

TERMINAL = frozenset({"completed", "failed", "stopped"})


@dataclass(slots=True)
class Job:
    id: str
    seq: int
    name: str
    project_id: str
    user_id: str
    spec: dict[str, Any]
    tags: list[str]  # tag ids
    created: float
    t_creating: float
    t_running: float
    t_finishing: float
    t_done: float
    outcome: str  # "complete" | "fail"
    stop_at: float | None = None
    stopped_at: float | None = None
    updated: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def state_at(self, now: float) -> str:
        if self.stop_at is not None and self.stopped_at is not None:
            return "stopped" if now >= self.stopped_at else "stopping"
        if now < self.t_creating:
            return "pending"
        if now < self.t_running:
            return "creating"
        if now < self.t_finishing:
            return "running"
        if now < self.t_done:
            return self.outcome
        return "completed" if self.outcome == "complete" else "failed"

    def ended_at(self, now: float) -> float | None:
        if self.stopped_at is not None:
            return self.stopped_at if now >= self.stopped_at else None
        return self.t_done if now >= self.t_done else None


class JobStore(ProjectStore[Job]):
    kind = "job"

    def __init__(self) -> None:
        super().__init__()
        self.by_name: dict[tuple[str, str], str] = {}  # (project id, name) -> job id

    def unique_name(self, project_id: str, name: str) -> str:
        if (project_id, name) not in self.by_name:
            return name
        n = 2
        while (project_id, f"{name}-{n}") in self.by_name:
            n += 1
        return f"{name}-{n}"


def _tag_json(st: State, p: Project, tag_id: str) -> dict[str, Any]:
    t = p.tags[tag_id]
    return filled("V1WorkloadTag", dict(t))


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
        "tags": [_tag_json(st, p, t) for t in j.tags if t in p.tags],
        "urls": [],
        "restartCount": 0,
        "restartTimings": [],
        "timings": {},
        "isHealthy": state == "running",
        "totalSizeBytes": "0",
    }
    data.update(j.extra)
    return filled("V1Job", data)


def _env_value(env: list[Any], key: str) -> str | None:
    for e in env:
        if isinstance(e, dict) and e.get("name") == key:
            return str(e.get("value", ""))
    return None


def _tag_ids(st: State, p: Project, names: list[Any], field_name: str) -> list[str]:
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
        tags=_tag_ids(st, p, tags, "tags"),
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
    if call.q("deploymentId") or call.q("multiMachineJobId") or standalone is False:
        return {"jobs": [], "nextPageToken": "", "previousPageToken": ""}
    tag_ids = set(call.qlist("tagIds"))

    def keep(j: Job) -> bool:
        if j.project_id != p.id:
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
    return {}


# -- tags, multi-machine jobs, logs ------------------------------------------------------------


@routes.route("GET", "/v1/projects/{projectId}/workload-tags")
async def list_workload_tags(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    return {"tags": [_tag_json(st, p, t) for t in p.tags]}


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
    j.tags = _tag_ids(st, p, tags, "tags")
    return {"tags": [_tag_json(st, p, t) for t in j.tags]}


@routes.route("GET", "/v1/projects/{projectId}/multi-machine-jobs")
async def list_mmts(call: Call) -> Any:
    call.state.project_for(call.params["projectId"], call.user)
    return {"multiMachineJobs": []}


@routes.route("GET", "/v1/projects/{projectId}/multi-machine-jobs/{name}/getbyname")
async def get_mmt_by_name(call: Call) -> Any:
    call.state.project_for(call.params["projectId"], call.user)
    raise ApiError(404, f"multi-machine job {call.params['name']!r} not found")


@routes.route("GET", "/v1/projects/{projectId}/multi-machine-jobs/{id}")
async def get_mmt(call: Call) -> Any:
    call.state.project_for(call.params["projectId"], call.user)
    raise ApiError(404, f"multi-machine job {call.params['id']!r} not found")


def _log_lines(st: State, j: Job, now: float) -> list[tuple[float, str, str]]:
    """(time, severity, message) of the lines the job has printed by `now`."""
    n = max(0, st.config.timings.log_lines)
    start = j.t_running
    end = j.t_finishing
    if j.stop_at is not None:
        end = min(end, j.stop_at)
    if now < start or (j.stop_at is not None and j.stop_at < start):
        return []
    lines: list[tuple[float, str, str]] = [(start, "info", "+ lightning")]
    cmd = str(j.spec.get("command") or "") or str(j.spec.get("image") or "")
    lines.append((start, "info", f"Starting job {j.name}: {cmd}"))
    span = max(end - start, 1e-6)
    for i in range(n):
        t = start + span * (i + 1) / (n + 1)
        if t > now or t > end:
            break
        lines.append((t, "info", f"[{j.name}] step {i + 1}/{n}"))
    if j.stop_at is not None and now >= j.stop_at and j.stop_at <= j.t_finishing:
        lines.append((j.stop_at, "warning", f"Job {j.name} received a stop request"))
    elif now >= j.t_finishing:
        if j.outcome == "complete":
            lines.append((j.t_finishing, "info", f"Job {j.name} finished successfully"))
        else:
            lines.append((j.t_finishing, "error", f"Job {j.name} failed with exit code 1"))
    return lines


@routes.route("GET", "/v1/projects/{projectId}/page-logs")
async def page_logs(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    job_ids = call.qlist("jobIds")
    if not job_ids:
        if (
            call.q("deploymentId")
            or call.q("mmtId")
            or call.q("sandboxId")
            or call.qlist("sandboxCommandIds")
        ):
            return {"entries": [], "nextPageToken": "", "followUrl": ""}
        raise ApiError(400, "one of jobIds, deploymentId, mmtId, sandboxId is required")
    now = st.clock.now()
    entries: list[dict[str, Any]] = []
    severity = call.q("severity").lower()
    query = call.q("query")
    for jid in job_ids:
        j = st.jobs.get(p, jid)
        for no, (t, sev, msg) in enumerate(_log_lines(st, j, now), start=1):
            if severity and sev != severity:
                continue
            if query and query not in msg:
                continue
            entries.append(
                {
                    "message": msg,
                    "timestamp": st.iso(t),
                    "line": str(no),
                    "severity": sev,
                    "resourceId": j.id,
                }
            )
    size_raw = call.q("pageSize")
    try:
        size = int(size_raw) if size_raw else 1000
    except ValueError:
        raise ApiError(400, f"invalid pageSize {size_raw!r}") from None
    token = call.q("pageToken")
    try:
        offset = int(token) if token else 0
    except ValueError:
        raise ApiError(400, f"invalid pageToken {token!r}") from None
    size = max(1, min(size, 5000))
    chunk = entries[offset : offset + size]
    nxt = str(offset + size) if offset + size < len(entries) else ""
    return {"entries": chunk, "nextPageToken": nxt, "followUrl": ""}
