"""The issue's end-to-end case, on the TLS emulator (``Emulator(tls=True)``) and the suite's
forward proxy (tests/_proxy.py), with the CA the client needs given only by
``REQUESTS_CA_BUNDLE`` and the proxy only by ``HTTPS_PROXY``:

* through a TLS-inspecting proxy (as corporate proxies are): a 64 MiB upload and download,
  a studio start and a job submit; the proxy's own log holds every request the emulator
  answered, presigned part PUTs and ranged GETs included, request for request;
* through a plain CONNECT proxy with credentials, in Basic and JWT modes: tunnels to both
  origins (the API and the storage listener), and neither the API key nor a token ever
  addressed to the proxy.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from _proxy import ForwardProxy, ProxyEntry
from _storage import PART, MiB, small_config
from conftest import PROXY_CREDENTIALS

from aiolightning import AsyncLightning
from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio

ENV = (
    "LIGHTNING_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def environment_client(emu: Emulator, **options: object) -> AsyncLightning:
    """A client on ``emu`` that takes its CA and proxy from the environment only
    (``emu.client()`` alone would trust ``emu.ca_file`` by itself)."""
    client = emu.client(verify=True, **options)
    assert "tls=REQUESTS_CA_BUNDLE" in repr(client)
    return client


def emulator_counts(emu: Emulator) -> Counter[str]:
    """What the emulator answered: ``"METHOD /route/{template}"`` -> number of requests."""
    snap = emu.counters.snapshot()
    counts = Counter({k.removeprefix("requests:"): v for k, v in snap.items()
                      if k.startswith("requests:")})  # fmt: skip
    assert counts.total() == snap["requests"]
    return counts


def template_of(entry: ProxyEntry, templates: Counter[str]) -> str:
    """The emulator's route template a logged request matches (the most specific one: a
    ``{path}`` can span segments)."""
    assert entry.path is not None
    path = entry.path.split("?", 1)[0]
    found = [
        t
        for t in templates
        if t.startswith(f"{entry.method} ")
        and re.fullmatch(re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(t.split(" ", 1)[1])), path)
    ]
    assert found, f"no route of the emulator matches {entry.method} {path}"
    return max(found, key=lambda t: len(re.sub(r"\{[^}]*\}", "", t)))


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_64_mib_a_studio_and_a_job_through_an_inspecting_proxy_over_tls(
    tls_emulator: Emulator,
    inspecting_proxy: ForwardProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu, proxy = tls_emulator, inspecting_proxy
    assert emu.ca_file is not None
    # the client sees the proxy's certificates (it ends TLS): the bundle holds that CA
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", proxy.bundle_with(emu.ca_file))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    emu.config.faults.redirect_downloads = True  # ranges from presigned URLs on storage_url
    data = os.urandom(64 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    async with environment_client(emu) as c:
        c.storage.configure(
            small_config(
                tmp_path, multipart_threshold=8 * MiB, part_size=8 * MiB,
                download_threshold=8 * MiB, download_part_size=8 * MiB,
                byte_budget=32 * MiB, write_chunk=2 * MiB, read_chunk=2 * MiB,
            )
        )  # fmt: skip
        await c.storage.upload(src, "e2e/big.bin")
        await c.storage.download("e2e/big.bin", tmp_path / "out.bin")
        await c.studios.create("tls-dev")
        await c.studios.start("tls-dev", "cpu-4", timeout=30)
        await c.jobs.submit("tls-job", "echo hi", image="ubuntu")
    assert (tmp_path / "out.bin").read_bytes() == data
    del data

    inside = [e for e in proxy.log if e.inspected]
    tunnels = [e for e in proxy.log if not e.inspected]
    # every request went through the proxy, and the proxy read each one: request for
    # request, route for route, what the emulator answered is what the proxy logged
    counts = emulator_counts(emu)
    assert Counter(template_of(e, counts) for e in inside) == counts
    assert [(e.method, e.status) for e in tunnels] == [("CONNECT", 200)] * len(inside)
    api, storage = port_of(emu.url), port_of(emu.storage_url)
    assert {e.target for e in tunnels} == {f"127.0.0.1:{api}", f"127.0.0.1:{storage}"}
    # the presigned part PUTs (8 x 8 MiB) and the ranged GETs of the presigned URL
    puts = [
        e for e in inside if e.method == "PUT" and (e.path or "").startswith("/_storage/parts/")
    ]
    assert len(puts) == 8 and {e.port for e in puts} == {api}
    ranged = [e for e in inside if e.port == storage and e.method == "GET"]
    assert len(ranged) == 8 and {e.status for e in ranged} == {206}
    assert all((e.header("Range") or "").startswith("bytes=") for e in ranged)
    assert not [e for e in puts + ranged if e.header("Authorization") is not None]
    # the studio start and the job submit went through too
    assert counts["POST /v1/projects/{projectId}/cloudspaces/{id}/start"] == 1
    assert counts["POST /v1/projects/{projectId}/jobs"] == 1
    # the API key went to the origin inside TLS, never in a request addressed to the proxy
    assert not proxy.saw(emu.api_key)


@pytest.mark.parametrize("auth", ["basic", "jwt"])
async def test_plain_tunnels_to_both_origins_never_carry_the_api_credentials(
    tls_emulator: Emulator,
    auth_proxy: ForwardProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    auth: str,
) -> None:
    emu, proxy = tls_emulator, auth_proxy
    assert emu.ca_file is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_file)  # the proxy only tunnels
    monkeypatch.setenv("HTTPS_PROXY", proxy.url_with_credentials())
    emu.config.faults.redirect_downloads = True
    data = os.urandom(3 * PART + 5)
    (tmp_path / "src.bin").write_bytes(data)
    async with environment_client(emu, auth=auth) as c:
        c.storage.configure(small_config(tmp_path))
        await c.api.auth.get_user()
        await c.storage.upload(tmp_path / "src.bin", "e2e/src.bin")
        await c.storage.download("e2e/src.bin", tmp_path / "out.bin")
        await c.jobs.submit("tunnel-job", "echo hi", image="ubuntu")
        header = c.transport.auth.header
    assert (tmp_path / "out.bin").read_bytes() == data
    assert header is not None and header.startswith("Bearer " if auth == "jwt" else "Basic ")
    if auth == "jwt":
        assert emu.counters.get("requests:POST /v1/auth/login") == 1
    user, password = PROXY_CREDENTIALS
    api, storage = port_of(emu.url), port_of(emu.storage_url)
    assert {(e.method, e.status, e.user) for e in proxy.log} == {("CONNECT", 200, user)}
    assert proxy.targets() == {f"127.0.0.1:{api}", f"127.0.0.1:{storage}"}
    assert emu.counters.get("storage:presigned_gets") >= 1
    # what reached the proxy: its own credentials, and nothing of the Lightning account's
    assert proxy.saw(password)
    assert not proxy.saw(emu.api_key)
    assert not proxy.saw(header.split(" ", 1)[1])  # the Basic pair or the JWT
    assert not [e for e in proxy.log if e.header("Authorization") is not None]
