"""A deployment's endpoint, served on the emulator's own listener at `/_endpoints/{id}/...`.

It answers like a small service behind the deployment's load balancer: 503 while no replica
is ready, 401 when the endpoint's auth is enabled and the request lacks it (`userApiKey`:
any credential of a teamspace member, as `Authorization: Bearer <api key>` or the REST
forms; `token`: `Bearer <token>`; `username`/`password`: Basic), else 200 with a JSON echo
naming the replica that served it.
"""

from __future__ import annotations

import base64
import hmac
from typing import Any

from aiohttp import web

from .._auth import authenticate
from .._call import Call, Route, RouteTable
from .._errors import ApiError

__all__ = ["routes"]

routes = RouteTable()


def _authorised(call: Call, auth: dict[str, Any], project_members: set[str]) -> bool:
    header = call.request.headers.get("Authorization") or ""
    if not auth.get("enabled"):
        return True
    if auth.get("token"):
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value, str(auth["token"])):
            return True
    if auth.get("username"):
        scheme, _, value = header.partition(" ")
        want = f"{auth['username']}:{auth.get('password') or ''}"
        try:
            got = base64.b64decode(value).decode()
        except ValueError:
            got = ""
        if scheme.lower() == "basic" and hmac.compare_digest(got, want):
            return True
    if auth.get("userApiKey"):
        try:
            user = authenticate(call.state, header)
        except ApiError:
            return False
        return user.id in project_members
    return False


async def endpoint(call: Call) -> Any:
    st = call.state
    d = st.deployments.by_id.get(call.params["id"])
    if d is None:
        raise ApiError(404, "no such endpoint")
    p = st.projects[d.project_id]
    if not _authorised(call, d.endpoint.get("auth") or {}, p.members):
        return web.json_response(
            {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
        )
    now = st.clock.now()
    ready, _pending, _deleting = d.counts(now)
    if ready == 0:
        return web.json_response({"error": "no ready replica"}, status=503)
    st.counters.incr(f"endpoint:{d.id}")
    n = st.counters.get(f"endpoint:{d.id}")
    return {
        "deployment": d.name,
        "release": d.release_id,
        "replica": n % ready,
        "method": call.request.method,
        "path": "/" + call.params.get("path", ""),
    }


routes.routes = [
    Route(m, "/_endpoints/{id}/{path:.*}", endpoint, auth=False, read_body=False)
    for m in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")
]
