"""The client end to end against the emulator: auth modes, throttling, injected faults."""

from __future__ import annotations

import asyncio

import pytest

from aiolightning import AsyncLightning, AuthenticationError, RetryPolicy
from aiolightning._auth import AuthMode
from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["basic", "jwt"])
async def test_whoami_with_each_auth_mode(mode: AuthMode) -> None:
    async with Emulator(seed=0) as emu:
        async with emu.client(auth=mode) as c:
            me = await c.transport.request("GET", "/v1/auth/whoami")
            assert me["userId"] == emu.user_id
        async with AsyncLightning(
            emu.url,
            user_id=emu.user_id,
            api_key="wrong",
            auth=mode,
            retry=RetryPolicy.none(),
        ) as c:
            with pytest.raises(AuthenticationError):
                await c.transport.request("GET", "/v1/auth/whoami")


async def test_rate_limited_emulator_every_call_succeeds() -> None:
    async with Emulator(seed=0) as emu:
        emu.config.faults.rate_limit = 100
        emu.config.faults.rate_burst = 20
        async with emu.client() as c:
            results = await asyncio.gather(
                *(c.transport.request("GET", "/v1/auth/whoami") for _ in range(60))
            )
            assert all(r["userId"] == emu.user_id for r in results)
            st = c.limiter.stats("read")
            throttled = emu.counters.snapshot().get("throttled", 0)
            assert st.throttles == throttled >= 1
            # slow start would have grown the cap by one per success (32 + 60): it came down
            assert st.cap <= int(0.7 * (32 + 60)) + 1
            assert st.requests == 60 + st.retries


async def test_injected_5xx_and_dropped_connections_are_retried() -> None:
    async with Emulator(seed=1) as emu:
        emu.config.faults.error_rate = 0.3
        emu.config.faults.drop_rate = 0.1
        policy = RetryPolicy(max_attempts=12, base=0.001, max_wait=0.01)
        async with emu.client(retry=policy) as c:
            results = await asyncio.gather(
                *(c.transport.request("GET", "/v1/auth/whoami") for _ in range(40))
            )
            assert len(results) == 40
            assert c.limiter.stats("read").retries > 0
