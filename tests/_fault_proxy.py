"""A fault proxy on 127.0.0.1 between the client and the emulator: faults *after* the act.

Every request is forwarded to the emulator and its answer read in full, so the emulator has
acted; then, for chosen requests, the answer is broken the way a load balancer or a flaky
network breaks it: the connection is closed without an answer ("drop"), a 500/502/503 with
an HTML body replaces it (no ``Retry-After``, as a proxy sends), or half of the body is sent
before the connection closes ("truncate"). Requests are chosen by a seeded random rate
among those that match ``methods``/``pattern``, and by :meth:`FaultProxy.break_next` for a
test that needs one fault at one place (``before=True``: the request is not forwarded at all,
so the emulator never acts, and the client cannot tell). ``injected`` counts what was done,
by kind.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from aiolightning import AsyncLightning
from aiolightning.emulator import Emulator

KINDS = ("drop", "500", "502", "503", "truncate")
_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class _Rule:
    method: str
    pattern: re.Pattern[str]
    kind: str
    left: int
    before: bool = False


@dataclass
class FaultProxy:
    upstream: str
    rate: float = 0.0
    kinds: tuple[str, ...] = KINDS
    methods: frozenset[str] = frozenset({"POST", "PUT", "PATCH", "DELETE"})
    pattern: str = r"^/v1/"
    seed: int = 0
    url: str = ""
    injected: Counter[str] = field(default_factory=Counter)
    _rules: list[_Rule] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)

    def break_next(
        self, method: str, pattern: str, kind: str, times: int = 1, *, before: bool = False
    ) -> None:
        """Break the answer of the next ``times`` requests ``method`` + path matching;
        ``before``: without forwarding them (the emulator never sees them)."""
        assert kind in KINDS, kind
        self._rules.append(_Rule(method, re.compile(pattern), kind, times, before))

    def _before(self, method: str, path: str) -> str | None:
        for rule in self._rules:
            if rule.before and rule.left > 0 and rule.method == method:
                if rule.pattern.search(path):
                    rule.left -= 1
                    return rule.kind
        return None

    def _choose(self, method: str, path: str) -> str | None:
        for rule in self._rules:
            if rule.before:
                continue
            if rule.left > 0 and rule.method == method and rule.pattern.search(path):
                rule.left -= 1
                return rule.kind
        if (
            self.rate > 0
            and method in self.methods
            and re.search(self.pattern, path)
            and self._rng.random() < self.rate
        ):
            return self._rng.choice(self.kinds)
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if (early := self._before(request.method, request.path)) is not None:
            self.injected[f"{early} before"] += 1
            return self._broken(request, early, 503)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        session: aiohttp.ClientSession = request.app[_SESSION]
        try:
            async with session.request(
                request.method,
                self.upstream + request.raw_path,
                data=body if body or request.method in ("POST", "PUT", "PATCH") else None,
                headers=headers,
                allow_redirects=False,
            ) as up:
                data = await up.read()
                status = up.status
                out_headers = {k: v for k, v in up.headers.items() if k.lower() not in _HOP}
        except aiohttp.ClientError:  # the emulator dropped it (its own fault): pass it on
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=503)
        kind = self._choose(request.method, request.path)
        if kind is None:
            if request.method == "HEAD":  # the size of what a GET would send
                resp = web.StreamResponse(status=status, headers=out_headers)
                resp.content_length = int(up.headers.get("Content-Length", 0))
                return resp
            return web.Response(status=status, body=data, headers=out_headers)
        self.injected[kind] += 1
        return await self._spoil(request, kind, status, data, out_headers)

    def _broken(self, request: web.Request, kind: str, status: int) -> web.Response:
        """A dropped connection or a proxy's 5xx page (what ``kind`` asks, truncation aside)."""
        if kind in ("drop", "truncate"):
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=status)
        code = int(kind)
        html = f"<html><body><h1>{code}</h1>upstream answered, then the proxy failed</body></html>"
        return web.Response(status=code, text=html, content_type="text/html")

    async def _spoil(
        self, request: web.Request, kind: str, status: int, data: bytes, out_headers: Any
    ) -> web.StreamResponse:
        if kind == "drop" or (kind == "truncate" and (request.method == "HEAD" or not data)):
            # no body (a HEAD, a PUT's 200): cutting its answer short cuts its head, a lost answer
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=status)
        if kind == "truncate":
            resp = web.StreamResponse(status=status, headers=out_headers)
            resp.content_length = len(data)
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.close()
            return resp
        return self._broken(request, kind, status)


_SESSION = web.AppKey("session", aiohttp.ClientSession)


@asynccontextmanager
async def fault_proxy(upstream: str, **options: Any) -> AsyncIterator[FaultProxy]:
    """Serve a :class:`FaultProxy` in front of ``upstream``; ``proxy.url`` is its address."""
    proxy = FaultProxy(upstream.rstrip("/"), **options)
    proxy._rng.seed(f"proxy:{proxy.seed}")
    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", proxy._handle)
    # one connection per forwarded request: a connection the emulator dropped is never reused
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        app[_SESSION] = session
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        proxy.url = str(server.make_url("")).rstrip("/")
        try:
            yield proxy
        finally:
            await server.close()


def proxied_client(emu: Emulator, proxy: FaultProxy, **options: Any) -> AsyncLightning:
    """A client of the emulator's user and teamspace that talks through ``proxy``."""
    options.setdefault("teamspace", emu.teamspace_name)
    return AsyncLightning(proxy.url, user_id=emu.user_id, api_key=emu.api_key, **options)
