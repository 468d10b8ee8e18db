"""Emulator fault knobs: latency, rate limit, 5xx, dropped connections, admin routes."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from aiolightning.emulator import Emulator, EmulatorConfig, Faults

pytestmark = pytest.mark.anyio


async def _timed_get(s: aiohttp.ClientSession, path: str) -> float:
    t = time.perf_counter()
    async with s.get(path) as r:
        assert r.status == 200
        await r.read()
    return time.perf_counter() - t


async def test_latency(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    await _timed_get(emu_http, "/v1/auth/whoami")  # the first request pays one-off costs
    base = await _timed_get(emu_http, "/v1/auth/whoami")
    emulator.config.faults.latency = 0.2
    slow = await _timed_get(emu_http, "/v1/auth/whoami")
    assert slow >= 0.18
    assert slow > base
    emulator.config.faults.latency = 0.0
    emulator.config.faults.latency_jitter = 0.1
    jittered = [await _timed_get(emu_http, "/v1/auth/whoami") for _ in range(5)]
    assert max(jittered) < 0.5
    assert emulator.counters.get("faults:latency") == 6  # the warm-up had none


async def test_latency_not_on_admin_routes(
    emulator: Emulator, emu_http: aiohttp.ClientSession
) -> None:
    emulator.config.faults.latency = 0.5
    t = await _timed_get(emu_http, "/_emulator/counters")
    assert t < 0.3


async def test_rate_limit_429_retry_after(
    emulator: Emulator, emu_http: aiohttp.ClientSession
) -> None:
    emulator.config.faults.rate_limit = 2.0
    emulator.config.faults.rate_burst = 3.0
    statuses = []
    for _ in range(5):
        async with emu_http.get("/v1/auth/whoami") as r:
            statuses.append(r.status)
            if r.status == 429:
                assert r.reason == "Too Many Requests"
                retry_after = r.headers["Retry-After"]
                assert retry_after.isdigit() and int(retry_after) >= 1
                body = await r.json()
                assert body["code"] == 8
                assert body["details"] == []
                assert "rate limit" in body["message"]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    assert emulator.counters.get("throttled") == 2
    # a different credential has its own bucket
    async with aiohttp.ClientSession() as anon, anon.get(emulator.url + "/v1/auth/whoami") as r:
        assert r.status == 401
    # the bucket refills at rate_limit/s
    await asyncio.sleep(0.6)
    async with emu_http.get("/v1/auth/whoami") as r:
        assert r.status == 200


async def test_retry_after_from_bucket(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    emulator.config.faults.rate_limit = 0.25  # one token every 4 s
    emulator.config.faults.rate_burst = 1.0
    async with emu_http.get("/v1/auth/whoami") as r:
        assert r.status == 200
    async with emu_http.get("/v1/auth/whoami") as r:
        assert r.status == 429
        assert int(r.headers["Retry-After"]) == 4


async def test_error_rate_5xx(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    emulator.config.faults.error_rate = 1.0
    seen = set()
    for _ in range(10):
        async with emu_http.get("/v1/auth/whoami") as r:
            assert r.status in (500, 503)
            seen.add(r.status)
            body = await r.json()
            assert body["code"] in (13, 14)
            assert "injected" in body["message"]
    assert seen == {500, 503}  # both kinds show up (seeded)
    assert emulator.counters.get("faults:error") == 10
    emulator.config.faults.error_rate = 0.0
    async with emu_http.get("/v1/auth/whoami") as r:
        assert r.status == 200


async def test_drop_rate_connection_error(
    emulator: Emulator, emu_http: aiohttp.ClientSession
) -> None:
    emulator.config.faults.drop_rate = 1.0
    for _ in range(3):
        with pytest.raises(aiohttp.ClientConnectionError):
            async with emu_http.get("/v1/auth/whoami") as r:
                await r.read()
    # aiohttp re-sends once when a kept-alive connection dies, so there may be more
    assert emulator.counters.get("faults:drop") >= 3
    emulator.config.faults.drop_rate = 0.0
    async with emu_http.get("/v1/auth/whoami") as r:
        assert r.status == 200


async def test_faults_set_at_start() -> None:
    config = EmulatorConfig(faults=Faults(error_rate=1.0))
    async with Emulator(config=config) as emu, aiohttp.ClientSession() as s:
        headers = {"Authorization": aiohttp.encode_basic_auth(emu.user_id, emu.api_key)}
        async with s.get(emu.url + "/v1/auth/whoami", headers=headers) as r:
            assert r.status >= 500


async def test_admin_routes(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    async with emu_http.get("/v1/auth/whoami") as r:
        assert r.status == 200
    async with emu_http.get("/_emulator/counters") as r:
        counters = await r.json()
    assert counters["requests"] == 1
    assert counters["requests:GET /v1/auth/whoami"] == 1
    assert counters["responses:200"] == 1
    async with emu_http.patch(
        "/_emulator/config", json={"faults": {"rate_limit": 5, "latency": 0.01}}
    ) as r:
        assert r.status == 200
        cfg = await r.json()
    assert cfg["faults"]["rate_limit"] == 5
    assert emulator.config.faults.rate_limit == 5.0
    assert emulator.config.faults.latency == 0.01
    async with emu_http.patch(
        "/_emulator/config", json={"timings": {"job_outcome": "fail", "studio_start": 1}}
    ) as r:
        assert r.status == 200
    assert emulator.config.timings.job_outcome == "fail"
    async with emu_http.patch("/_emulator/config", json={"faults": {"nope": 1}}) as r:
        assert r.status == 400
        assert "config.faults.nope" in (await r.json())["message"]
    async with emu_http.patch("/_emulator/config", json={"faults": {"latency": "slow"}}) as r:
        assert r.status == 400
    async with emu_http.get("/_emulator/config") as r:
        assert (await r.json())["timings"]["studio_start"] == 1.0
    async with emu_http.delete("/_emulator/counters") as r:
        assert r.status == 200
    assert emulator.counters.snapshot() == {}


async def test_admin_routes_absent_by_default() -> None:
    async with Emulator() as emu, aiohttp.ClientSession() as s:
        for path in ("/_emulator/counters", "/_emulator/config"):
            async with s.get(emu.url + path) as r:
                assert r.status == 404
                assert (await r.json())["code"] == 5
