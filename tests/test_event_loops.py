"""An AsyncLightning belongs to the event loop it first ran on: another loop gets a clear
error (not aiohttp's ``Event loop is closed``), and the client can still be closed there."""

from __future__ import annotations

import asyncio
import threading

import pytest

from aiolightning.emulator import EmulatorThread


def test_a_second_asyncio_run_gets_a_clear_error_and_can_close_the_client() -> None:
    with EmulatorThread() as emu:
        client = emu.client()

        async def whoami() -> str:
            return (await client.api.auth.whoami()).user_id

        assert asyncio.run(whoami()) == emu.user_id
        with pytest.raises(RuntimeError) as err:
            asyncio.run(whoami())
        text = str(err.value)
        assert "first used on another event loop, which is now closed" in text
        assert "asyncio.run()" in text and "aiolightning.Lightning" in text
        asyncio.run(client.close())
        assert client.closed


def test_a_loop_still_running_elsewhere_is_named_too() -> None:
    with EmulatorThread() as emu:
        client = emu.client()
        first = asyncio.new_event_loop()
        runner = threading.Thread(target=first.run_forever, daemon=True)
        runner.start()
        try:
            asyncio.run_coroutine_threadsafe(client.api.auth.whoami(), first).result(30)
            with pytest.raises(RuntimeError, match="which is still open"):
                asyncio.run(client.api.auth.whoami())
        finally:
            asyncio.run_coroutine_threadsafe(client.close(), first).result(30)
            first.call_soon_threadsafe(first.stop)
            runner.join(30)
            first.close()
