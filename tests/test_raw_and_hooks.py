"""Raw responses beside decoded values, and the retry / throttle hooks, on both clients."""

from __future__ import annotations

import asyncio
import logging

import pytest
from _servers import serve
from aiohttp import web

from aiolightning import (
    AsyncLightning,
    Hooks,
    Lightning,
    NotFoundError,
    RawResponse,
    RetryEvent,
    RetryPolicy,
    ThrottleEvent,
    models,
)
from aiolightning.emulator import EmulatorConfig, EmulatorThread, Faults

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(max_attempts=20, base=0.005, max_wait=0.02, max_retry_after=0.03)


async def whoami(request: web.Request) -> web.Response:
    return web.json_response(
        {"userId": "u1", "username": "me"},
        headers={"X-Request-Id": "req-123", "X-RateLimit-Remaining": "41"},
    )


async def missing(request: web.Request) -> web.Response:
    return web.json_response(
        {"code": 5, "message": "no such studio"}, status=404, headers={"X-Request-Id": "req-404"}
    )


async def test_raw_response_of_a_normal_call_and_of_an_error() -> None:
    routes = {("GET", "/v1/auth/whoami"): whoami, ("GET", "/v1/auth/user"): missing}
    async with serve(routes) as (url, _rec):
        async with AsyncLightning(url, auth="none") as client:
            raw = await client.api.auth.with_raw_response.whoami()
            assert isinstance(raw, RawResponse)
            assert (raw.status, raw.request_id) == (200, "req-123")
            assert raw.headers["x-ratelimit-remaining"] == "41"  # case-insensitive
            assert isinstance(raw.value, models.V1WhoamiResponse)
            assert raw.value.username == "me"
            assert raw.url == f"{url}/v1/auth/whoami" and raw.method == "GET"
            with pytest.raises(NotFoundError) as info:
                await client.api.auth.with_raw_response.get_user()
            assert (info.value.status, info.value.request_id) == (404, "req-404")
            assert info.value.headers["Content-Type"].startswith("application/json")
            assert "req-404" not in str(info.value)  # headers stay out of messages


def test_raw_response_from_the_sync_client() -> None:
    with EmulatorThread() as emu, emu.sync_client() as client:
        raw = client.api.auth.with_raw_response.whoami()
        assert raw.status == 200 and raw.value.username == "emu-user"
        assert raw.headers["Content-Type"].startswith("application/json")


def recorders() -> tuple[Hooks, list[RetryEvent], list[ThrottleEvent]]:
    retries: list[RetryEvent] = []
    throttles: list[ThrottleEvent] = []

    async def on_throttle(event: ThrottleEvent) -> None:  # hooks may be coroutines
        await asyncio.sleep(0)
        throttles.append(event)

    return Hooks(on_retry=[retries.append], on_throttle=[on_throttle]), retries, throttles


async def test_hooks_fire_once_per_retry_and_per_throttle_against_the_rate_limit() -> None:
    hooks, retries, throttles = recorders()
    faults = Faults(rate_limit=20, rate_burst=2)
    with EmulatorThread(config=EmulatorConfig(faults=faults)) as emu:
        async with emu.client(retry=FAST, hooks=hooks) as client:
            await asyncio.gather(*(client.api.auth.whoami() for _ in range(12)))
        throttled = emu.counters.get("throttled")
    assert throttled > 0
    assert len(throttles) == throttled  # one per 429
    assert len(retries) == throttled  # each 429 retried once, nothing else failed
    for t in throttles:
        assert (t.status, t.retry_after, t.wait, t.scope) == (429, 1.0, 0.03, "read")
        assert t.route == "/v1/auth/whoami" and t.reason.startswith("HTTP 429")
    for r in retries:
        assert (r.status, r.wait, r.max_attempts) == (429, 0.03, 20)  # Retry-After, capped
        assert r.attempt >= 1 and r.reason == "HTTP 429 retry-after 1s"


def test_hooks_on_the_sync_client_count_5xx_retries() -> None:
    hooks, retries, throttles = recorders()
    faults = Faults(error_rate=0.5)
    with EmulatorThread(seed=3, config=EmulatorConfig(faults=faults)) as emu:
        with emu.sync_client(retry=FAST, hooks=hooks) as client:
            for _ in range(10):
                client.api.auth.whoami()
        counts = emu.counters.snapshot()
    assert len(retries) == counts.get("responses:500", 0) + counts.get("responses:503", 0) > 0
    assert counts.get("responses:503", 0) > 0
    assert throttles == []  # the emulator's 503s carry no Retry-After: errors, not throttles
    assert all(0 <= r.wait <= 0.02 for r in retries if r.status == 500)  # the backoff
    assert {r.reason for r in retries} <= {"HTTP 500", "HTTP 503"}


def test_a_failing_hook_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aiolightning")

    def broken(event: RetryEvent) -> None:
        raise ValueError("hook bug")

    faults = Faults(error_rate=1.0)
    with EmulatorThread(config=EmulatorConfig(faults=faults)) as emu:
        with Lightning(
            emu.url,
            user_id=emu.user_id,
            api_key=emu.api_key,
            retry=FAST,
            hooks=Hooks(on_retry=[broken]),
        ) as client:
            emu.config.faults.error_rate = 0.0
            client.api.auth.whoami()  # no retry: the hook is not called
            emu.config.faults.error_rate = 1.0
            with pytest.raises(Exception, match="HTTP 50"):
                client.api.auth.whoami(retry=RetryPolicy(max_attempts=2, base=0.001))
    assert "hook bug" in caplog.text
