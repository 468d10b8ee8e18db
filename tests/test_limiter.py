"""The per-scope limiter: AIMD cap, pause gate, adaptive rate, token bucket, counters, cancellation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import pytest
from _servers import json_response, serve
from aiohttp import web

from aiolightning import AsyncLightning, RetryPolicy
from aiolightning._limiter import Limiter, LimiterConfig, ScopeConfig, ScopeLimiter
from aiolightning._limiter import _scope as limiter_module

pytestmark = pytest.mark.anyio

CREDS: dict[str, Any] = {"user_id": "user-123", "api_key": "key-abc"}


# --- unit behaviour -----------------------------------------------------------------------


async def test_cap_clamped_to_pool_and_per_scope_overrides() -> None:
    lim = Limiter(
        LimiterConfig(initial=500, max=1000, per_scope={"data": ScopeConfig(initial=4, max=8)}),
        pool_size=100,
    )
    assert lim.stats("read").cap == 100 and lim.stats("read").max == 100
    assert lim.stats("data").cap == 4 and lim.stats("data").max == 8
    assert set(lim.stats()) == {"read", "data"}


async def test_aimd_shrinks_once_per_window_and_grows_back() -> None:
    # the cap alone (the adaptive rate, tested below, would pace these 2,000 requests)
    s = Limiter(LimiterConfig(initial=32, max=32, adaptive_rate=False)).scope("read")
    tickets = [await s.acquire() for _ in range(3)]
    s.release(tickets[0], outcome="throttled")
    assert s.cap == 22  # floor(32 * 0.7)
    s.release(tickets[1], outcome="throttled")  # same window: no second decrease
    assert s.cap == 22
    s.release(tickets[2], outcome="ok")
    t = await s.acquire()
    s.release(t, outcome="throttled")  # a request that started after the decrease
    assert s.cap == 15
    assert s.stats().throttles == 3
    for _ in range(200):
        t = await s.acquire()
        s.release(t)
    assert s.cap > 15
    for _ in range(2000):
        t = await s.acquire()
        s.release(t)
    assert s.cap == 32
    for _ in range(30):  # never below min
        s.release(await s.acquire(), outcome="throttled")
    assert s.cap == 1


async def test_slow_start_until_the_first_throttle_then_one_per_window() -> None:
    s = Limiter(LimiterConfig(initial=4, max=100, adaptive_rate=False)).scope("read")
    for _ in range(10):
        s.release(await s.acquire())
    assert s.cap == 14  # one per success: a burst is not held to the initial cap
    s.release(await s.acquire(), outcome="throttled")
    assert s.cap == 9  # floor(14 * 0.7)
    for _ in range(8):
        s.release(await s.acquire())
    assert s.cap == 9  # after a throttle: one per clean window of `cap` successes
    s.release(await s.acquire())
    assert s.cap == 10
    for _ in range(200):
        s.release(await s.acquire())
    assert s.cap == 22  # windows of 10, 11, ..., 21 successes (186 of the 200)


async def test_cap_bounds_concurrency_and_queue_is_fifo() -> None:
    s = Limiter(LimiterConfig(initial=2, max=2)).scope("write")
    order: list[int] = []
    active = 0
    peak = 0

    async def worker(i: int) -> None:
        nonlocal active, peak
        t = await s.acquire()
        active += 1
        peak = max(peak, active)
        order.append(i)
        await asyncio.sleep(0.01)
        active -= 1
        s.release(t)

    tasks = []
    for i in range(10):
        tasks.append(asyncio.create_task(worker(i)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert peak == 2
    assert order == list(range(10))
    assert s.stats().in_flight == 0 and s.stats().waiting == 0


async def test_token_bucket_paces_requests() -> None:
    s = Limiter(LimiterConfig(rate=20, burst=1)).scope("presign")
    t0 = time.monotonic()
    for _ in range(10):
        s.release(await s.acquire())
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.4  # 9 intervals of 50 ms after the first token; can't be faster


async def test_token_bucket_burst_is_immediate() -> None:
    s = Limiter(LimiterConfig(rate=1, burst=5)).scope("x")
    t0 = time.monotonic()
    for _ in range(5):
        s.release(await s.acquire())
    assert time.monotonic() - t0 < 0.5
    with anyio.move_on_after(0.1) as scope:
        await s.acquire()
    assert scope.cancelled_caught  # the sixth waits ~1 s
    assert s.stats().in_flight == 0 and s.stats().waiting == 0


async def test_cancelled_waiters_leak_no_slot() -> None:
    s = Limiter(LimiterConfig(initial=1, max=1)).scope("read")
    held = await s.acquire()
    got: list[int] = []

    async def waiter(i: int) -> None:
        t = await s.acquire()
        got.append(i)
        s.release(t)

    tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
    await asyncio.sleep(0.01)
    assert s.stats().waiting == 5
    for i in (0, 2, 4):
        tasks[i].cancel()
    await asyncio.sleep(0)
    s.release(held)
    await asyncio.gather(*tasks, return_exceptions=True)
    assert got == [1, 3]
    assert s.stats().in_flight == 0 and s.stats().waiting == 0

    # granted a slot, then cancelled before it ran: the slot comes back
    held = await s.acquire()
    task = asyncio.create_task(waiter(9))
    await asyncio.sleep(0.01)
    s.release(held)  # hands the slot to the waiter...
    task.cancel()  # ...which is cancelled before it resumes
    await asyncio.gather(task, return_exceptions=True)
    assert s.stats().in_flight == 0
    t = await s.acquire()  # and the slot is usable
    s.release(t)


async def test_slot_context_manager_records_outcomes() -> None:
    lim = Limiter(LimiterConfig(initial=10, max=10, pause_jitter=0))
    async with lim.slot("data") as slot:
        assert lim.stats("data").in_flight == 1
        slot.throttle(retry_after=0.2)
    st = lim.stats("data")
    assert st.in_flight == 0 and st.throttles == 1 and st.cap == 7 and st.paused_for > 0
    with pytest.raises(RuntimeError):
        async with lim.slot("data"):
            raise RuntimeError("x")
    assert lim.stats("data").errors == 1


# --- against a server ---------------------------------------------------------------------


async def test_pause_gate_holds_every_caller_of_the_scope() -> None:
    arrivals: list[tuple[float, str]] = []
    first = {"done": False}
    throttled = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        arrivals.append((time.monotonic(), request.path))
        if request.path == "/v1/limited" and not first["done"]:
            first["done"] = True
            throttled.set()
            return json_response({"message": "slow down"}, 429, {"Retry-After": "1"})
        return json_response({"ok": True})

    async with serve(catch_all=handler) as (url, _):
        async with AsyncLightning(url, **CREDS) as c:
            t_limited = asyncio.create_task(c.transport.request("GET", "/v1/limited"))
            await throttled.wait()
            await asyncio.sleep(0.05)
            throttled_at = arrivals[0][0]
            st = c.limiter.stats("read")
            assert st.paused_for > 0.5 and st.throttles == 1
            others = [
                asyncio.create_task(c.transport.request("GET", f"/v1/other/{i}")) for i in range(10)
            ]
            # another scope is not paused
            assert await c.transport.request("POST", "/v1/write") == {"ok": True}
            await asyncio.sleep(0.5)
            reads_during_pause = [p for t, p in arrivals if p != "/v1/write" and t > throttled_at]
            assert reads_during_pause == []
            assert c.limiter.stats("read").waiting == 10
            results = await asyncio.gather(t_limited, *others)
            assert all(r == {"ok": True} for r in results)
    later = [t for t, p in arrivals[1:] if p != "/v1/write"]
    assert len(later) == 11
    assert min(later) - throttled_at >= 0.9


async def test_aimd_against_server_shrinks_on_429_and_grows_back() -> None:
    state = {"throttle": 3}
    peak = {"now": 0, "max": 0}

    async def handler(request: web.Request) -> web.Response:
        peak["now"] += 1
        peak["max"] = max(peak["max"], peak["now"])
        try:
            await asyncio.sleep(0.002)
            if state["throttle"] > 0:
                state["throttle"] -= 1
                return json_response({"message": "slow"}, 429)
            return json_response({"ok": True})
        finally:
            peak["now"] -= 1

    policy = RetryPolicy(base=0.001, jitter=False, max_attempts=10)
    async with serve(catch_all=handler) as (url, _):
        async with AsyncLightning(
            url, retry=policy, limits=LimiterConfig(initial=8, max=8), **CREDS
        ) as c:
            await c.transport.request("GET", "/v1/x")
            shrunk = c.limiter.stats("read").cap
            assert shrunk < 8
            for _ in range(20):
                await asyncio.gather(*(c.transport.request("GET", "/v1/x") for _ in range(8)))
            st = c.limiter.stats("read")
            assert st.cap == 8 and st.throttles == 3 and st.in_flight == 0
    assert peak["max"] <= 8


async def test_cancelling_a_request_frees_its_slot_and_aborts_it() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return json_response({})

    async with serve(catch_all=slow) as (url, _):
        async with AsyncLightning(url, limits=LimiterConfig(initial=1, max=1), **CREDS) as c:
            task = asyncio.create_task(c.transport.request("GET", "/v1/slow"))
            queued = asyncio.create_task(c.transport.request("GET", "/v1/slow"))
            await started.wait()
            assert c.limiter.stats("read").in_flight == 1
            assert c.limiter.stats("read").waiting == 1
            queued.cancel()
            task.cancel()
            await asyncio.gather(task, queued, return_exceptions=True)
            st = c.limiter.stats("read")
            assert st.in_flight == 0 and st.waiting == 0
            with anyio.fail_after(5):
                await cancelled.wait()  # the server saw the request go away
            with anyio.move_on_after(0.1):
                await c.transport.request("GET", "/v1/slow")
            assert c.limiter.stats("read").in_flight == 0


@pytest.mark.parametrize(
    ("config", "throttled"),
    [
        (LimiterConfig(initial=5, max=5, pause_jitter=0.0, adaptive_rate=False), 0.05),
        # a bucket that makes callers wait, adapted on each throttle (fewer of them: every
        # throttle lowers the rate, and 5 % would hold it near the floor for many seconds)
        (
            LimiterConfig(
                initial=5, max=5, pause_jitter=0.0, rate=3000, burst=2, adaptive_rate=True
            ),
            0.01,
        ),
    ],
    ids=["cap-only", "adaptive-bucket"],
)
async def test_stress_random_cancellations_throttles_and_pauses_leak_nothing(
    config: LimiterConfig, throttled: float
) -> None:
    import random

    rng = random.Random(7)
    s = Limiter(config).scope("read")
    peak = 0

    async def user() -> None:
        nonlocal peak
        t = await s.acquire()
        peak = max(peak, s.in_flight)
        try:
            await asyncio.sleep(rng.random() * 0.002)
        finally:
            r = rng.random()
            if r < throttled:
                s.release(t, outcome="throttled", retry_after=0.01)
            elif r < throttled + 0.05:
                s.release(t, outcome="error")
            else:
                s.release(t)

    tasks = [asyncio.create_task(user()) for _ in range(500)]
    for _ in range(100):
        await asyncio.sleep(0.001)
        rng.choice(tasks).cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    st = s.stats()
    assert st.in_flight == 0 and st.waiting == 0
    assert peak <= 5
    assert 1 <= st.cap <= 5
    t = await s.acquire()  # still usable
    s.release(t)


# --- adaptive rate ------------------------------------------------------------------------


class FakeClock:
    """Stands in for ``time.monotonic`` inside the limiter (never goes backwards)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def send(s: ScopeLimiter, clock: FakeClock, n: int, every: float) -> None:
    """``n`` requests, one every ``every`` s of fake time, each answered at once."""
    for _ in range(n):
        clock.now += every
        t = await s.acquire()
        s.release(t)


async def test_no_throttle_no_bucket_and_send_rate_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(limiter_module, "_monotonic", clock)
    s = Limiter().scope("read")
    await send(s, clock, 200, 0.025)  # 40 requests/s for 5 s
    st = s.stats()
    assert st.rate is None and st.rate_max is None  # no bucket: nothing paces the fast path
    assert 38 <= st.measured_rate <= 42
    for _ in range(1000):  # errors are not throttles
        s.release(await s.acquire(), outcome="error")
    assert s.stats().rate is None


async def test_adaptive_rate_follows_cubic_after_a_throttle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(limiter_module, "_monotonic", clock)
    s = Limiter(LimiterConfig(initial=64, max=64)).scope("read")
    await send(s, clock, 200, 0.025)  # 40 requests/s
    old = await s.acquire()
    t = await s.acquire()
    clock.now += 0.025
    s.release(t, outcome="throttled")
    st = s.stats()
    w_max = st.rate_max
    assert w_max is not None and 38 <= w_max <= 42  # W_max = the send rate when throttled
    assert st.rate == pytest.approx(0.7 * w_max)  # x beta
    assert st.cap == 44  # and the AIMD cap came down, once
    s.release(old, outcome="throttled")  # sent before the decrease: no second one
    assert s.stats().rate == pytest.approx(0.7 * w_max) and s.stats().cap == 44
    k = (w_max * 0.3 / 0.4) ** (1 / 3)
    # keep sending at 25/s (under the bucket): after K seconds the rate is back at W_max
    await send(s, clock, round(k * 25), 0.04)
    assert s.stats().rate == pytest.approx(w_max, rel=0.05)
    # then it probes above W_max, up to twice the measured send rate
    await send(s, clock, 100, 0.04)
    st = s.stats()
    assert 24 <= st.measured_rate <= 26
    assert st.rate == pytest.approx(2 * st.measured_rate, rel=0.01) and st.rate > w_max
    # the next throttle takes the lower of the measured rate and the bucket's
    t = await s.acquire()
    clock.now += 0.04
    s.release(t, outcome="throttled")
    st = s.stats()
    assert st.rate_max == pytest.approx(st.measured_rate)
    assert st.rate == pytest.approx(0.7 * st.measured_rate)


async def test_fixed_rate_is_not_adapted_unless_asked() -> None:
    s = Limiter(LimiterConfig(rate=1000, burst=10)).scope("x")
    for _ in range(3):
        s.release(await s.acquire(), outcome="throttled")
    st = s.stats()
    assert st.rate == 1000 and st.rate_max is None and st.cap < 32
    a = Limiter(LimiterConfig(rate=1000, burst=10, adaptive_rate=True)).scope("x")
    assert a.stats().rate == 1000
    a.release(await a.acquire(), outcome="throttled")
    assert a.stats().rate is not None and a.stats().rate < 1000  # type: ignore[operator]
    off = Limiter(LimiterConfig(adaptive_rate=False)).scope("x")
    off.release(await off.acquire(), outcome="throttled")
    assert off.stats().rate is None and off.stats().cap == 22  # AIMD only, as before


async def test_pause_gate_releases_queued_callers_spread_out() -> None:
    s = Limiter(LimiterConfig(pause_jitter=0.0, pause_spread=0.5, adaptive_rate=False)).scope(
        "read"
    )
    s.pause(0.3)  # callers queued when it opens go through over 0.15 s
    t0 = time.monotonic()
    granted: list[float] = []

    async def caller() -> None:
        t = await s.acquire()
        granted.append(time.monotonic() - t0)
        s.release(t)

    await asyncio.gather(*(caller() for _ in range(10)))
    # the n-th of 10 no earlier than opening + 0.15 * n / 10 (timers never fire early, so
    # only lower bounds: a loaded machine makes grants late, never early)
    for n, at in enumerate(sorted(granted)):
        assert at >= 0.29 + 0.15 * n / 10
    assert s.stats().paused_until is None and s.paused_until == 0.0
    t = await s.acquire()  # the gate is open again: the fast path
    s.release(t)


async def test_adaptive_rate_learns_a_server_token_bucket() -> None:
    rate, n = 100.0, 500
    bucket = {"tokens": rate, "at": time.monotonic()}
    statuses: list[int] = []

    async def limited(request: web.Request) -> web.Response:
        await asyncio.sleep(0.005)
        now = time.monotonic()
        bucket["tokens"] = min(rate, bucket["tokens"] + (now - bucket["at"]) * rate)
        bucket["at"] = now
        if bucket["tokens"] >= 1.0:
            bucket["tokens"] -= 1.0
            statuses.append(200)
            return json_response({"ok": True})
        statuses.append(429)  # like the emulator and most servers: whole seconds
        return json_response({"message": "slow down"}, 429, {"Retry-After": "1"})

    async with serve(catch_all=limited) as (url, _):
        async with AsyncLightning(url, retry=RetryPolicy(max_attempts=10), **CREDS) as c:
            sem = asyncio.Semaphore(32)

            async def call() -> Any:
                async with sem:
                    return await c.transport.request("GET", "/v1/x")

            results = await asyncio.gather(*(call() for _ in range(n)))
            assert all(r == {"ok": True} for r in results)
            st = c.limiter.stats("read")
    assert st.rate is not None and st.rate_max is not None
    assert rate / 2 <= st.rate <= rate * 2.5  # near the server's rate (the curve probes above)
    assert rate / 2 <= st.rate_max <= rate * 2.5
    later = statuses[len(statuses) // 2 :]
    assert later.count(429) / len(later) <= 0.1  # throttles are rare once learned
    assert statuses.count(200) == n


def test_stats_say_why_the_pool_size_caps_a_scopes_max() -> None:
    capped = Limiter(LimiterConfig(max=256), pool_size=100).stats("read")
    assert capped.max == 100
    assert capped.max_limited_by is not None
    assert "100" in capped.max_limited_by and "256" in capped.max_limited_by
    assert "connector_limit" in capped.max_limited_by
    free = Limiter(LimiterConfig(max=64), pool_size=100).stats("read")
    assert (free.max, free.max_limited_by) == (64, None)
