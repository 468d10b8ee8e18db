"""Multi-machine jobs (wire-flows §5.7): one record over N machine jobs, ranks 0..N-1.

Each machine is an ordinary job of the job store (its own states and logs, `spec.rank`,
`multiMachineJobId`), listed by `GET .../jobs?multiMachineJobId=`; the multi-machine job's
state follows its machines:

    PENDING (no machine running yet) → RUNNING → COMPLETED (all completed) | FAILED
    PUT {"desiredState": "...STOP"} → STOP (machines stopping) → STOPPED

A spec env var `EMULATOR_FAIL_RANK=<n>` makes only that rank fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._call import Call, RouteTable
from .._errors import ApiError
from .._machines import find_machine, valid_slugs
from .._validation import filled
from ._mmt_model import STATE_PREFIX, MultiMachineJob
from ._model import TERMINAL, Job
from ._shapes import job_json
from ._tags import tag_ids, tag_json

if TYPE_CHECKING:
    from .._state import Project, State, User

__all__ = ["routes"]

routes = RouteTable()

_S = STATE_PREFIX
_BASE = "/v1/projects/{projectId}/multi-machine-jobs"


def _env(spec: dict[str, Any], key: str) -> str | None:
    for e in spec.get("env") or []:
        if isinstance(e, dict) and e.get("name") == key:
            return str(e.get("value", ""))
    return None


def _machine_job(st: State, p: Project, user: User, m: MultiMachineJob, rank: int) -> Job:
    tmg = st.config.timings
    spec = {**m.spec, "rank": rank}
    outcome = (_env(spec, "EMULATOR_OUTCOME") or tmg.job_outcome).lower()
    fail_rank = _env(spec, "EMULATOR_FAIL_RANK")
    if fail_rank is not None:
        outcome = "fail" if fail_rank == str(rank) else "complete"
    outcome = "fail" if outcome in ("fail", "failed", "failure") else "complete"
    running = tmg.job_running
    override = _env(spec, "EMULATOR_RUNNING_SECONDS")
    if override:
        try:
            running = float(override)
        except ValueError:
            raise ApiError(400, "invalid EMULATOR_RUNNING_SECONDS: expected a number") from None
    now = st.clock.now()
    t1 = now + max(0.0, tmg.job_pending)
    t2 = t1 + max(0.0, tmg.job_creating)
    t3 = t2 + max(0.0, running)
    return Job(
        id=st.ids.new(),
        seq=st.jobs.new_seq(),
        name=f"{m.name}-{rank}",
        project_id=p.id,
        user_id=user.id,
        spec=spec,
        tags=[],
        created=now,
        t_creating=t1,
        t_running=t2,
        t_finishing=t3,
        t_done=t3 + max(0.0, tmg.job_finishing),
        outcome=outcome,
        updated=now,
        extra={"multiMachineJobId": m.id},
    )


def _machine_jobs(st: State, m: MultiMachineJob) -> list[Job]:
    return [st.jobs.by_id[j] for j in m.job_ids if j in st.jobs.by_id]


def mmt_state(st: State, m: MultiMachineJob, now: float) -> str:
    states = [j.state_at(now) for j in _machine_jobs(st, m)]
    done = all(s in TERMINAL for s in states)
    if m.desired_state == _S + "STOP":
        return _S + ("STOPPED" if done else "STOP")
    if done and states:
        return _S + ("COMPLETED" if all(s == "completed" for s in states) else "FAILED")
    if any(s in ("running", "restarting", "complete", "fail") or s in TERMINAL for s in states):
        return _S + "RUNNING"
    return _S + "PENDING"


def mmt_json(st: State, p: Project, m: MultiMachineJob, now: float) -> dict[str, Any]:
    jobs = _machine_jobs(st, m)
    counts = {"ready": 0, "pending": 0, "failing": 0}
    for j in jobs:
        s = j.state_at(now)
        key = "ready" if s == "running" else "failing" if s in ("fail", "failed") else None
        if key is None and s in ("pending", "creating"):
            key = "pending"
        if key:
            counts[key] += 1
    machine_json = [job_json(st, p, j, now) for j in jobs]
    started = [j["startedAt"] for j in machine_json if j["startedAt"]]
    state = mmt_state(st, m, now)
    stopped = [j["stoppedAt"] for j in machine_json if j["stoppedAt"]]
    ended = state.endswith(("STOPPED", "COMPLETED", "FAILED"))
    status = filled(
        "V1MultiMachineJobStatus",
        {
            "readyMachines": str(counts["ready"]),
            "pendingMachines": str(counts["pending"]),
            "failingMachines": str(counts["failing"]),
            "deletingMachines": "0",
            "startedAt": min(started) if started else None,
            "stoppedAt": max(stopped) if ended and stopped else None,
        },
    )
    return filled(
        "V1MultiMachineJob",
        {
            "id": m.id,
            "name": m.name,
            "projectId": m.project_id,
            "userId": m.user_id,
            "cloudspaceId": str(m.spec.get("cloudspaceId") or ""),
            "createdAt": st.iso(m.created),
            "updatedAt": st.iso(max(m.updated, m.created)),
            "machines": m.machines,
            "maxRunAttempts": m.max_run_attempts,
            "currentRunAttempt": 1,
            "faultTolerance": m.fault_tolerance,
            "desiredState": m.desired_state,
            "state": state,
            "status": status,
            "spec": machine_json[0]["spec"] if machine_json else m.spec,
            "tags": [tag_json(st, p, t) for t in m.tags if t in p.tags],
            "totalCost": round(sum(float(j["totalCost"]) for j in machine_json), 6),
            "targetMachineIds": [],
        },
    )


@routes.route("POST", _BASE, body="JobsServiceCreateMultiMachineJobBody")
async def create_mmt(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    b = call.body
    name = b.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "invalid name: a non-empty string is required")
    st.counters.incr(f"creates:mmt:{name}")
    spec = b.get("spec")
    if not isinstance(spec, dict):
        raise ApiError(400, "invalid spec: an object is required")
    machines = b.get("machines")
    if not isinstance(machines, int) or not 1 <= machines <= 512:
        raise ApiError(400, f"invalid machines: 1..512 required, got {machines!r}")
    if bool(spec.get("image")) == bool(spec.get("cloudspaceId")):
        raise ApiError(400, "invalid spec: exactly one of spec.image and spec.cloudspaceId")
    if spec.get("cloudspaceId"):
        st.studios.get(p, str(spec["cloudspaceId"]))
        if not spec.get("command"):
            raise ApiError(400, "invalid spec.command: a studio job needs a command")
    inst = spec.get("instanceName") or spec.get("instanceType") or ""
    if not isinstance(inst, str) or find_machine(inst) is None:
        raise ApiError(
            400,
            f"invalid spec.instanceName: unknown machine {inst!r}; valid slugs: {', '.join(valid_slugs())}",
        )
    cluster = str(spec.get("clusterId") or b.get("clusterId") or "") or p.cluster_ids[0]
    if cluster not in p.cluster_ids:
        raise ApiError(400, f"invalid clusterId: {cluster!r} is not bound to this teamspace")
    if (p.id, name) in st.mmts.by_name:
        raise ApiError(409, f"a multi-machine job named {name!r} already exists", code=6)
    tags = b.get("tags") or []
    if not isinstance(tags, list):
        raise ApiError(400, "invalid tags: expected a list")
    now = st.clock.now()
    m = MultiMachineJob(
        id=st.ids.new(),
        seq=st.mmts.new_seq(),
        name=name,
        project_id=p.id,
        user_id=call.user.id,
        spec={**spec, "clusterId": cluster, "instanceName": inst},
        machines=machines,
        job_ids=[],
        tags=tag_ids(st, p, tags, "tags"),
        created=now,
        max_run_attempts=int(b.get("maxRunAttempts") or 0),
        fault_tolerance=b.get("faultTolerance") or None,
        updated=now,
    )
    for rank in range(machines):
        j = _machine_job(st, p, call.user, m, rank)
        st.jobs.add(j, named=False)
        m.job_ids.append(j.id)
    st.mmts.by_id[m.id] = m
    st.mmts.by_name[(p.id, name)] = m.id
    st.counters.effect("mmt_created", name)
    return mmt_json(st, p, m, now)


def _get(call: Call) -> tuple[Project, MultiMachineJob]:
    p = call.state.project_for(call.params["projectId"], call.user)
    return p, call.state.mmts.get(p, call.params["id"])


@routes.route("GET", _BASE + "/{id}")
async def get_mmt(call: Call) -> Any:
    p, m = _get(call)
    return mmt_json(call.state, p, m, call.state.clock.now())


@routes.route("GET", _BASE + "/{name}/getbyname")
async def get_mmt_by_name(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    mid = st.mmts.by_name.get((p.id, call.params["name"]))
    if mid is None:
        raise ApiError(404, f"multi-machine job {call.params['name']!r} not found")
    return mmt_json(st, p, st.mmts.by_id[mid], st.clock.now())


@routes.route("GET", _BASE)
async def list_mmts(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    now = st.clock.now()
    cloudspace_id = call.q("cloudspaceId")
    user_id = call.q("userId")
    out = [
        mmt_json(st, p, m, now)
        for m in st.mmts.by_id.values()
        if m.project_id == p.id
        and (not cloudspace_id or m.spec.get("cloudspaceId") == cloudspace_id)
        and (not user_id or m.user_id == user_id)
    ]
    return {"multiMachineJobs": out}


@routes.route("PUT", _BASE + "/{id}", body="JobsServiceUpdateMultiMachineJobBody")
async def update_mmt(call: Call) -> Any:
    st = call.state
    p, m = _get(call)
    now = st.clock.now()
    desired = call.body.get("desiredState")
    if desired not in (None, ""):
        if desired != _S + "STOP":
            raise ApiError(400, f"invalid desiredState: cannot set {desired!r}")
        if not mmt_state(st, m, now).endswith(("STOPPED", "COMPLETED", "FAILED")):
            if m.desired_state != desired:  # a repeat while it stops changes nothing
                st.counters.effect("mmt_stopped", m.id)
            m.desired_state = desired
            st.counters.incr(f"stops:{m.id}")
            for j in _machine_jobs(st, m):
                if j.state_at(now) not in TERMINAL and j.stop_at is None:
                    j.stop_at = now
                    j.stopped_at = now + max(0.0, st.config.timings.job_stop)
    m.updated = now
    return mmt_json(st, p, m, now)


@routes.route("DELETE", _BASE + "/{id}")
async def delete_mmt(call: Call) -> Any:
    st = call.state
    p, m = _get(call)
    for jid in m.job_ids:
        j = st.jobs.by_id.get(jid)
        if j is not None:
            st.jobs.remove(j)
    del st.mmts.by_id[m.id]
    st.mmts.by_name.pop((p.id, m.name), None)
    st.counters.incr("deletes:mmt")
    st.counters.effect("mmt_deleted", m.id)
    return {}
