"""Proxies, against a real forward proxy on loopback (tests/_proxy.py) and the
emulator: the environment's HTTPS_PROXY/HTTP_PROXY/NO_PROXY by default, ``proxy=`` with
credentials, ``TransferConfig.proxy``, a caller's session; API calls, presigned part PUTs
and ranged GETs all go through; the proxy password never shows."""

from __future__ import annotations

import logging
import os
import ssl
import warnings
from pathlib import Path

import aiohttp
import pytest
from _proxy import ForwardProxy, ProxyEntry
from _storage import PART, small_config
from conftest import PROXY_CREDENTIALS

from aiolightning import AsyncLightning, InvalidArgumentError, LightningError
from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio

PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
SECRET = "pr0xy-pa55word"


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def round_trip(client: AsyncLightning, tmp_path: Path) -> int:
    """whoami, a multipart upload and a ranged download; returns the number of parts."""
    client.storage.configure(small_config(tmp_path))
    await client.api.auth.get_user()
    data = os.urandom(3 * PART + 7)
    (tmp_path / "src.bin").write_bytes(data)
    await client.storage.upload(tmp_path / "src.bin", "net/big.bin")
    await client.storage.download("net/big.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    return 4


def storage_requests(proxy: ForwardProxy, method: str) -> list[ProxyEntry]:
    """Presigned requests: part PUTs (``/_storage/parts/``), blob GETs (``/_storage/blobs/``)."""
    return [e for e in proxy.log if e.method == method and "/_storage/" in (e.path or "")]


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_environment_proxies_carry_api_and_storage_traffic(
    emulator: Emulator,
    forward_proxy: ForwardProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("http_proxy", forward_proxy.url)  # the lower-case form counts too
    emulator.config.faults.redirect_downloads = True  # ranges go to presigned URLs
    async with emulator.client() as c:
        parts = await round_trip(c, tmp_path)
    log = forward_proxy.log
    assert any(e.method == "GET" and e.path == "/v1/auth/user" for e in log)
    assert len(storage_requests(forward_proxy, "PUT")) == parts  # every presigned part PUT
    ranged = storage_requests(forward_proxy, "GET")
    assert len(ranged) == parts  # every ranged GET of the presigned URL
    assert {e.port for e in ranged} == {port_of(emulator.storage_url)}  # the second listener
    assert all((e.header("Range") or "").startswith("bytes=") for e in ranged)
    assert all(e.header("Authorization") is None for e in ranged)
    # nothing went around the proxy: the emulator saw as many requests as the proxy
    assert len(log) == sum(
        v for k, v in emulator.counters.snapshot().items() if k.startswith("requests:")
    )


async def test_no_proxy_exempts_hosts(
    emulator: Emulator,
    forward_proxy: ForwardProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.invalid, 127.0.0.1")
    async with emulator.client() as c:
        await round_trip(c, tmp_path)
    assert forward_proxy.log == []
    monkeypatch.delenv("NO_PROXY")
    async with emulator.client(trust_env=False) as c:  # the environment ignored
        await c.api.auth.get_user()
    assert forward_proxy.log == []
    async with emulator.client() as c:  # and without NO_PROXY it is used
        await c.api.auth.get_user()
    assert [e.path for e in forward_proxy.log] == ["/v1/auth/user"]


async def test_explicit_proxy_with_credentials(
    emulator: Emulator,
    auth_proxy: ForwardProxy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiolightning")
    user, secret = PROXY_CREDENTIALS
    async with emulator.client(proxy=auth_proxy.url_with_credentials()) as c:
        parts = await round_trip(c, tmp_path)
        assert secret not in repr(c) and f"{user}:***@" in repr(c)
    assert {(e.status, e.user) for e in auth_proxy.log} == {(200, user), (206, user)}
    assert len(storage_requests(auth_proxy, "PUT")) == parts
    wrong = auth_proxy.url_with_credentials(password="not-it-at-all")
    async with emulator.client(proxy=wrong, retry=None) as c:
        with pytest.raises(LightningError, match="407") as info:  # http target: an answer
            await c.api.auth.get_user()
    assert auth_proxy.log[-1].status == 407
    assert "not-it-at-all" not in str(info.value)
    assert secret not in caplog.text and "not-it-at-all" not in caplog.text


async def test_transfer_config_proxy_only_for_storage(
    emulator: Emulator, forward_proxy: ForwardProxy, tmp_path: Path
) -> None:
    async with emulator.client() as c:
        c.storage.configure(small_config(tmp_path, proxy=forward_proxy.url))
        data = os.urandom(2 * PART)
        (tmp_path / "a.bin").write_bytes(data)
        await c.storage.upload(tmp_path / "a.bin", "net/a.bin")
    assert len(storage_requests(forward_proxy, "PUT")) == 2
    assert all("/_storage/" in (e.path or "") for e in forward_proxy.log)


async def test_a_callers_session_keeps_its_settings_and_storage_follows_it(
    emulator: Emulator,
    forward_proxy: ForwardProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    emulator.config.faults.redirect_downloads = True  # ranges go to presigned URLs
    async with aiohttp.ClientSession(trust_env=True) as session:
        async with emulator.client(session=session) as c:
            parts = await round_trip(c, tmp_path)
    assert len(storage_requests(forward_proxy, "PUT")) == parts  # storage went through too
    assert len(storage_requests(forward_proxy, "GET")) == parts
    forward_proxy.log.clear()
    async with aiohttp.ClientSession() as session:  # trust_env=False: no proxy at all
        async with emulator.client(session=session) as c:
            await round_trip(c, tmp_path)
    assert forward_proxy.log == []
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidArgumentError, match="session"):
            emulator.client(session=session, proxy=forward_proxy.url)


@pytest.mark.parametrize(
    "bad",
    ["socks5://127.0.0.1:1080", "127.0.0.1:3128", "http://", f"me:{SECRET}@127.0.0.1:3128"],
)
async def test_a_malformed_proxy_is_refused_before_any_request(bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="proxy") as info:
        AsyncLightning("http://127.0.0.1:9", api_key="k", proxy=bad)
    assert SECRET not in str(info.value)


async def test_a_malformed_proxy_variable_names_the_variable_not_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"socks5://u:{SECRET}@127.0.0.1:1080")
    with pytest.raises(InvalidArgumentError, match="HTTPS_PROXY") as info:
        AsyncLightning("https://127.0.0.1:9", api_key="k")
    assert SECRET not in str(info.value)


async def test_an_all_proxy_aiohttp_cannot_use_is_ignored_with_a_warning(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiolightning")
    monkeypatch.setenv("ALL_PROXY", f"socks5://u:{SECRET}@127.0.0.1:1080")
    async with emulator.client() as c:  # curl users often have this: the client still works
        await c.api.auth.get_user()
    assert "ignoring ALL_PROXY" in caplog.text and SECRET not in caplog.text


@pytest.mark.parametrize("credentials", ["in the URL", "proxy_auth="])
async def test_a_callers_session_with_its_own_proxy_takes_storage_through_it(
    emulator: Emulator, auth_proxy: ForwardProxy, tmp_path: Path, credentials: str
) -> None:
    emulator.config.faults.redirect_downloads = True
    user, secret = PROXY_CREDENTIALS
    if credentials == "in the URL":
        session = aiohttp.ClientSession(proxy=auth_proxy.url_with_credentials())
    else:
        with warnings.catch_warnings():  # deprecated in aiohttp 3.14, still common
            warnings.simplefilter("ignore", DeprecationWarning)
            auth = aiohttp.BasicAuth(user, secret)
            session = aiohttp.ClientSession(proxy=auth_proxy.url, proxy_auth=auth)
    async with session, emulator.client(session=session) as c:
        parts = await round_trip(c, tmp_path)
        assert secret not in repr(c.transport.storage_network())
    assert len(storage_requests(auth_proxy, "PUT")) == parts  # not around the proxy
    assert len(storage_requests(auth_proxy, "GET")) == parts
    assert {(e.user, e.status != 407) for e in auth_proxy.log} == {(user, True)}
    assert len(auth_proxy.log) == sum(
        v for k, v in emulator.counters.snapshot().items() if k.startswith("requests:")
    )


async def test_a_callers_session_that_would_hand_credentials_to_its_proxy_is_refused(
    tls_emulator: Emulator, forward_proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = tls_emulator
    assert emu.ca_file is not None
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    basic = {"Authorization": aiohttp.encode_basic_auth(emu.user_id, emu.api_key)}
    # aiohttp copies a session's default headers into the CONNECT request (Authorization
    # as Proxy-Authorization): the client refuses such a session before any request
    connector = aiohttp.TCPConnector(ssl=ctx)
    async with aiohttp.ClientSession(
        connector=connector, headers=basic, proxy=forward_proxy.url
    ) as s:
        with pytest.raises(InvalidArgumentError, match=r"\['Authorization'\].*proxy") as info:
            emu.client(session=s)
    assert emu.api_key not in str(info.value)
    assert forward_proxy.log == []
    # proxies from the environment get no default headers: such a session is accepted,
    # and the client's own credentials (per request) stay inside the tunnel
    monkeypatch.setenv("HTTPS_PROXY", forward_proxy.url)
    connector = aiohttp.TCPConnector(ssl=ctx)
    async with aiohttp.ClientSession(connector=connector, headers=basic, trust_env=True) as s:
        async with emu.client(session=s) as c:
            await c.api.auth.get_user()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ctx), proxy=forward_proxy.url
    ) as s:
        async with emu.client(session=s, auth="jwt") as c:
            await c.api.auth.get_user()
            token = c.transport.auth.header
    assert [e.method for e in forward_proxy.log] == ["CONNECT", "CONNECT"]
    assert token is not None and token.startswith("Bearer ")
    assert not forward_proxy.saw(emu.api_key) and not forward_proxy.saw(token[7:])
    assert not forward_proxy.saw("Authorization")  # nor Proxy-Authorization
