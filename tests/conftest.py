from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from _proxy import ForwardProxy
from _redis_server import redis_server
from _storage import small_config

from aiolightning import AsyncLightning
from aiolightning.emulator import Emulator, EmulatorConfig, Timings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fast_timings() -> Timings:
    """Short simulated durations so lifecycles finish in well under a second."""
    return Timings(
        studio_start=0.2,
        studio_stop=0.05,
        studio_switch=0.2,
        job_pending=0.05,
        job_creating=0.05,
        job_running=0.2,
        job_finishing=0.05,
        job_stop=0.05,
        command=0.02,
    )


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``redis-server`` for the session (``redis://:<password>@127.0.0.1:<port>/0``);
    skips, saying why, when the binary cannot be found."""
    try:
        with redis_server(tmp_path_factory.mktemp("redis")) as url:
            yield url
    except FileNotFoundError as exc:
        print(f"skipping the shared-limiter tests: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """A fresh in-process emulator (seed 0, fast timings, admin routes on) per test.

    `emulator.url`, `.user_id`, `.api_key`, `.teamspace_id`, `.config` (live knobs),
    `.counters.snapshot()`.
    """
    async with Emulator(seed=0, config=EmulatorConfig(timings=fast_timings(), admin=True)) as emu:
        yield emu


@pytest.fixture
async def emu_http(emulator: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session on the `emulator` fixture: base URL set, Basic auth header."""
    headers = {"Authorization": aiohttp.encode_basic_auth(emulator.user_id, emulator.api_key)}
    async with aiohttp.ClientSession(base_url=emulator.url, headers=headers) as s:
        yield s


@pytest.fixture
async def storage_client(emulator: Emulator, tmp_path: Path) -> AsyncIterator[AsyncLightning]:
    """An AsyncLightning on the `emulator` fixture, its storage set to `small_config`."""
    async with emulator.client() as c:
        c.storage.configure(small_config(tmp_path))
        yield c


@pytest.fixture
async def tls_emulator() -> AsyncIterator[Emulator]:
    """Like `emulator`, over https: `tls_emulator.ca_file` is the PEM file of its private CA
    (trust it: `ssl.create_default_context(cafile=tls_emulator.ca_file)`)."""
    config = EmulatorConfig(timings=fast_timings(), admin=True)
    async with Emulator(seed=0, config=config, tls=True) as emu:
        yield emu


@pytest.fixture
async def forward_proxy() -> AsyncIterator[ForwardProxy]:
    """A CONNECT-capable forward proxy on 127.0.0.1 (tests/_proxy.py): `.url`, and `.log`,
    one `ProxyEntry(method, host, port, path, status, user)` per request or tunnel (with
    `.header(name)`: what it forwarded); `.saw(secret)`: whether a secret was addressed to it."""
    async with ForwardProxy() as proxy:
        yield proxy


PROXY_CREDENTIALS = ("proxy-user", "proxy-secret-6f1c")


@pytest.fixture
async def auth_proxy() -> AsyncIterator[ForwardProxy]:
    """`forward_proxy` requiring Basic proxy credentials (`PROXY_CREDENTIALS`); without them
    it answers 407. `.url_with_credentials()` is its URL with the user and password in it."""
    async with ForwardProxy(credentials=PROXY_CREDENTIALS) as proxy:
        yield proxy


@pytest.fixture
async def inspecting_proxy(tls_emulator: Emulator) -> AsyncIterator[ForwardProxy]:
    """`forward_proxy` inspecting TLS, as corporate proxies do, in front of `tls_emulator`:
    it ends each tunnel's TLS with a certificate of its own CA and logs every request inside
    (`inspected=True`). Clients trust `inspecting_proxy.bundle_with(tls_emulator.ca_file)`."""
    async with ForwardProxy(inspect=True, upstream_ca=tls_emulator.ca_file) as proxy:
        yield proxy
