"""Tiny real aiohttp servers on 127.0.0.1 for the transport-layer tests."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorder:
    """What the server saw: one entry per request, in arrival order."""

    requests: list[dict[str, Any]] = field(default_factory=list)

    def count(self, path: str | None = None) -> int:
        return sum(1 for r in self.requests if path is None or r["path"] == path)


@asynccontextmanager
async def serve(
    routes: Mapping[tuple[str, str], Handler] | None = None,
    *,
    catch_all: Handler | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[str, Recorder]]:
    """Serve ``{(method, path): handler}`` on 127.0.0.1 (https with ``ssl_context``);
    yields (base_url, recorder)."""
    rec = Recorder()

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        rec.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "raw_path": request.raw_path,
                "query": list(request.query.items()),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        return await handler(request)

    app = web.Application(middlewares=[record])
    for (method, path), handler in (routes or {}).items():
        app.router.add_route(method, path, handler)
    if catch_all is not None:
        app.router.add_route("*", "/{tail:.*}", catch_all)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server(ssl=ssl_context)
    try:
        yield str(server.make_url("")).rstrip("/"), rec
    finally:
        await server.close()


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(data, status=status, headers=headers)
