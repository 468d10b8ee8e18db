"""The issue's end-to-end case: a 64 MiB upload and download, a studio start and a job
submit through a forward proxy, over TLS with a private CA given only by REQUESTS_CA_BUNDLE,
and the proxy's log shows every request.

The emulator serves plain http; here it also gets TLS listeners (trustme certificates) on
its own aiohttp runner and hands out https URLs. This stands in for ``Emulator(tls=True)``.
The listeners are on 127.0.0.2 while the URLs say 127.0.0.3, which only the proxy maps to
127.0.0.2: a request that went around the proxy could not connect at all.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _loopback_proxy import forward_proxy
from _storage import MiB, small_config
from _tls import make_ca
from aiohttp import web

from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio

HOST = "127.0.0.3"  # what the URLs say; the proxy alone knows it means LISTEN
LISTEN = "127.0.0.2"


async def tls_front(emu: Emulator, ctx: object) -> None:
    """TLS listeners for the API and storage origins; the emulator's URLs become https."""
    runner = emu._runner
    assert runner is not None
    urls = []
    for _ in range(2):
        site = web.TCPSite(runner, LISTEN, 0, ssl_context=ctx)  # type: ignore[arg-type]
        await site.start()
        urls.append(f"https://{HOST}:{runner.addresses[-1][1]}")
    emu.url, emu.storage_url = urls
    emu.state.base_url = emu.url


@pytest.fixture
async def tls_emulator(emulator: Emulator, tmp_path: Path) -> AsyncIterator[tuple[Emulator, Path]]:
    ca = make_ca(tmp_path)
    await tls_front(emulator, ca.server_context(HOST))
    yield emulator, ca.ca_file


async def test_storage_studio_and_job_through_a_proxy_over_tls(
    tls_emulator: tuple[Emulator, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, ca_file = tls_emulator
    for name in ("LIGHTNING_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    emu.config.faults.redirect_downloads = True  # ranges from presigned URLs on storage_url
    data = os.urandom(64 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    async with forward_proxy(hosts={HOST: LISTEN}) as (proxy_url, log):
        monkeypatch.setenv("HTTPS_PROXY", proxy_url)
        async with emu.client() as c:
            c.storage.configure(
                small_config(
                    tmp_path, part_size=8 * MiB, download_part_size=8 * MiB,
                    byte_budget=64 * MiB, write_chunk=2 * MiB, read_chunk=2 * MiB,
                )
            )  # fmt: skip
            await c.storage.upload(src, "e2e/big.bin")
            await c.storage.download("e2e/big.bin", tmp_path / "out.bin")
            await c.studios.create("tls-dev")
            await c.studios.start("tls-dev", "cpu-4", timeout=30)
            await c.jobs.submit("tls-job", "echo hi", image="ubuntu")
    assert (tmp_path / "out.bin").read_bytes() == data
    # every connection was a tunnel through the proxy (nothing else could connect), to
    # both origins: the API (control calls, part PUTs) and the storage (ranged GETs)
    tunnels = log.methods("CONNECT")
    assert len(log.requests) == len(tunnels) > 0
    assert set(tunnels) == {u.removeprefix("https://") for u in (emu.url, emu.storage_url)}
    snap = emu.counters.snapshot()
    assert snap.get("storage:authorization_header_seen", 0) == 0
