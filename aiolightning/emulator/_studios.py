"""Studios (cloudspaces): create/get/list, start/stop with the `codestatus` state machine,
machine switching, keep-alive, and command execution with an NDJSON output stream.

State is computed lazily from monotonic timestamps when read, so a fleet of studios costs
no tasks or timers. Lifecycle of an instance started at t0 with duration d
(`Timings.studio_start`):

    [t0, t0+d/2)  inUse PENDING
    [t0+d/2, t0+d) inUse RUNNING, startupStatus.initialRestoreFinished
    [t0+d, ...)   inUse RUNNING, initialRestoreFinished + topUpRestoreFinished  ("ready")
    stop at ts:   inUse STOPPING for `Timings.studio_stop`, then inUse null (Stopped)

Each start creates a new `cloudSpaceInstanceId`. A machine switch (`PUT codeconfig` while
running) puts a new instance in `requested` (initialRestoreFinished after
`Timings.studio_switch`); `switch-confirm` promotes it to `inUse`, topUpRestoreFinished
shortly after.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from ._call import Call, RouteTable
from ._commands import Program, run_script
from ._errors import ApiError
from ._machines import find_machine, valid_slugs
from ._paging import page
from ._store import ProjectStore
from ._validation import filled

if TYPE_CHECKING:
    from ._state import Project, State

__all__ = ["Studio", "StudioStore", "routes"]

routes = RouteTable()

PENDING = "CLOUD_SPACE_INSTANCE_STATE_PENDING"
RUNNING = "CLOUD_SPACE_INSTANCE_STATE_RUNNING"
STOPPING = "CLOUD_SPACE_INSTANCE_STATE_STOPPING"
MAX_SESSIONS = 64


@dataclass(slots=True)
class Instance:
    id: str
    machine: str
    spot: bool
    started: float
    running_at: float
    initial_at: float
    topup_at: float | None
    stop_at: float | None = None
    stopped_at: float | None = None


@dataclass(slots=True)
class Session:
    name: str
    command: str
    started: float
    program: Program


@dataclass(slots=True)
class Studio:
    id: str
    seq: int
    name: str
    display_name: str
    project_id: str
    cluster_id: str
    user_id: str
    created: float
    updated: float
    template_id: str
    machine: str
    spot: bool
    env: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # other updatable fields
    disable_auto_shutdown: bool = False
    idle_shutdown_seconds: int = 3600
    instance: Instance | None = None
    requested: Instance | None = None
    sessions: dict[str, Session] = field(default_factory=dict)
    session_seq: int = 0
    status_cache: tuple[Any, bytes] | None = None


class StudioStore(ProjectStore[Studio]):
    kind = "cloudspace"

    def id_by_name(self, project_id: str, name: str) -> str | None:
        """The id of the studio called `name` in the project (the storage module's hook)."""
        for s in self.by_id.values():
            if s.project_id == project_id and s.name == name:
                return s.id
        return None

    def settle(self, s: Studio, now: float) -> None:
        """Drop instances whose stop has completed."""
        inst = s.instance
        if inst is not None and inst.stopped_at is not None and now >= inst.stopped_at:
            s.instance = None


def _phase(inst: Instance, now: float) -> str:
    if inst.stop_at is not None and now >= inst.stop_at:
        return STOPPING
    return RUNNING if now >= inst.running_at else PENDING


def _compute_config(name: str, spot: bool) -> dict[str, Any]:
    return filled(
        "V1UserRequestedComputeConfig",
        {
            "name": name,
            "spot": spot,
            "count": 1,
            "diskSize": 400,
            "shmSize": 0,
            "id": "",
            "clusterOverride": "",
            "placementGroupId": "",
            "requestedRunDurationSeconds": "0",
            "affinityIdentifier": "",
            "cpuImageOverride": "",
            "gpuImageOverride": "",
            "sameComputeOnResume": False,
        },
    )


def _instance_json(st: State, s: Studio, inst: Instance, now: float) -> dict[str, Any]:
    phase = _phase(inst, now)
    stopping = phase == STOPPING
    initial = not stopping and now >= inst.initial_at
    topup = not stopping and inst.topup_at is not None and now >= inst.topup_at
    if stopping:
        message = "Stopping"
    elif topup:
        message = "Running"
    elif phase == RUNNING:
        message = "Restoring files"
    else:
        message = "Starting machine"
    m = find_machine(inst.machine)
    ip_tail = int(inst.id[-4:], 16) % 250 + 1
    return filled(
        "Externalv1CloudSpaceInstanceStatus",
        {
            "cloudSpaceId": s.id,
            "cloudSpaceInstanceId": inst.id,
            "clusterId": s.cluster_id,
            "phase": phase,
            "statusMessage": message,
            "computeConfig": _compute_config(inst.machine, inst.spot),
            "startupStatus": filled(
                "V1CloudSpaceInstanceStartupStatus",
                {
                    "initialRestoreFinished": initial,
                    "topUpRestoreFinished": topup,
                    "startedAt": st.iso(inst.started),
                    "initialRestoreAt": st.iso(inst.initial_at) if initial else None,
                    "topUpRestoreAt": st.iso(inst.topup_at) if topup else None,
                    "stageProgress": [],
                },
            ),
            "creationTimestamp": st.iso(inst.started),
            "startTimestamp": st.iso(inst.running_at) if phase != PENDING else None,
            "instanceId": f"i-{inst.id[-17:]}",
            "instanceRegion": "us-east-1",
            "publicIpAddress": f"198.51.100.{ip_tail}" if phase == RUNNING else "",
            "privateIpAddress": f"10.0.0.{ip_tail}" if phase == RUNNING else "",
            "price": (m.cost * (0.4 if inst.spot else 1.0)) if m else 0,
            "free": False,
            "alerts": [],
            "dataConnectionMounts": [],
            "startupStages": [],
            "startupPhase": "",
            "startupPercentage": "100" if topup else "0",
            "startupEtaSeconds": "0",
            "bytesToSync": "0",
            "filesToSync": "0",
            "sshPort": 22,
            "sshHost": "",
            "sshUsername": "",
            "requiresMaintenance": False,
        },
    )


def _instance_key(inst: Instance | None, now: float) -> tuple[Any, ...] | None:
    """What the instance's status depends on at `now` (its JSON is a function of this)."""
    if inst is None:
        return None
    stopping = inst.stop_at is not None and now >= inst.stop_at
    return (
        inst.id,
        inst.machine,
        inst.spot,
        stopping,
        now >= inst.running_at,
        now >= inst.initial_at,
        inst.topup_at is not None and now >= inst.topup_at,
    )


def codestatus_bytes(st: State, s: Studio, now: float) -> bytes:
    """The encoded codestatus, re-rendered only when the state machine has moved on."""
    st.studios.settle(s, now)
    key = (_instance_key(s.instance, now), _instance_key(s.requested, now))
    cached = s.status_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    body = msgspec.json.encode(codestatus_json(st, s, now))
    s.status_cache = (key, body)
    return body


def codestatus_json(st: State, s: Studio, now: float) -> dict[str, Any]:
    st.studios.settle(s, now)
    return {
        "inUse": _instance_json(st, s, s.instance, now) if s.instance else None,
        "requested": _instance_json(st, s, s.requested, now) if s.requested else None,
        "collabSession": None,
        "collabStatus": None,
    }


def codeconfig_json(s: Studio) -> dict[str, Any]:
    machine, spot = s.machine, s.spot
    if s.instance is not None:
        machine, spot = s.instance.machine, s.instance.spot
    return filled(
        "V1CloudSpaceInstanceConfig",
        {
            "computeConfig": _compute_config(machine, spot),
            "dataConnectionMounts": [],
            "disableAutoShutdown": s.disable_auto_shutdown,
            "idleShutdownSeconds": s.idle_shutdown_seconds,
            "ide": "vscode",
            "publishWithComputeName": "",
            "targetWorkspaceDiskSizeGb": "0",
            "tutorialShown": False,
        },
    )


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


def studio_json(st: State, s: Studio, now: float) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": s.id,
        "name": s.name,
        "displayName": s.display_name,
        "projectId": s.project_id,
        "clusterId": s.cluster_id,
        "userId": s.user_id,
        "state": "CLOUD_SPACE_STATE_READY",
        "env": [{"name": e["name"], "value": e["value"], "fromSecret": ""} for e in s.env],
        "environmentTemplateId": s.template_id,
        "createdAt": st.iso(s.created),
        "updatedAt": st.iso(s.updated),
        "codeConfig": codeconfig_json(s),
        "codeStatus": codestatus_json(st, s, now),
        "description": "",
        "tags": [],
        "dataConnectionMounts": [],
        "publications": [],
        "imageStatus": None,
        "numberOfFiles": "1",
        "totalSizeBytes": "32",
        "operatingCost": "0",
        "syncDuration": "0",
        "syncPercentage": "100",
        "maxRunDuration": "0",
        "userMetadata": "",
        "webPath": f"/{s.name}",
        "engagementCounts": {},
    }
    data.update(s.extra)
    return filled("V1CloudSpace", data)


def _machine_or_400(name: Any, field_name: str) -> str:
    if not isinstance(name, str):
        raise ApiError(400, f"invalid {field_name}: expected a string, got {type(name).__name__}")
    if find_machine(name) is None:
        raise ApiError(
            400,
            f"invalid {field_name}: unknown machine {name!r}; valid slugs: {', '.join(valid_slugs())}",
        )
    return name


def _bool(v: Any, field_name: str) -> bool:
    if v is None:
        return False
    if not isinstance(v, bool):
        raise ApiError(400, f"invalid {field_name}: expected a boolean")
    return v


def _studio(call: Call, key: str = "id") -> tuple[Project, Studio]:
    p = call.state.project_for(call.params["projectId"], call.user)
    return p, call.state.studios.get(p, call.params[key])


# -- CRUD ----------------------------------------------------------------------------------


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
    st.counters.incr(f"creates:studio:{name}")
    for s in st.studios.by_id.values():
        if s.project_id == p.id and s.name == name:
            raise ApiError(409, f"a cloudspace named {name!r} already exists in this teamspace")
    cluster_id = str(b.get("clusterId") or "") or (p.cluster_ids[0] if p.cluster_ids else "")
    if cluster_id not in p.cluster_ids:
        raise ApiError(400, f"invalid clusterId: {cluster_id!r} is not bound to this teamspace")
    machine = "cpu-4"
    if b.get("computeName"):
        machine = _machine_or_400(b["computeName"], "computeName")
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
        spot=_bool(b.get("spot"), "spot"),
    )
    st.studios.by_id[s.id] = s
    return studio_json(st, s, now)


@routes.route("GET", "/v1/projects/{projectId}/cloudspaces/{id}")
async def get_studio(call: Call) -> Any:
    _, s = _studio(call)
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
    _, s = _studio(call)
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
    _, s = _studio(call)
    del call.state.studios.by_id[s.id]
    call.state.counters.incr("deletes:studio")
    return {}


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{cloudspaceId}/runs",
    body="CloudSpaceServiceCreateLightningRunBody",
)
async def create_run(call: Call) -> Any:
    st = call.state
    _, s = _studio(call, "cloudspaceId")
    now = st.clock.now()
    return filled(
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


@routes.route("GET", "/v1/projects/{projectId}/cloudspaces/{cloudspaceId}/runs")
async def list_runs(call: Call) -> Any:
    _studio(call, "cloudspaceId")
    return {"runs": []}


# -- lifecycle -----------------------------------------------------------------------------


def _new_instance(st: State, machine: str, spot: bool, now: float) -> Instance:
    d = max(0.0, st.config.timings.studio_start)
    return Instance(
        id=st.ids.new(),
        machine=machine,
        spot=spot,
        started=now,
        running_at=now + d / 2,
        initial_at=now + d / 2,
        topup_at=now + d,
    )


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{id}/start",
    body="CloudSpaceServiceStartCloudSpaceInstanceBody",
)
async def start_studio(call: Call) -> Any:
    st = call.state
    _, s = _studio(call)
    cc = call.body.get("computeConfig") or {}
    if not isinstance(cc, dict):
        raise ApiError(400, "invalid computeConfig: expected an object")
    machine = _machine_or_400(cc["name"], "computeConfig.name") if cc.get("name") else s.machine
    spot = _bool(cc.get("spot"), "computeConfig.spot") if "spot" in cc else s.spot
    st.counters.incr(f"starts:{s.id}")
    now = st.clock.now()
    st.studios.settle(s, now)
    inst = s.instance
    if inst is not None:
        if inst.stop_at is not None:
            raise ApiError(
                400, "cloudspace is stopping; start it again once it has stopped", code=9
            )
        if inst.machine != machine:
            raise ApiError(
                400,
                f"cloudspace is already running on {inst.machine}; switch machines instead",
                code=9,
            )
        return {}  # already running (or starting) on this machine: nothing to do
    s.machine, s.spot = machine, spot
    s.instance = _new_instance(st, machine, spot, now)
    s.requested = None
    return {}


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{id}/stop",
)
async def stop_studio(call: Call) -> Any:
    st = call.state
    _, s = _studio(call)
    now = st.clock.now()
    st.studios.settle(s, now)
    inst = s.instance
    if inst is not None and inst.stop_at is None:
        inst.stop_at = now
        inst.stopped_at = now + max(0.0, st.config.timings.studio_stop)
    s.requested = None
    return {}


@routes.route("GET", "/v1/projects/{projectId}/cloudspaces/{id}/codestatus")
async def get_codestatus(call: Call) -> Any:
    _, s = _studio(call)
    body = codestatus_bytes(call.state, s, call.state.clock.now())
    return web.Response(body=body, content_type="application/json")


@routes.route("GET", "/v1/projects/{projectId}/cloudspaces/{id}/codeconfig")
async def get_codeconfig(call: Call) -> Any:
    _, s = _studio(call)
    call.state.studios.settle(s, call.state.clock.now())
    return codeconfig_json(s)


@routes.route(
    "PUT",
    "/v1/projects/{projectId}/cloudspaces/{id}/codeconfig",
    body="CloudSpaceServiceUpdateCloudSpaceInstanceConfigBody",
)
async def update_codeconfig(call: Call) -> Any:
    st = call.state
    _, s = _studio(call)
    cc = call.body.get("computeConfig")
    now = st.clock.now()
    st.studios.settle(s, now)
    if cc:
        if not isinstance(cc, dict):
            raise ApiError(400, "invalid computeConfig: expected an object")
        machine = _machine_or_400(cc.get("name") or s.machine, "computeConfig.name")
        spot = _bool(cc.get("spot"), "computeConfig.spot") if "spot" in cc else s.spot
        inst = s.instance
        if (
            inst is not None
            and inst.stop_at is None
            and (machine != inst.machine or spot != inst.spot)
        ):
            d = max(0.0, st.config.timings.studio_switch)
            s.requested = Instance(
                id=st.ids.new(),
                machine=machine,
                spot=spot,
                started=now,
                running_at=now + d / 2,
                initial_at=now + d,
                topup_at=None,
            )
            st.counters.incr(f"switches:{s.id}")
        else:
            s.machine, s.spot = machine, spot
    return codeconfig_json(s)


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{id}/switch-confirm",
)
async def switch_confirm(call: Call) -> Any:
    st = call.state
    _, s = _studio(call)
    now = st.clock.now()
    req = s.requested
    if req is None:
        raise ApiError(400, "no machine switch is in progress", code=9)
    if now < req.initial_at:
        raise ApiError(400, "the new machine is not ready yet", code=9)
    d = max(0.0, st.config.timings.studio_switch)
    req.topup_at = now + d / 4
    s.instance = req
    s.requested = None
    s.machine, s.spot = req.machine, req.spot
    return {}


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{id}/switch-cancel",
)
async def switch_cancel(call: Call) -> Any:
    _, s = _studio(call)
    s.requested = None
    return {}


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{id}/keep-alive",
    body="CloudSpaceServiceKeepAliveCloudSpaceInstanceBody",
)
async def keep_alive(call: Call) -> Any:
    _studio(call)
    call.state.counters.incr("keepalives")
    return {}


@routes.route(
    "PUT",
    "/v1/projects/{projectId}/cloudspaces/{id}/sleepconfig",
    body="CloudSpaceServiceUpdateCloudSpaceSleepConfigBody",
)
async def update_sleepconfig(call: Call) -> Any:
    _, s = _studio(call)
    b = call.body
    if b.get("disableAutoShutdown") is not None:
        s.disable_auto_shutdown = _bool(b["disableAutoShutdown"], "disableAutoShutdown")
    if b.get("idleShutdownSeconds") is not None:
        try:
            s.idle_shutdown_seconds = int(b["idleShutdownSeconds"])
        except (TypeError, ValueError):
            raise ApiError(400, "invalid idleShutdownSeconds: expected an integer") from None
    return codeconfig_json(s)


# -- commands ------------------------------------------------------------------------------


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{id}/execute",
    body="CloudSpaceServiceExecuteCommandInCloudSpaceBody",
)
async def execute(call: Call) -> Any:
    st = call.state
    _, s = _studio(call)
    now = st.clock.now()
    st.studios.settle(s, now)
    inst = s.instance
    if inst is None or _phase(inst, now) != RUNNING:
        raise ApiError(400, "cloudspace is not running", code=9)
    command = call.body.get("command")
    if not isinstance(command, str):
        raise ApiError(400, "invalid command: a string is required")
    prog = run_script(
        command,
        base_duration=max(0.0, st.config.timings.command),
        env={e["name"]: e["value"] for e in s.env},
        username=st.users[s.user_id].username if s.user_id in st.users else "",
        hostname=f"ip-{inst.id[-8:]}",
    )
    st.counters.incr("commands")
    if not call.body.get("detached"):
        # synchronous: wait (in simulated time) until the command is done
        await asyncio.sleep(prog.duration)
        return {"output": prog.output, "exitCode": prog.exit_code, "sessionName": ""}
    s.session_seq += 1
    name = str(call.body.get("sessionName") or "") or f"cmd-{s.session_seq:05d}-{st.ids.hex(4)}"
    s.sessions[name] = Session(name, command, now, prog)
    while len(s.sessions) > MAX_SESSIONS:
        del s.sessions[next(iter(s.sessions))]
    return {"sessionName": name, "output": "", "exitCode": 0}


@routes.route("GET", "/v1/projects/{projectId}/cloudspaces/{id}/execute/{session}/stream")
async def execute_stream(call: Call) -> Any:
    st = call.state
    _, s = _studio(call)
    sess = s.sessions.get(call.params["session"])
    if sess is None:
        raise ApiError(404, f"command session {call.params['session']} not found")
    elapsed = st.clock.now() - sess.started
    prog = sess.program
    lines: list[bytes] = []
    if elapsed < prog.duration:
        out = prog.output_until(elapsed)
        lines.append(msgspec.json.encode({"result": {"output": out, "exitCode": -1}}))
    else:
        chunks = [text for _, text in prog.chunks] or [""]
        for text in chunks:
            lines.append(
                msgspec.json.encode({"result": {"output": text, "exitCode": prog.exit_code}})
            )
    return web.Response(body=b"\n".join(lines) + b"\n", content_type="application/json")
