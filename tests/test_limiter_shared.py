"""The shared limiter on a real ``redis-server``: one bucket and one pause gate across clients
and processes, Redis unreachable (error, or WARNING and the local limiter), no password shown."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _redis_server import free_port
from _servers import serve
from aiohttp import web

from aiolightning import (
    AsyncLightning,
    InvalidArgumentError,
    LimiterConfig,
    RateLimitError,
    RetryPolicy,
    SharedLimiterError,
)
from aiolightning._limiter import Limiter
from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio

CREDS: dict[str, Any] = {"user_id": "user-123", "api_key": "key-abc"}
WORKER = Path(__file__).with_name("_shared_worker.py")


def unique_key() -> str:
    return f"test-{os.getpid()}-{time.monotonic_ns()}"


def password_of(url: str) -> str:
    return url.split("://:", 1)[1].split("@", 1)[0]


async def test_config_is_checked_and_never_shows_the_password() -> None:
    cfg = LimiterConfig(shared="redis://:hunter2@127.0.0.1:6379/0?password=hunter2", rate=5)
    assert cfg.shared == "redis://:hunter2@127.0.0.1:6379/0?password=hunter2"
    assert "hunter2" not in repr(cfg) and "***" in repr(cfg)
    assert LimiterConfig().shared is None  # the in-process limiter stays the default
    for bad, words in [
        ("http://127.0.0.1:6379", "scheme"),
        ("redis://:hunter2@", "no host"),
        ("redis://:hunter2@127.0.0.1:port/0", "not a valid URL"),
    ]:
        with pytest.raises(InvalidArgumentError, match=words) as info:
            LimiterConfig(shared=bad)
        assert "hunter2" not in str(info.value)
    with pytest.raises(InvalidArgumentError, match="'error' or 'local'"):
        LimiterConfig(shared="redis://127.0.0.1", on_unavailable="fallback")  # type: ignore[arg-type]


async def test_two_clients_share_one_bucket(redis_url: str) -> None:
    # 20 requests/s, burst 1, shared by two limiters with their own Redis connections: the
    # 20 slots they take together cannot all be granted in less than 19 intervals
    cfg = LimiterConfig(shared=redis_url, shared_key=unique_key(), rate=20.0, burst=1.0)
    a, b = Limiter(cfg), Limiter(cfg)
    try:
        t0 = time.monotonic()

        async def take(lim: Limiter) -> None:
            scope = lim.scope("read")
            ticket = await scope.acquire()
            scope.release(ticket)

        await asyncio.gather(*(take(lim) for lim in (a, b) for _ in range(10)))
        elapsed = time.monotonic() - t0
        assert elapsed >= 19 / 20 - 0.02, elapsed  # a lower bound: slowness only adds to it
        stats = [lim.shared.stats() for lim in (a, b) if lim.shared is not None]
        assert [s.grants for s in stats] == [10, 10]
        assert all(s.state == "shared" for s in stats)
        # a batch of queued callers costs one round trip (+ the PING and join at first use)
        assert all(s.round_trips <= s.grants + 2 for s in stats)
    finally:
        await a.aclose()
        await b.aclose()


@pytest.mark.parametrize("rate", [None, 100.0], ids=["gate-only", "bucket"])
async def test_retry_after_seen_by_one_client_holds_the_others(
    redis_url: str, rate: float | None
) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Who", "?"))
        if seen[-1] == "a":
            return web.json_response(
                {"message": "slow down"}, status=429, headers={"Retry-After": "30"}
            )
        return web.json_response({})

    cfg = LimiterConfig(shared=redis_url, shared_key=unique_key(), rate=rate)
    async with serve({("GET", "/v1/thing"): handler}) as (url, _):
        a = AsyncLightning(url, **CREDS, limits=cfg, retry=RetryPolicy.none())
        b = AsyncLightning(url, **CREDS, limits=cfg)
        async with a, b:
            await b.transport.request("GET", "/v1/thing", headers={"X-Who": "b"})  # connects
            seen.clear()
            with pytest.raises(RateLimitError):
                await a.transport.request("GET", "/v1/thing", headers={"X-Who": "a"})
            assert b.limiter.shared is not None
            for _ in range(500):  # the pause reaches b through Redis
                if b.limiter.shared.stats().pauses_received:
                    break
                await asyncio.sleep(0.01)
            assert b.limiter.shared.stats().pauses_received == 1
            assert b.limiter.stats("read").paused_for > 0
            # and a client that starts while the pause runs finds it in Redis
            c = AsyncLightning(url, **CREDS, limits=cfg)
            async with c:
                held = [
                    asyncio.create_task(
                        x.transport.request("GET", "/v1/thing", headers={"X-Who": w})
                    )
                    for x, w in ((b, "b"), (c, "c"))
                ]
                await asyncio.sleep(0.3)
                assert seen == ["a"]  # b and c hold: nothing sent during the pause
                assert not any(t.done() for t in held)
                for t in held:
                    t.cancel()
                await asyncio.gather(*held, return_exceptions=True)
                assert c.limiter.stats("read").paused_for > 0
                for x in (b, c):  # the cancelled callers left no slot behind
                    assert x.limiter.stats("read").in_flight == 0


async def test_unreachable_redis_is_a_clear_error_before_any_request(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    cfg = LimiterConfig(shared=f"redis://:hunter2@127.0.0.1:{port}/0", rate=10.0)
    caplog.set_level(logging.DEBUG, logger="aiolightning")
    async with emulator.client(limits=cfg) as client:
        before = emulator.counters.snapshot().get("requests", 0)
        with pytest.raises(SharedLimiterError) as info:
            await client.api.auth.get_user()
        message = str(info.value)
        assert "unreachable" in message and f"redis://:***@127.0.0.1:{port}/0" in message
        assert emulator.counters.snapshot().get("requests", 0) == before  # nothing was sent
        assert client.limiter.stats("read").in_flight == 0
    assert "hunter2" not in message + caplog.text + repr(info.value)


async def test_unreachable_redis_with_local_fallback_warns_and_goes_on(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    cfg = LimiterConfig(
        shared=f"redis://:hunter2@127.0.0.1:{port}/0", rate=10.0, on_unavailable="local"
    )
    caplog.set_level(logging.DEBUG, logger="aiolightning")
    async with emulator.client(limits=cfg) as client:
        await client.api.auth.get_user()
        await client.api.auth.get_user()  # on the local limiter now: no second warning
        assert client.limiter.shared is not None
        assert client.limiter.shared.stats().state == "local"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "unreachable" in text and "own limiter" in text and "***" in text
    assert "hunter2" not in caplog.text


async def test_credentials_in_the_redis_url_are_never_logged(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = password_of(redis_url)
    caplog.set_level(logging.DEBUG, logger="aiolightning")
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.json_response({}, status=429, headers={"Retry-After": "0.1"})
        return web.json_response({})

    cfg = LimiterConfig(shared=redis_url, shared_key=unique_key(), rate=50.0)
    wrong = LimiterConfig(shared=redis_url.replace(password, "not-" + password), rate=50.0)
    async with serve({("GET", "/v1/thing"): handler}) as (url, _):
        async with AsyncLightning(url, **CREDS, limits=cfg) as client:
            await client.transport.request("GET", "/v1/thing")  # a 429, a pause, a retry
            assert client.limiter.shared is not None
            shown = [repr(cfg), repr(client.limiter), repr(client.limiter.shared)]
            shown.append(str(client.limiter.shared.stats()))
        async with AsyncLightning(url, **CREDS, limits=wrong) as client:
            with pytest.raises(SharedLimiterError) as info:
                await client.transport.request("GET", "/v1/thing")
    shown += [str(info.value), repr(info.value), caplog.text]
    assert "AuthenticationError" in str(info.value) or "auth" in str(info.value).lower()
    for text in shown:
        assert password not in text, text


async def test_four_processes_share_the_emulator_quota(emulator: Emulator, redis_url: str) -> None:
    # the emulator allows 50 requests/s per credential; four processes share that
    # credential and a LimiterConfig(shared=..., rate=50): together they keep to it
    emulator.config.faults.rate_limit = 50.0
    spec = {"redis": redis_url, "key": unique_key(), "rate": 50.0, "url": emulator.url,
            "user_id": emulator.user_id, "api_key": emulator.api_key, "calls": 50}  # fmt: skip
    pipe = asyncio.subprocess.PIPE
    args = [sys.executable, str(WORKER), json.dumps(spec)]
    procs = [await asyncio.create_subprocess_exec(*args, stdin=pipe, stdout=pipe) for _ in range(4)]
    try:
        for p in procs:
            assert p.stdout is not None
            assert (await p.stdout.readline()).strip() == b"ready"
        before = emulator.counters.snapshot()
        outs = await asyncio.gather(*(p.communicate(b"go\n") for p in procs))
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    after = emulator.counters.snapshot()
    assert all(p.returncode == 0 for p in procs)
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert [r["ok"] for r in reports] == [50] * 4
    sent = after.get("requests", 0) - before.get("requests", 0)
    throttled = after.get("throttled", 0) - before.get("throttled", 0)
    assert sent == sum(r["sent"] for r in reports) == sum(r["grants"] for r in reports)
    # four independent limiters are refused about a quarter of these (bench_fleet.py (d));
    # sharing one bucket, next to none
    assert throttled <= 0.02 * sent, (throttled, sent)
    assert all(r["round_trips"] <= r["sent"] + 2 for r in reports)
