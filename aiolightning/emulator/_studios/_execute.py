"""Commands in a running studio: execute (waited for or detached) and the NDJSON output stream."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aiohttp import web

from .._call import Call, RouteTable
from .._commands import run_script
from .._errors import ApiError
from ._lookup import studio_for
from ._model import RUNNING, Session, phase_at

__all__ = ["routes"]

routes = RouteTable()

MAX_SESSIONS = 64


@routes.route(
    "POST",
    "/v1/projects/{projectId}/cloudspaces/{id}/execute",
    body="CloudSpaceServiceExecuteCommandInCloudSpaceBody",
)
async def execute(call: Call) -> Any:
    st = call.state
    _, s = studio_for(call)
    now = st.clock.now()
    st.studios.settle(s, now)
    inst = s.instance
    if inst is None or phase_at(inst, now) != RUNNING:
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
    st.counters.effect("command_executed", f"{s.id}:{command}")
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
    _, s = studio_for(call)
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
