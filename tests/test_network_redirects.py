"""Redirects of API calls against real servers on loopback (two ports = two origins): never
from https to http, never credentials or a body to another origin, a typed error naming
both URLs without secrets; same-origin redirects and bodiless cross-origin GETs still work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _servers import Recorder, json_response, serve
from _tls import PrivateCA, make_ca
from aiohttp import web

from aiolightning import AsyncLightning, RedirectRefusedError

pytestmark = pytest.mark.anyio

API_KEY = "k3y-that-must-never-leak"


@pytest.fixture
async def other() -> AsyncIterator[tuple[str, Recorder]]:
    """Another origin: answers everything with 200 and records what reached it."""

    async def ok(request: web.Request) -> web.StreamResponse:
        return json_response({"token": "handed-out-elsewhere", "where": "other"})

    async with serve(catch_all=ok) as srv:
        yield srv


def redirect_to(location: str, status: int = 307) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


def client(base: str, **kw: object) -> AsyncLightning:
    return AsyncLightning(base, user_id="u1", api_key=API_KEY, **kw)  # type: ignore[arg-type]


async def test_cross_origin_307_on_a_post_sends_nothing_to_the_other_origin(
    other: tuple[str, Recorder],
) -> None:
    other_url, other_rec = other

    async def moved(request: web.Request) -> web.StreamResponse:
        return redirect_to(f"{other_url}/v1/steal?X-Sig=abc")

    async with serve({("POST", "/v1/things"): moved}) as (base, rec), client(base) as c:
        with pytest.raises(RedirectRefusedError) as info:
            await c.transport.request("POST", "/v1/things", json={"spec": "secret job"})
    assert rec.count("/v1/things") == 1  # not retried
    assert other_rec.requests == []  # neither the body nor the headers went there
    err = info.value
    assert err.from_url == f"{base}/v1/things"
    assert err.to_url == f"{other_url}/v1/steal"  # no query string: signatures stay out
    assert "X-Sig" not in str(err) and API_KEY not in str(err)
    assert "another origin" in str(err)


async def test_jwt_login_redirected_elsewhere_never_sends_the_api_key(
    other: tuple[str, Recorder],
) -> None:
    other_url, other_rec = other

    async def moved(request: web.Request) -> web.StreamResponse:
        return redirect_to(f"{other_url}/v1/auth/login", 308)

    async with (
        serve({("POST", "/v1/auth/login"): moved}) as (base, _rec),
        client(base, auth="jwt") as c,
    ):
        with pytest.raises(RedirectRefusedError):
            await c.transport.request("GET", "/v1/auth/whoami")
    assert other_rec.requests == []


@pytest.fixture
def private_ca(tmp_path: Path) -> PrivateCA:
    return make_ca(tmp_path)


async def test_https_to_http_downgrade_is_refused_with_nothing_sent(
    private_ca: PrivateCA, other: tuple[str, Recorder]
) -> None:
    other_url, other_rec = other  # plain http on 127.0.0.1
    assert other_url.startswith("http://")

    async def moved(request: web.Request) -> web.StreamResponse:
        return redirect_to(f"{other_url}{request.path}")

    routes = {
        ("GET", "/v1/auth/whoami"): moved,
        ("POST", "/v1/auth/login"): moved,
        ("POST", "/v1/projects/p1/jobs"): moved,
    }
    async with serve(routes, ssl_context=private_ca.server_context()) as (base, rec):
        assert base.startswith("https://")
        for auth in ("basic", "jwt"):
            async with client(base, auth=auth, verify=private_ca.ca_file) as c:
                with pytest.raises(RedirectRefusedError, match="from https to plain http"):
                    await c.transport.request("GET", "/v1/auth/whoami")
                if auth == "basic":  # a job spec (a body, in Basic mode) stays put too
                    with pytest.raises(RedirectRefusedError, match="from https to plain http"):
                        await c.transport.request(
                            "POST", "/v1/projects/p1/jobs", json={"spec": {"command": "s3cr3t"}}
                        )
    assert [r["path"] for r in rec.requests] == [
        "/v1/auth/whoami",
        "/v1/projects/p1/jobs",
        "/v1/auth/login",
    ]
    # the GET and the job spec (Basic) and the login body (JWT) never left over plain http
    assert other_rec.requests == []


async def test_same_origin_redirects_keep_method_body_and_credentials() -> None:
    async def moved(request: web.Request) -> web.StreamResponse:
        return redirect_to("/v1/new-things")

    async def new(request: web.Request) -> web.StreamResponse:
        return json_response({"ok": True})

    routes = {("POST", "/v1/things"): moved, ("POST", "/v1/new-things"): new}
    async with serve(routes) as (base, rec), client(base) as c:
        assert await c.transport.request("POST", "/v1/things", json={"a": 1}) == {"ok": True}
    last = rec.requests[-1]
    assert last["path"] == "/v1/new-things" and last["body"] == b'{"a":1}'
    assert last["headers"]["Authorization"].startswith("Basic ")


async def test_cross_origin_get_is_followed_without_credentials(
    other: tuple[str, Recorder],
) -> None:
    other_url, other_rec = other

    async def moved(request: web.Request) -> web.StreamResponse:
        return redirect_to(f"{other_url}/bucket/obj?X-Sig=abc", 302)

    async with serve({("GET", "/v1/blob"): moved}) as (base, _rec), client(base) as c:
        got = await c.transport.request("GET", "/v1/blob", headers={"Range": "bytes=0-9"})
    assert got["where"] == "other"
    (seen,) = other_rec.requests
    assert seen["path"] == "/bucket/obj" and seen["headers"]["Range"] == "bytes=0-9"
    assert "Authorization" not in seen["headers"]


async def test_a_redirect_loop_ends_with_the_typed_error() -> None:
    async def loop(request: web.Request) -> web.StreamResponse:
        return redirect_to("/v1/loop", 302)

    async with serve({("GET", "/v1/loop"): loop}) as (base, rec), client(base) as c:
        with pytest.raises(RedirectRefusedError, match="more than 10 redirects"):
            await c.transport.request("GET", "/v1/loop")
    assert rec.count() == 11


async def test_a_target_with_user_info_is_refused_and_not_shown(
    other: tuple[str, Recorder],
) -> None:
    other_url, other_rec = other
    evil = other_url.replace("http://", "http://user:hunter22@")

    async def moved(request: web.Request) -> web.StreamResponse:
        return redirect_to(f"{evil}/x")

    async with serve({("GET", "/v1/x"): moved}) as (base, _rec), client(base) as c:
        with pytest.raises(RedirectRefusedError) as info:
            await c.transport.request("GET", "/v1/x")
    assert "hunter22" not in str(info.value) and other_rec.requests == []
