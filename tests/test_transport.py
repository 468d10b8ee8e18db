"""Transport and client behaviour against real aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import msgspec
import pytest
from _servers import json_response, serve
from aiohttp import web

import aiolightning
from aiolightning import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncLightning,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    RetryPolicy,
    ServerError,
    Timeout,
)
from aiolightning._transport import encode_query, quote_path_param

pytestmark = pytest.mark.anyio

CREDS: dict[str, Any] = {"user_id": "user-123", "api_key": "key-abc"}


class Thing(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    name: str | None = None
    size: str | int | None = None
    count: int | None = None
    flag: bool | None = None
    display_name: str | None = msgspec.field(default=None, name="displayName")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- base URL, session, headers ---------------------------------------------------------


async def test_base_url_argument_env_default_and_trailing_slash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LIGHTNING_CLOUD_URL", raising=False)
    async with AsyncLightning(**CREDS) as c:
        assert c.base_url == "https://lightning.ai"
    monkeypatch.setenv("LIGHTNING_CLOUD_URL", "http://env.example:9/")
    async with AsyncLightning(**CREDS) as c:
        assert c.base_url == "http://env.example:9"
    async with AsyncLightning("http://arg.example/", **CREDS) as c:
        assert c.base_url == "http://arg.example"
        assert c.transport.base_url == "http://arg.example"

    async def ok(request: web.Request) -> web.Response:
        return json_response({"path": request.raw_path})

    async with serve({("GET", "/v1/x"): ok}) as (url, _rec):
        async with AsyncLightning(url + "/", **CREDS) as c:
            assert await c.transport.request("GET", "/v1/x") == {"path": "/v1/x"}


async def test_headers_user_agent_basic_auth_and_bodies() -> None:
    async def ok(request: web.Request) -> web.Response:
        return json_response({})

    async with serve(catch_all=ok) as (url, rec):
        async with AsyncLightning(url, **CREDS) as c:
            await c.transport.request("GET", "/v1/a")
            await c.transport.request("POST", "/v1/b")
            await c.transport.request("DELETE", "/v1/c")
            await c.transport.request("PUT", "/v1/d", json={"x": 1})
            await c.transport.request("PATCH", "/v1/e", json=Thing(name="n", size=5))
    get, post, delete, put, patch = rec.requests
    for r in rec.requests:
        assert r["headers"]["User-Agent"] == f"aiolightning/{aiolightning.__version__}"
        assert r["headers"]["Authorization"] == "Basic dXNlci0xMjM6a2V5LWFiYw=="
        assert r["headers"]["Accept"] == "application/json"
    assert get["body"] == b"" and "Content-Type" not in get["headers"]
    assert post["body"] == b"{}" and post["headers"]["Content-Type"] == "application/json"
    assert delete["body"] == b"{}"
    assert msgspec.json.decode(put["body"]) == {"x": 1}
    assert msgspec.json.decode(patch["body"]) == {"name": "n", "size": 5}


async def test_owned_session_is_closed_borrowed_session_is_not() -> None:
    async def ok(request: web.Request) -> web.Response:
        return json_response({"ok": True})

    async with serve(catch_all=ok) as (url, rec):
        c = AsyncLightning(url, **CREDS)
        await c.transport.request("GET", "/v1/x")
        owned = c.session
        assert c.transport.owns_session
        await c.close()
        assert owned.closed

        async with aiohttp.ClientSession() as mine:
            async with AsyncLightning(url, session=mine, **CREDS) as c2:
                assert c2.session is mine and not c2.transport.owns_session
                await c2.transport.request("GET", "/v1/x")
            assert not mine.closed
            # the borrowed session still works and never got our default headers
            async with mine.get(url + "/v1/x") as resp:
                assert resp.status == 200
        assert "Authorization" not in rec.requests[-1]["headers"]
        # our requests on the borrowed session carried UA and auth per request
        assert rec.requests[1]["headers"]["Authorization"].startswith("Basic ")
        assert rec.requests[1]["headers"]["User-Agent"].startswith("aiolightning/")


async def test_session_options_trace_configs_limits_and_bufsize() -> None:
    starts: list[str] = []

    async def on_start(_s: Any, _ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
        starts.append(params.method)

    tc = aiohttp.TraceConfig()
    tc.on_request_start.append(on_start)

    async def ok(request: web.Request) -> web.Response:
        return json_response({})

    async with serve(catch_all=ok) as (url, _rec):
        async with AsyncLightning(
            url, connector_limit=7, connector_limit_per_host=5, trace_configs=[tc], **CREDS
        ) as c:
            await c.transport.request("GET", "/v1/x")
            conn = c.session.connector
            assert isinstance(conn, aiohttp.TCPConnector)
            assert conn.limit == 7 and conn.limit_per_host == 5
            assert c.session._read_bufsize == 4 * 1024 * 1024
            # limiter caps never exceed the pool
            assert c.limiter.stats("read").max <= 7
    assert starts == ["GET"]


async def test_default_teamspace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTNING_TEAMSPACE", "env-ts")
    async with AsyncLightning("http://127.0.0.1:1", **CREDS) as c:
        assert c.default_teamspace == "env-ts"
    async with AsyncLightning("http://127.0.0.1:1", teamspace="arg-ts", **CREDS) as c:
        assert c.default_teamspace == "arg-ts"
    monkeypatch.delenv("LIGHTNING_TEAMSPACE")
    async with AsyncLightning("http://127.0.0.1:1", **CREDS) as c:
        assert c.default_teamspace is None


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, aiolightning; print('aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- encoding and decoding --------------------------------------------------------------


def test_quote_path_param_and_query_encoding() -> None:
    assert quote_path_param("a/b c") == "a%2Fb%20c"
    assert quote_path_param("") == ""
    assert quote_path_param(True) == "true"
    q = encode_query({"a": None, "b": True, "c": False, "ids": ["x", "y/z"], "n": 3, "e": ""})
    assert q == "b=true&c=false&ids=x&ids=y%2Fz&n=3&e="


async def test_path_params_and_query_reach_the_server_intact() -> None:
    async def ok(request: web.Request) -> web.Response:
        return json_response({})

    async with serve(catch_all=ok) as (url, rec):
        async with AsyncLightning(url, **CREDS) as c:
            path = f"/v1/projects/{quote_path_param('p/1')}/things/{quote_path_param('a b')}"
            await c.transport.request(
                "GET", path, params={"ids": ["1", "2"], "activeOnly": True, "skip": None}
            )
    r = rec.requests[0]
    assert r["raw_path"] == "/v1/projects/p%2F1/things/a%20b?ids=1&ids=2&activeOnly=true"
    assert r["query"] == [("ids", "1"), ("ids", "2"), ("activeOnly", "true")]


async def test_typed_decoding_ints_as_strings_and_unknown_fields() -> None:
    async def ok(request: web.Request) -> web.Response:
        return json_response(
            {
                "name": "a",
                "size": "12345678901234",
                "count": "7",
                "flag": True,
                "newField": 1,
                "displayName": "A",
            }
        )

    async def num(request: web.Request) -> web.Response:
        return json_response({"size": 42})

    async with serve({("GET", "/v1/t"): ok, ("GET", "/v1/n"): num}) as (url, _):
        async with AsyncLightning(url, **CREDS) as c:
            t = await c.transport.request("GET", "/v1/t", response_type=Thing)
            assert t == Thing(name="a", size="12345678901234", count=7, flag=True, display_name="A")
            n = await c.transport.request("GET", "/v1/n", response_type=Thing)
            assert n.size == 42
            plain = await c.transport.request("GET", "/v1/t")
            assert plain["newField"] == 1


async def test_non_json_2xx_raises_decode_error_and_empty_2xx_is_none() -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=200)

    async with serve({("GET", "/v1/h"): html, ("POST", "/v1/e"): empty}) as (url, _):
        async with AsyncLightning(url, **CREDS) as c:
            with pytest.raises(ResponseDecodeError) as ei:
                await c.transport.request("GET", "/v1/h")
            assert "hello" in str(ei.value) and ei.value.status == 200
            assert await c.transport.request("POST", "/v1/e") is None
            assert await c.transport.request("POST", "/v1/e", response_type=Thing) == Thing()


# --- error mapping ----------------------------------------------------------------------

STATUS_CASES = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (409, ConflictError),
    (418, APIStatusError),
    (422, APIStatusError),
    (429, RateLimitError),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, ServerError),
]


@pytest.mark.parametrize(("status", "cls"), STATUS_CASES)
async def test_every_status_maps_to_its_error(status: int, cls: type[APIStatusError]) -> None:
    async def grpc(request: web.Request) -> web.Response:
        return json_response(
            {"code": 5, "message": "thing not found", "details": [{"@type": "x"}]}, status=status
        )

    async def html(request: web.Request) -> web.Response:
        page = "<html><head><title>Bad</title></head><body><h1>Gateway trouble</h1></body></html>"
        return web.Response(status=status, text=page, content_type="text/html")

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=status)

    routes = {("GET", "/v1/j"): grpc, ("GET", "/v1/h"): html, ("GET", "/v1/e"): empty}
    async with serve(routes) as (url, _):
        async with AsyncLightning(url, retry=RetryPolicy.none(), **CREDS) as c:
            with pytest.raises(cls) as ei:
                await c.transport.request("GET", "/v1/j")
            e = ei.value
            assert type(e) is cls
            assert (e.status, e.code, e.message, e.details) == (
                status, 5, "thing not found", [{"@type": "x"}],
            )  # fmt: skip
            assert e.method == "GET" and e.path == "/v1/j"
            assert f"HTTP {status}" in str(e) and "thing not found" in str(e)

            with pytest.raises(cls) as ei:
                await c.transport.request("GET", "/v1/h")
            e = ei.value
            assert e.code is None
            assert "Gateway trouble" in e.message and "<h1>" not in e.message
            assert len(e.message) < 300

            with pytest.raises(cls) as ei:
                await c.transport.request("GET", "/v1/e")
            assert ei.value.message  # the status reason, e.g. "Bad Gateway"
            assert ei.value.body == b""


async def test_rate_limit_error_carries_retry_after() -> None:
    async def limited(request: web.Request) -> web.Response:
        return json_response({"code": 8, "message": "slow down"}, 429, {"Retry-After": "17"})

    async with serve({("GET", "/v1/r"): limited}) as (url, _):
        async with AsyncLightning(url, retry=RetryPolicy.none(), **CREDS) as c:
            with pytest.raises(RateLimitError) as ei:
                await c.transport.request("GET", "/v1/r")
    assert ei.value.retry_after == 17.0 and ei.value.code == 8


async def test_connection_refused_and_timeout_errors() -> None:
    port = free_port()
    async with AsyncLightning(f"http://127.0.0.1:{port}", retry=RetryPolicy.none(), **CREDS) as c:
        with pytest.raises(APIConnectionError) as ei:
            await c.transport.request("GET", "/v1/x")
        assert not isinstance(ei.value, APITimeoutError)
        assert ei.value.method == "GET" and ei.value.path == "/v1/x"

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return json_response({})

    async with serve({("GET", "/v1/slow"): slow}) as (url, _):
        async with AsyncLightning(url, retry=RetryPolicy.none(), timeout=0.2, **CREDS) as c:
            with pytest.raises(APITimeoutError) as ei2:
                await c.transport.request("GET", "/v1/slow")
            assert ei2.value.path == "/v1/slow"
        # per-call timeout overrides a long client timeout
        async with AsyncLightning(
            url, retry=RetryPolicy.none(), timeout=Timeout(total=30), **CREDS
        ) as c:
            with pytest.raises(APITimeoutError):
                await c.transport.request("GET", "/v1/slow", timeout=0.2)


# --- streams ----------------------------------------------------------------------------


async def test_stream_reads_ndjson_and_maps_errors() -> None:
    async def lines(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "application/x-ndjson"
        await resp.prepare(request)
        for i in range(3):
            await resp.write(msgspec.json.encode({"i": i}) + b"\n")
        await resp.write_eof()
        return resp

    async def missing(request: web.Request) -> web.Response:
        return json_response({"code": 5, "message": "no logs"}, 404)

    async with serve({("GET", "/v1/logs"): lines, ("GET", "/v1/none"): missing}) as (url, _):
        async with AsyncLightning(url, **CREDS) as c:
            got = []
            async with c.transport.stream("GET", "/v1/logs", scope="data") as resp:
                assert resp.status == 200
                assert c.limiter.stats("data").in_flight == 1
                async for line in resp.content:
                    got.append(msgspec.json.decode(line))
            assert got == [{"i": 0}, {"i": 1}, {"i": 2}]
            assert c.limiter.stats("data").in_flight == 0
            with pytest.raises(NotFoundError, match="no logs"):
                async with c.transport.stream("GET", "/v1/none"):
                    pass  # pragma: no cover
            assert c.limiter.stats("read").in_flight == 0


async def test_stream_retries_before_first_byte_and_maps_mid_body_failures() -> None:
    calls = {"n": 0}

    async def flaky(request: web.Request) -> web.StreamResponse:
        calls["n"] += 1
        if calls["n"] == 1:
            return json_response({"message": "busy"}, 503)
        resp = web.StreamResponse()
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b"x" * 10)
        assert request.transport is not None
        request.transport.close()  # drop the connection mid-body
        return resp

    policy = RetryPolicy(base=0.001, jitter=False)
    async with serve({("GET", "/v1/blob"): flaky}) as (url, rec):
        async with AsyncLightning(url, retry=policy, **CREDS) as c:
            with pytest.raises(APIConnectionError) as ei:
                async with c.transport.stream("GET", "/v1/blob", scope="data") as resp:
                    assert resp.status == 200
                    await resp.read()
            assert ei.value.path == "/v1/blob"
            st = c.limiter.stats("data")
            # the bare 503 and the dropped body are both errors (neither is a throttle)
            assert (st.in_flight, st.retries, st.errors, st.throttles) == (0, 1, 2, 0)
    assert rec.count() == 2


async def test_with_options_shares_session_and_limiter() -> None:
    async def down(request: web.Request) -> web.Response:
        return json_response({"message": "down"}, 503)

    async def ok(request: web.Request) -> web.Response:
        return json_response({"h": request.headers.get("X-Extra")})

    async with serve({("GET", "/v1/down"): down, ("GET", "/v1/ok"): ok}) as (url, rec):
        async with AsyncLightning(url, retry=RetryPolicy(base=0.001), **CREDS) as c:
            quick = c.with_options(retry=RetryPolicy.none(), timeout=5, headers={"X-Extra": "1"})
            with pytest.raises(ServerError):
                await quick.transport.request("GET", "/v1/down")
            assert rec.count("/v1/down") == 1
            assert await quick.transport.request("GET", "/v1/ok") == {"h": "1"}
            assert await c.transport.request("GET", "/v1/ok") == {"h": None}
            assert quick.session is c.session and quick.limiter is c.limiter
            assert quick.transport.timeout.total == 5 and c.transport.timeout.total == 60
            await quick.close()
            assert not c.session.closed
            assert await c.transport.request("GET", "/v1/ok") == {"h": None}
            assert rec.requests[-1]["headers"]["Authorization"].startswith("Basic ")
