"""The deployment routes: create, get, get by name, list, update (scale, stop, start,
new release), delete and status, with the service's checks (wire-flows §5.10): unknown
machine → 400 naming it, replicas out of range → 400, duplicate name → 409, nothing changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from .._call import Call, RouteTable
from .._errors import ApiError
from .._machines import find_machine, valid_slugs
from .._paging import page
from .._validation import model
from ._model import Deployment
from ._shapes import deployment_json

if TYPE_CHECKING:
    from .._state import Project, State

__all__ = ["routes"]

routes = RouteTable()

_BASE = "/v1/projects/{projectId}/deployments"
_METRICS = ("CPU", "GPU")
_RELEASE_KEYS = ("image", "command", "entrypoint", "env", "instanceName", "instanceType", "spot")


def _int(value: Any, what: str) -> int:
    """An int64 field: protojson accepts a number or a numeric string."""
    if isinstance(value, bool):
        raise ApiError(400, f"invalid {what}: expected an integer, got {value!r}", code=3)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ApiError(400, f"invalid {what}: expected an integer, got {value!r}", code=3)


def _autoscaling(raw: Any, old: dict[str, Any] | None) -> dict[str, Any]:
    if raw is None:
        return dict(old) if old else {"enabled": False, "minReplicas": 0, "maxReplicas": 1}
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid autoscaling: an object is required", code=3)
    out = dict(old or {})
    out.update(raw)
    lo = _int(out.get("minReplicas") or 0, "autoscaling.minReplicas")
    hi = _int(out.get("maxReplicas") or 0, "autoscaling.maxReplicas")
    if lo < 0 or hi < 0:
        raise ApiError(400, "invalid autoscaling: replica bounds must not be negative", code=3)
    if lo > hi:
        raise ApiError(
            400, f"invalid autoscaling: minReplicas {lo} is larger than maxReplicas {hi}", code=3
        )
    out["minReplicas"], out["maxReplicas"] = lo, hi
    for m in out.get("targetMetric") or []:
        if not isinstance(m, dict) or m.get("name") not in _METRICS:
            raise ApiError(400, f"invalid autoscaling.targetMetric: one of {_METRICS}", code=3)
        target = _int(m.get("target") or 0, "autoscaling.targetMetric.target")
        if not 0 <= target <= 100:
            raise ApiError(400, "invalid autoscaling.targetMetric.target: 0..100", code=3)
    return out


def _spec(
    st: State, p: Project, raw: Any, cluster_hint: str, old: dict[str, Any] | None
) -> dict[str, Any]:
    if raw is None and old is not None:
        return old
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid spec: an object is required", code=3)
    spec = {**(old or {}), **raw}
    inst = spec.get("instanceName") or spec.get("instanceType") or ""
    if not isinstance(inst, str) or find_machine(inst) is None:
        raise ApiError(
            400,
            f"invalid spec.instanceName: unknown machine {inst!r}; valid slugs: {', '.join(valid_slugs())}",
            code=3,
        )
    m = find_machine(inst)
    assert m is not None
    spec["instanceName"] = m.slug
    spec["instanceType"] = m.instance_id
    if not spec.get("image") and not spec.get("cloudspaceId"):
        raise ApiError(400, "invalid spec: an image or a studio (cloudspaceId) is required", code=3)
    if spec.get("cloudspaceId"):
        st.studios.get(p, str(spec["cloudspaceId"]))  # 404 if unknown
    cluster = str(spec.get("clusterId") or cluster_hint or "") or (
        p.cluster_ids[0] if p.cluster_ids else ""
    )
    if cluster not in p.cluster_ids:
        raise ApiError(
            400, f"invalid spec.clusterId: {cluster!r} is not bound to this teamspace", code=3
        )
    spec["clusterId"] = cluster
    env = spec.get("env") or []
    if not isinstance(env, list) or not all(isinstance(e, dict) and e.get("name") for e in env):
        raise ApiError(400, "invalid spec.env: a list of {name, value|fromSecret}", code=3)
    return spec


def _endpoint(raw: Any, old: dict[str, Any] | None) -> dict[str, Any]:
    if raw is None and old is not None:
        return old
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid endpoint: an object with ports is required", code=3)
    ep = {k: v for k, v in raw.items() if k != "urls"}
    ports = ep.get("ports") or []
    if not isinstance(ports, list) or not ports:
        raise ApiError(400, "invalid endpoint.ports: at least one port is required", code=3)
    out = []
    for port in ports:
        n = _int(float(port) if isinstance(port, float) else port, "endpoint.ports")
        if not 1 <= n <= 65535:
            raise ApiError(400, f"invalid endpoint.ports: {n} is not a port", code=3)
        out.append(str(n))
    ep["ports"] = out
    return ep


def _check_body(body: dict[str, Any], model_name: str) -> None:
    """The body against the spec's model, once the int64 replica bounds (the SDK sends JSON
    numbers where the spec says strings) are read as strings; a mismatch is a 400."""
    t = model(model_name)
    if t is None:
        return
    b = dict(body)
    auto = b.get("autoscaling")
    if isinstance(auto, dict):
        b["autoscaling"] = {
            k: (str(v) if k in ("minReplicas", "maxReplicas") and isinstance(v, int) else v)
            for k, v in auto.items()
        }
    try:
        msgspec.convert(b, type=t)
    except msgspec.ValidationError as e:
        raise ApiError(400, f"invalid request body: {e}", code=3) from None


def _timings(st: State) -> tuple[float, float]:
    t = st.config.timings
    return max(0.0, t.job_pending + t.job_creating), max(0.0, t.job_stop)


@routes.route("POST", _BASE)
async def create_deployment(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    b = call.body
    _check_body(b, "JobsServiceCreateDeploymentBody")
    name = b.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "invalid name: a non-empty string is required", code=3)
    st.counters.incr(f"creates:deployment:{name}")
    replicas = _int(b.get("replicas") if b.get("replicas") is not None else 1, "replicas")
    if replicas < 0:
        raise ApiError(400, f"invalid replicas: {replicas} is negative", code=3)
    autoscaling = _autoscaling(b.get("autoscaling"), None)
    spec = _spec(st, p, b.get("spec"), str(b.get("clusterId") or ""), None)
    endpoint = _endpoint(b.get("endpoint"), None)
    if (p.id, name) in st.deployments.by_name:
        raise ApiError(409, f"a deployment named {name!r} already exists", code=6)
    now = st.clock.now()
    d = Deployment(
        id=st.ids.new(),
        seq=st.deployments.new_seq(),
        name=name,
        project_id=p.id,
        user_id=call.user.id,
        spec=spec,
        autoscaling=autoscaling,
        endpoint=endpoint,
        replicas=replicas,
        created=now,
        updated=now,
        release_id=st.ids.new(),
        strategy=b.get("strategy") or None,
        cloudspace_id=str(b.get("cloudspaceId") or spec.get("cloudspaceId") or ""),
    )
    d.scale(now, *_timings(st))
    st.deployments.by_id[d.id] = d
    st.deployments.by_name[(p.id, name)] = d.id
    st.counters.effect("deployment_created", name)
    return deployment_json(st, d, now)


def _get(call: Call) -> tuple[Project, Deployment]:
    p = call.state.project_for(call.params["projectId"], call.user)
    return p, call.state.deployments.get(p, call.params["id"])


@routes.route("GET", _BASE + "/{id}")
async def get_deployment(call: Call) -> Any:
    _p, d = _get(call)
    return deployment_json(call.state, d, call.state.clock.now())


@routes.route("GET", _BASE + "/{id}/status")
async def get_deployment_status(call: Call) -> Any:
    _p, d = _get(call)
    return deployment_json(call.state, d, call.state.clock.now())["status"]


@routes.route("GET", _BASE + "/{name}/getbyname")
async def get_deployment_by_name(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    did = st.deployments.by_name.get((p.id, call.params["name"]))
    if did is None:
        raise ApiError(404, f"deployment {call.params['name']!r} not found")
    return deployment_json(st, st.deployments.by_id[did], st.clock.now())


@routes.route("GET", _BASE)
async def list_deployments(call: Call) -> Any:
    st = call.state
    p = st.project_for(call.params["projectId"], call.user)
    cloudspace_id = call.q("cloudspaceId")
    user_ids = set(call.qlist("userIds"))
    now = st.clock.now()

    def keep(d: Deployment) -> bool:
        if d.project_id != p.id:
            return False
        if cloudspace_id and d.cloudspace_id != cloudspace_id:
            return False
        return not (user_ids and d.user_id not in user_ids)

    items, nxt = page(
        (d for d in st.deployments.by_id.values() if keep(d)),
        lambda d: d.seq,
        call.q("pageToken"),
        call.qint("limit"),
        st.config.page_size,
    )
    return {
        "deployments": [deployment_json(st, d, now) for d in items],
        "nextPageToken": nxt,
        "previousPageToken": "",
    }


def _wanted(d: Deployment) -> tuple[Any, ...]:
    """What an update can change (its replica count first)."""
    return (
        d.replicas, d.name, d.spec, d.autoscaling, d.endpoint, d.desired_state, d.strategy,
        d.release_id,
    )  # fmt: skip


@routes.route("PUT", _BASE + "/{id}")
async def update_deployment(call: Call) -> Any:
    """The body is the whole deployment with changes (read-only fields are ignored)."""
    st = call.state
    p, d = _get(call)
    b = call.body
    _check_body(b, "JobsServiceUpdateDeploymentBody")
    replicas = d.replicas
    if b.get("replicas") is not None:
        replicas = _int(b["replicas"], "replicas")
        if replicas < 0:
            raise ApiError(400, f"invalid replicas: {replicas} is negative", code=3)
    autoscaling = _autoscaling(b.get("autoscaling"), d.autoscaling)
    spec = _spec(st, p, b.get("spec"), "", d.spec)
    endpoint = _endpoint(b.get("endpoint"), d.endpoint)
    desired = b.get("desiredState") or d.desired_state
    if not isinstance(desired, str) or not desired.startswith("DEPLOYMENT_STATE_"):
        raise ApiError(400, f"invalid desiredState {desired!r}", code=3)
    name = b.get("name") or d.name
    if not isinstance(name, str):
        raise ApiError(400, "invalid name: expected a string", code=3)
    if name != d.name and (p.id, name) in st.deployments.by_name:
        raise ApiError(409, f"a deployment named {name!r} already exists", code=6)
    # checked: apply
    now = st.clock.now()
    before = _wanted(d)
    if any(spec.get(k) != d.spec.get(k) for k in _RELEASE_KEYS):
        d.release_id = st.ids.new()
        for r in d.pods:  # a new release replaces the replicas
            if r.stop_at is None:
                r.stop_at, r.gone_at = now, now + _timings(st)[1]
    if name != d.name:
        del st.deployments.by_name[(p.id, d.name)]
        st.deployments.by_name[(p.id, name)] = d.id
        d.name = name
    d.spec, d.autoscaling, d.endpoint = spec, autoscaling, endpoint
    d.desired_state = desired
    if "strategy" in b:
        d.strategy = b["strategy"] or None
    d.replicas = replicas
    if int(autoscaling["maxReplicas"]) == 0:
        d.replicas = 0  # stopped: the answer already says so
    elif desired == "DEPLOYMENT_STATE_STOPPED":
        d.replicas = 0
    d.updated = now
    st.counters.incr(f"updates:deployment:{d.id}")
    after = _wanted(d)
    if after != before:  # the same PUT again changes nothing
        st.counters.effect("deployment_updated", d.id)
        if after[0] == 0 < before[0]:
            st.counters.effect("deployment_stopped", d.id)
        elif before[0] == 0 < after[0]:
            st.counters.effect("deployment_started", d.id)
    d.scale(now, *_timings(st))
    return deployment_json(st, d, now)


@routes.route("DELETE", _BASE + "/{id}")
async def delete_deployment(call: Call) -> Any:
    st = call.state
    p, d = _get(call)
    del st.deployments.by_id[d.id]
    st.deployments.by_name.pop((p.id, d.name), None)
    st.counters.incr("deletes:deployment")
    st.counters.effect("deployment_deleted", d.id)
    return {}
