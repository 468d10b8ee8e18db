"""The aiohttp application: fault middleware (before and after the act), auth, routing,
validation, dispatch."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning

from . import _after, _auth, _catalog, _deployments, _directory, _jobs, _studios
from ._admin import admin_routes
from ._auth import authenticate
from ._call import Call, Handler, Route
from ._errors import ApiError, error_response
from ._faults import FaultInjector
from ._router import Router, split_path
from ._spec import spec_operations
from ._state import State
from ._storage import ArtifactStore
from ._validation import check_query, decode_body, query_types

__all__ = ["EMULATED_ROUTES", "build_app"]

AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

EMULATED_ROUTES: list[Route] = [
    *_auth.routes.routes,
    *_directory.routes.routes,
    *_catalog.routes.routes,
    *_studios.routes.routes,
    *_jobs.routes.routes,
    *_deployments.routes.routes,
]

ROUTE_TEMPLATE = web.RequestKey("route_template", str)
# the storage contract: handlers read the authenticated user as request["user_id"]
USER_ID = "user_id"

_user_key_registered = False


def _set_user_id(request: web.Request, user_id: str) -> None:
    """`request["user_id"] = user_id`; the plain-str key is the storage module's contract,
    so aiohttp's one-time advice to use a RequestKey is silenced."""
    global _user_key_registered
    if _user_key_registered:
        request[USER_ID] = user_id
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotAppKeyWarning)
        request[USER_ID] = user_id
    _user_key_registered = True


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_JSON = "application/json"


def _unimplemented(operation_id: str) -> Handler:
    async def handler(call: Call) -> Any:
        call.state.counters.incr("unimplemented")
        raise ApiError(501, f"{operation_id} is not emulated", code=12)

    return handler


async def _storage_elsewhere(call: Call) -> Any:
    # aiohttp's router sends storage requests with a registered method straight to the store
    raise ApiError(500, "storage route reached the core dispatcher")


class _App:
    def __init__(self, state: State) -> None:
        self.state = state
        self.config = state.config
        self.counters = state.counters
        self.faults = FaultInjector(state.counters, state.seed)
        self.router: Router[Route] = Router()
        for r in (*EMULATED_ROUTES, *_deployments.endpoint_routes.routes):
            self.router.add(r.method, r.template, r)
        for method, path, op_id in spec_operations():
            if not self.router.has(method, path):
                route = Route(method, path, _unimplemented(op_id), read_body=False)
                self.router.add(method, path, route)

    # -- the catch-all: every /v1 path the storage module does not own -------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        method = request.method
        segs = split_path(request.raw_path)
        m = self.router.match(method, segs)
        if m is None:
            request[ROUTE_TEMPLATE] = f"{method} (no route)"
            raise ApiError(404, f"no such path: {request.path}")
        if m is False:
            request[ROUTE_TEMPLATE] = f"{method} (method not allowed)"
            allowed = self.router.allowed_methods(segs)
            raise ApiError(
                405,
                f"method {method} not allowed for {request.path}",
                headers={"Allow": ", ".join(allowed)},
            )
        route = m.target
        request[ROUTE_TEMPLATE] = f"{method} {route.template}"
        state = self.state
        if route.auth:
            user = authenticate(state, request.headers.get("Authorization"))
        else:
            user = state.user
        _set_user_id(request, user.id)
        check_query(request.query, query_types(method, route.template))
        body: dict[str, Any] = {}
        if method in _BODY_METHODS and route.read_body:
            body = decode_body(await request.read(), route.body_model)
        result = await route.handler(Call(state, request, route, m.params, user, body))
        if isinstance(result, web.StreamResponse):
            return result
        return web.Response(body=msgspec.json.encode(result), content_type=_JSON)

    # -- storage handlers: auth + membership before the store sees the request --------------

    def wrap_storage(self, template: str, handler: AiohttpHandler) -> AiohttpHandler:
        if template.startswith("/_storage/"):
            return handler
        state = self.state

        async def wrapped(request: web.Request) -> web.StreamResponse:
            user = authenticate(state, request.headers.get("Authorization"))
            _set_user_id(request, user.id)
            segs = split_path(request.raw_path)
            if len(segs) >= 3 and segs[0] == "v1" and segs[1] == "projects":
                project = state.project_for(segs[2], user)
                if len(segs) >= 6 and segs[3] == "artifacts" and segs[4] == "cloudspaces":
                    state.studios.get(project, segs[5])  # 404 for an unknown studio
            return await handler(request)

        return wrapped

    # -- middleware: admin gate, faults, error bodies, counters ------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
        raw = request.raw_path
        if raw.startswith("/_emulator/"):
            if not self.config.admin:
                return error_response(404, f"no such path: {request.path}")
            try:
                return await handler(request)
            except ApiError as e:
                return e.response()
        counters = self.counters
        counters.incr("requests")
        f = self.config.faults
        storage = raw.startswith("/_storage/")
        acted = False  # whether the handler ran: only then do the faults after the act apply
        try:
            await self.faults.latency(f)
            if not storage:
                key = request.headers.get("Authorization") or request.remote or ""
                self.faults.rate_limit(f, key)
                if self.faults.should_drop(f):
                    counters.incr(f"faults:drop:{self._template(request)}")
                    return _after.drop(request)
                try:
                    self.faults.maybe_error(f)
                except ApiError:
                    counters.incr(f"faults:error:{self._template(request)}")
                    raise
            acted = True
            resp = await handler(request)
        except ApiError as e:
            resp = e.response()
        except web.HTTPException as e:
            if e.status < 400:
                raise
            resp = error_response(e.status, e.reason or "error")
        template = self._template(request)
        answered = True
        if acted and not resp.prepared:  # a streamed answer is already on the wire
            resp, answered = await self._after_the_act(request, resp, template, storage)
        counters.incr(f"requests:{template}")
        if answered:  # a dropped answer has no status
            counters.incr(f"responses:{resp.status}")
        return resp

    def _template(self, request: web.Request) -> str:
        """`METHOD template` of the request's route, for the counters."""
        if ROUTE_TEMPLATE in request:
            return request[ROUTE_TEMPLATE]
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical != "/{tail}":
            return f"{request.method} {resource.canonical}"
        m = self.router.match(request.method, split_path(request.raw_path))
        if m:
            return f"{request.method} {m.target.template}"
        return f"{request.method} {request.path}"

    async def _after_the_act(
        self, request: web.Request, resp: web.StreamResponse, template: str, storage: bool
    ) -> tuple[web.StreamResponse, bool]:
        """The faults after the act: a slow commit, then a drop, a 5xx or a truncation.
        Returns the answer and whether one is sent at all (not after a drop)."""
        f = self.config.faults
        delay = self.faults.slow_commit(f)
        if delay > 0:
            self.counters.incr("faults:slow_commit")
            self.counters.incr(f"faults:slow_commit:{template}")
            await _hold_back(request, delay)
        kind = self.faults.after(f)
        if kind is None:
            return resp, True
        spoiled = await self.faults.apply_after(kind, request, resp, storage)
        if spoiled is None:
            return resp, True
        self.counters.incr(f"faults:{kind}")
        self.counters.incr(f"faults:{kind}:{template}")
        return spoiled, kind != "drop_after"


async def _hold_back(request: web.Request, delay: float) -> None:
    """Sleep `delay` seconds, or less once the client has gone: nobody waits for the answer
    then (and the emulator's shutdown does not wait out the rest)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + delay
    while (left := end - loop.time()) > 0:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(left, 0.05))


APP_KEY = web.AppKey("emulator_app", _App)


def build_app(state: State, store: ArtifactStore | None = None) -> web.Application:
    """The application. `store` (an ArtifactStore) contributes routes registered first."""
    a = _App(state)
    app = web.Application(middlewares=[a.middleware], client_max_size=1 << 30)
    for method, path, handler in admin_routes(state.config, state.counters):
        app.router.add_route(method, path, handler)
    if store is not None:
        for method, path, handler in store.routes():
            app.router.add_route(method, path, a.wrap_storage(path, handler))
            # known to our router too, so a wrong method on a storage path is a 405
            a.router.add(method, path, Route(method, path, _storage_elsewhere))
    app.router.add_route("*", "/{tail:.*}", a.dispatch)
    app[APP_KEY] = a
    return app
