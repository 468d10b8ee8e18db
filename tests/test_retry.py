"""Retry behaviour: what is retried, the waits, Retry-After, idempotency, deadlines."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from typing import Any

import pytest
from _servers import json_response, serve
from aiohttp import web

from aiolightning import (
    APIConnectionError,
    APITimeoutError,
    AsyncLightning,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from aiolightning._limiter import LimiterConfig, ScopeConfig
from aiolightning._retry import compute_waits, parse_retry_after

pytestmark = pytest.mark.anyio

CREDS: dict[str, Any] = {"user_id": "user-123", "api_key": "key-abc"}
NO_JITTER_GATE = LimiterConfig(pause_jitter=0.0)


class FakeSleep:
    """Records the retry waits instead of sleeping them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def fast(**kw: Any) -> RetryPolicy:
    return RetryPolicy(base=0.001, jitter=False, **kw)


# --- policy maths ---------------------------------------------------------------------------


def test_default_policy() -> None:
    p = RetryPolicy()
    assert p.retry_statuses == {408, 429, 500, 502, 503, 504}
    assert p.retry_connection_errors and p.retry_timeouts and not p.retry_non_idempotent
    waits = compute_waits(p, 20)
    computed = compute_waits(p.with_options(jitter=False), 20)
    assert computed[:4] == [0.5, 1.0, 2.0, 4.0] and max(computed) == p.max_wait
    assert all(0 <= w <= c for w, c in zip(waits, computed, strict=True))
    assert RetryPolicy.none().max_attempts == 1


def test_lightning_sdk_preset_statuses_and_waits() -> None:
    p = RetryPolicy.lightning_sdk()
    assert p.max_attempts == 8 and not p.jitter and p.deadline is None
    for s in (402, 403, 405, 408, 409, 412, 422, 429, 499, 500, 501, 502, 503, 504, 599):
        assert s in p.retry_statuses
    for s in (400, 401, 404, 200, 302):
        assert s not in p.retry_statuses
    assert compute_waits(p, 7) == [0.5, 1, 2, 4, 8, 16, 32]
    assert compute_waits(p, 12)[-3:] == [256, 300, 300]


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after(date, now=now) <= 31  # type: ignore[operator]
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


# --- behaviour against a server ---------------------------------------------------------------


async def test_retry_503_then_success() -> None:
    calls = {"n": 0}

    async def flaky(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return json_response({"code": 14, "message": "unavailable"}, 503)
        return json_response({"ok": True})

    async with serve({("GET", "/v1/f"): flaky}) as (url, rec):
        async with AsyncLightning(url, retry=fast(), **CREDS) as c:
            assert await c.transport.request("GET", "/v1/f") == {"ok": True}
            st = c.limiter.stats("read")
            # a 503 without Retry-After is an error, not a throttle
            assert (st.requests, st.retries, st.throttles, st.errors) == (3, 2, 0, 2)
    assert rec.count() == 3


async def test_retry_gives_up_after_max_attempts() -> None:
    async def down(request: web.Request) -> web.Response:
        return json_response({"message": "boom"}, 500)

    async with serve({("GET", "/v1/d"): down}) as (url, rec):
        async with AsyncLightning(url, retry=fast(max_attempts=4), **CREDS) as c:
            with pytest.raises(ServerError, match="boom"):
                await c.transport.request("GET", "/v1/d")
    assert rec.count() == 4


async def test_retry_after_seconds_is_honoured_and_capped() -> None:
    calls = {"n": 0}

    async def limited(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return json_response({"message": "slow"}, 429, {"Retry-After": "0.3"})
        if calls["n"] == 2:
            return json_response({"message": "slow"}, 429, {"Retry-After": "3600"})
        return json_response({"ok": True})

    sleep = FakeSleep()
    policy = fast(sleep=sleep, max_retry_after=0.2)
    async with serve({("GET", "/v1/r"): limited}) as (url, _):
        async with AsyncLightning(url, retry=policy, limits=NO_JITTER_GATE, **CREDS) as c:
            assert await c.transport.request("GET", "/v1/r") == {"ok": True}
    assert sleep.waits == [0.2, 0.2]  # 0.3 and 3600 both capped at max_retry_after


async def test_retry_after_http_date() -> None:
    calls = {"n": 0}

    async def limited(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            when = email.utils.formatdate(time.time() + 2, usegmt=True)
            return json_response({"message": "slow"}, 503, {"Retry-After": when})
        return json_response({"ok": True})

    sleep = FakeSleep()
    async with serve({("GET", "/v1/r"): limited}) as (url, _):
        async with AsyncLightning(
            url, retry=fast(sleep=sleep), limits=NO_JITTER_GATE, **CREDS
        ) as c:
            assert await c.transport.request("GET", "/v1/r") == {"ok": True}
    assert len(sleep.waits) == 1 and 0.5 < sleep.waits[0] <= 2.0


async def test_lightning_sdk_preset_against_a_server() -> None:
    async def forbidden(request: web.Request) -> web.Response:
        return json_response({"code": 7, "message": "no"}, 403)

    async def missing(request: web.Request) -> web.Response:
        return json_response({"code": 5, "message": "no"}, 404)

    sleep = FakeSleep()
    routes = {("GET", "/v1/f"): forbidden, ("GET", "/v1/m"): missing}
    async with serve(routes) as (url, rec):
        async with AsyncLightning(url, retry=RetryPolicy.lightning_sdk(sleep=sleep), **CREDS) as c:
            with pytest.raises(PermissionDeniedError):
                await c.transport.request("GET", "/v1/f")
            assert rec.count("/v1/f") == 8
            assert sleep.waits == [0.5, 1, 2, 4, 8, 16, 32]
            with pytest.raises(Exception):  # noqa: B017
                await c.transport.request("GET", "/v1/m")
            assert rec.count("/v1/m") == 1


async def test_post_is_not_resent_after_a_timeout_but_get_is() -> None:
    calls: dict[str, int] = {}

    async def slow_first(request: web.Request) -> web.Response:
        n = calls[request.method] = calls.get(request.method, 0) + 1
        if n == 1:
            await asyncio.sleep(3)
        return json_response({"n": n})

    async with serve(catch_all=slow_first) as (url, rec):
        async with AsyncLightning(url, retry=fast(), timeout=0.3, **CREDS) as c:
            with pytest.raises(APITimeoutError):
                await c.transport.request("POST", "/v1/create", json={"a": 1})
            assert rec.count("/v1/create") == 1
            assert await c.transport.request("GET", "/v1/get") == {"n": 2}
            assert rec.count("/v1/get") == 2
            calls.clear()
            # the caller vouches that a repeat is harmless
            assert await c.transport.request("POST", "/v1/again", idempotent=True) == {"n": 2}
            calls.clear()
            policy = fast(retry_non_idempotent=True)
            assert await c.transport.request("PATCH", "/v1/p", retry=policy) == {"n": 2}


async def test_post_not_resent_after_dropped_connection() -> None:
    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.1)
        return json_response({})

    async with serve(catch_all=drop) as (url, rec):
        async with AsyncLightning(url, retry=fast(max_attempts=3), **CREDS) as c:
            with pytest.raises(APIConnectionError):
                await c.transport.request("POST", "/v1/create")
            assert rec.count("/v1/create") == 1
            with pytest.raises(APIConnectionError):
                await c.transport.request("GET", "/v1/read")
            # 3 attempts (aiohttp itself also re-sends an idempotent request once when a
            # reused keep-alive connection turns out dead, so the server may see up to 6)
            assert 3 <= rec.count("/v1/read") <= 6


async def test_refused_connection_is_retried_even_for_post() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AsyncLightning(f"http://127.0.0.1:{port}", retry=fast(max_attempts=3), **CREDS) as c:
        with pytest.raises(APIConnectionError):
            await c.transport.request("POST", "/v1/create")
        st = c.limiter.stats("write")
        assert (st.requests, st.retries, st.errors) == (3, 2, 3)


async def test_post_retried_only_where_the_server_certainly_did_not_act() -> None:
    """408, 429 and a 503 with Retry-After are re-sent for a POST; a 500, 502, 504 and a
    bare 503 (a proxy's answer, perhaps after the backend acted) reach the caller; an
    idempotent PUT is re-sent after any of them unless ``resend_ambiguous=False``."""
    calls: dict[str, int] = {}

    async def handler(request: web.Request) -> web.Response:
        n = calls[request.path] = calls.get(request.path, 0) + 1
        code = request.path.rsplit("/", 1)[1]
        if n == 1:
            headers = {"Retry-After": "0"} if code.endswith("ra") else None
            return json_response({"message": "x"}, int(code[:3]), headers)
        return json_response({"ok": True})

    async with serve(catch_all=handler) as (url, _rec):
        async with AsyncLightning(url, retry=fast(), **CREDS) as c:
            for code in ("408", "429", "503ra"):
                assert await c.transport.request("POST", f"/v1/p/{code}") == {"ok": True}
            for code in ("500", "502", "503", "504"):
                with pytest.raises(ServerError):
                    await c.transport.request("POST", f"/v1/p/{code}")
                assert await c.transport.request("PUT", f"/v1/u/{code}") == {"ok": True}
                with pytest.raises(ServerError):
                    await c.transport.request(
                        "DELETE", f"/v1/d/{code}", retry=fast(resend_ambiguous=False)
                    )
            assert await c.transport.request(
                "DELETE", "/v1/d/503ra", retry=fast(resend_ambiguous=False)
            ) == {"ok": True}


async def test_only_429_and_503_with_retry_after_slow_the_scope() -> None:
    """Errors are not throttles: a 500 or a bare 503 is counted as an error and leaves the
    cap and the rate alone; a 429 or a 503 with Retry-After shrinks the cap."""

    async def handler(request: web.Request) -> web.Response:
        code = request.path.rsplit("/", 1)[1]
        headers = {"Retry-After": "0"} if code.endswith("ra") else None
        return json_response({"message": "x"}, int(code[:3]), headers)

    limits = LimiterConfig(per_scope={"read": ScopeConfig(initial=8, max=8)})
    async with serve(catch_all=handler) as (url, _rec):
        async with AsyncLightning(url, retry=RetryPolicy.none(), limits=limits, **CREDS) as c:
            for code in ("500", "502", "503", "504"):
                with pytest.raises(ServerError):
                    await c.transport.request("GET", f"/v1/{code}")
            st = c.limiter.stats("read")
            assert (st.errors, st.throttles, st.cap, st.rate) == (4, 0, 8, None)
            with pytest.raises(ServerError):
                await c.transport.request("GET", "/v1/503ra")
            st = c.limiter.stats("read")
            assert (st.throttles, st.cap) == (1, 5)
            with pytest.raises(RateLimitError):
                await c.transport.request("GET", "/v1/429")
            assert c.limiter.stats("read").throttles == 2


async def test_deadline_bounds_the_whole_call() -> None:
    async def down(request: web.Request) -> web.Response:
        return json_response({"message": "down"}, 503)

    policy = RetryPolicy(max_attempts=1000, base=0.05, max_wait=0.05, jitter=False, deadline=0.6)
    async with serve(catch_all=down) as (url, rec):
        async with AsyncLightning(url, retry=policy, **CREDS) as c:
            t0 = time.monotonic()
            with pytest.raises(ServerError):
                await c.transport.request("GET", "/v1/x")
            elapsed = time.monotonic() - t0
    assert elapsed < 5.0  # generous: the point is that 1000 attempts did not happen
    assert 2 <= rec.count() < 100


async def test_deadline_shortens_the_last_attempt() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return json_response({})

    policy = fast(deadline=0.5)
    async with serve(catch_all=slow) as (url, _):
        async with AsyncLightning(url, retry=policy, timeout=30, **CREDS) as c:
            t0 = time.monotonic()
            with pytest.raises(APITimeoutError):
                await c.transport.request("GET", "/v1/x")
            assert time.monotonic() - t0 < 4.0
