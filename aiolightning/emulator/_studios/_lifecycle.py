"""The studio lifecycle routes: start, stop, codestatus, codeconfig, machine switch, keep-alive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .._call import Call, RouteTable
from .._errors import ApiError
from ._lookup import bool_or_400, machine_or_400, studio_for
from ._model import Instance
from ._shapes import codeconfig_json, codestatus_bytes

if TYPE_CHECKING:
    from .._state import State

__all__ = ["routes"]

routes = RouteTable()


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
    _, s = studio_for(call)
    cc = call.body.get("computeConfig") or {}
    if not isinstance(cc, dict):
        raise ApiError(400, "invalid computeConfig: expected an object")
    machine = machine_or_400(cc["name"], "computeConfig.name") if cc.get("name") else s.machine
    spot = bool_or_400(cc.get("spot"), "computeConfig.spot") if "spot" in cc else s.spot
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
    st.counters.effect("studio_started", s.id)
    return {}


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{id}/stop",
)
async def stop_studio(call: Call) -> Any:
    st = call.state
    _, s = studio_for(call)
    now = st.clock.now()
    st.studios.settle(s, now)
    inst = s.instance
    if inst is not None and inst.stop_at is None:
        inst.stop_at = now
        inst.stopped_at = now + max(0.0, st.config.timings.studio_stop)
        st.counters.effect("studio_stopped", s.id)
    s.requested = None
    return {}


@routes.route("GET", "/v1/projects/{projectId}/cloudspaces/{id}/codestatus")
async def get_codestatus(call: Call) -> Any:
    _, s = studio_for(call)
    body = codestatus_bytes(call.state, s, call.state.clock.now())
    return web.Response(body=body, content_type="application/json")


@routes.route("GET", "/v1/projects/{projectId}/cloudspaces/{id}/codeconfig")
async def get_codeconfig(call: Call) -> Any:
    _, s = studio_for(call)
    call.state.studios.settle(s, call.state.clock.now())
    return codeconfig_json(s)


@routes.route(
    "PUT",
    "/v1/projects/{projectId}/cloudspaces/{id}/codeconfig",
    body="CloudSpaceServiceUpdateCloudSpaceInstanceConfigBody",
)
async def update_codeconfig(call: Call) -> Any:
    st = call.state
    _, s = studio_for(call)
    cc = call.body.get("computeConfig")
    now = st.clock.now()
    st.studios.settle(s, now)
    if cc:
        if not isinstance(cc, dict):
            raise ApiError(400, "invalid computeConfig: expected an object")
        machine = machine_or_400(cc.get("name") or s.machine, "computeConfig.name")
        spot = bool_or_400(cc.get("spot"), "computeConfig.spot") if "spot" in cc else s.spot
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
            if (machine, spot) != (s.machine, s.spot):  # a stopped studio's next machine
                st.counters.effect("machine_switched", s.id)
            s.machine, s.spot = machine, spot
    return codeconfig_json(s)


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{id}/switch-confirm",
)
async def switch_confirm(call: Call) -> Any:
    st = call.state
    _, s = studio_for(call)
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
    st.counters.effect("machine_switched", s.id)
    return {}


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{id}/switch-cancel",
)
async def switch_cancel(call: Call) -> Any:
    _, s = studio_for(call)
    s.requested = None
    return {}


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{id}/keep-alive",
    body="CloudSpaceServiceKeepAliveCloudSpaceInstanceBody",
)
async def keep_alive(call: Call) -> Any:
    _, s = studio_for(call)
    s.kept_alive_at = call.state.clock.now()  # the idle clock starts again from now
    call.state.counters.incr("keepalives")
    call.state.counters.effect("studio_kept_alive", s.id)
    return {}


@routes.route(
    "PUT",
    "/v1/projects/{projectId}/cloudspaces/{id}/sleepconfig",
    body="CloudSpaceServiceUpdateCloudSpaceSleepConfigBody",
)
async def update_sleepconfig(call: Call) -> Any:
    _, s = studio_for(call)
    b = call.body
    if b.get("disableAutoShutdown") is not None:
        s.disable_auto_shutdown = bool_or_400(b["disableAutoShutdown"], "disableAutoShutdown")
    if b.get("idleShutdownSeconds") is not None:
        try:
            s.idle_shutdown_seconds = int(b["idleShutdownSeconds"])
        except (TypeError, ValueError):
            raise ApiError(400, "invalid idleShutdownSeconds: expected an integer") from None
    return codeconfig_json(s)
