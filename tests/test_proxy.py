"""The suite's forward proxy (tests/_proxy.py) itself: plain aiohttp through it, http to the
emulator, https (CONNECT) to the TLS emulator, Basic proxy authentication, and its log."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
from _proxy import ForwardProxy
from _servers import serve
from aiohttp import web
from conftest import PROXY_CREDENTIALS

from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio


def auth(emu: Emulator) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(emu.user_id, emu.api_key)}


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_http_requests_go_through_and_are_logged(
    emulator: Emulator, forward_proxy: ForwardProxy
) -> None:
    async with aiohttp.ClientSession(headers=auth(emulator)) as s:
        for _ in range(2):
            async with s.get(f"{emulator.url}/v1/auth/whoami?x=1", proxy=forward_proxy.url) as r:
                assert r.status == 200
                assert (await r.json())["userId"] == emulator.user_id
    port = port_of(emulator.url)
    assert [(e.method, e.target, e.path, e.status) for e in forward_proxy.log] == [
        ("GET", f"127.0.0.1:{port}", "/v1/auth/whoami?x=1", 200)
    ] * 2
    assert emulator.counters.get("requests:GET /v1/auth/whoami") == 2


async def test_request_bodies_arrive_whole_without_proxy_headers(auth_proxy: ForwardProxy) -> None:
    body = os.urandom(300_000)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 70_000):
            yield body[i : i + 70_000]

    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=201, text="stored")

    async with serve(catch_all=echo) as (url, rec), aiohttp.ClientSession() as s:
        for data in (body, chunks()):  # a known length, then chunked
            async with s.put(
                f"{url}/o?k=v", data=data, proxy=auth_proxy.url_with_credentials()
            ) as r:
                assert (r.status, await r.text()) == (201, "stored")
    assert [r["body"] == body for r in rec.requests] == [True, True]
    assert rec.requests[1]["headers"].get("Transfer-Encoding") == "chunked"
    for r in rec.requests:
        assert r["query"] == [("k", "v")]
        assert not {"Proxy-Authorization", "Proxy-Connection"} & set(r["headers"])
    assert [(e.method, e.path, e.status) for e in auth_proxy.log] == [("PUT", "/o?k=v", 201)] * 2


async def test_https_goes_through_a_connect_tunnel(
    tls_emulator: Emulator, forward_proxy: ForwardProxy
) -> None:
    assert tls_emulator.ca_file is not None
    ctx = ssl.create_default_context(cafile=tls_emulator.ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        for _ in range(3):
            async with s.get(
                tls_emulator.url + "/v1/auth/whoami",
                headers=auth(tls_emulator),
                proxy=forward_proxy.url,
            ) as r:
                assert r.status == 200
        # the second listener (presigned downloads) through the proxy too
        async with s.get(tls_emulator.storage_url + "/nothing", proxy=forward_proxy.url) as r:
            assert r.status == 404
    api, storage = port_of(tls_emulator.url), port_of(tls_emulator.storage_url)
    assert forward_proxy.targets() == {f"127.0.0.1:{api}", f"127.0.0.1:{storage}"}
    assert {e.method for e in forward_proxy.log} == {"CONNECT"}
    assert all(e.path is None and e.status == 200 for e in forward_proxy.log)
    # the tunnel carried TLS: the proxy saw no request inside it, nor its credentials
    assert tls_emulator.counters.get("requests:GET /v1/auth/whoami") == 3
    assert not forward_proxy.saw(tls_emulator.api_key)


async def test_proxy_credentials_are_required_and_never_logged(
    tls_emulator: Emulator, auth_proxy: ForwardProxy
) -> None:
    assert tls_emulator.ca_file is not None
    ctx = ssl.create_default_context(cafile=tls_emulator.ca_file)
    url, headers = tls_emulator.url + "/v1/auth/whoami", auth(tls_emulator)
    user, password = PROXY_CREDENTIALS
    basic = {"Proxy-Authorization": aiohttp.encode_basic_auth(user, password)}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        with pytest.raises(aiohttp.ClientHttpProxyError) as e:
            await s.get(url, headers=headers, proxy=auth_proxy.url)
        assert e.value.status == 407
        wrong = auth_proxy.url_with_credentials(password="wrong")
        with pytest.raises(aiohttp.ClientHttpProxyError):
            await s.get(url, headers=headers, proxy=wrong)
        async with s.get(url, headers=headers, proxy=auth_proxy.url_with_credentials()) as r:
            assert r.status == 200
        async with s.get(url, headers=headers, proxy=auth_proxy.url, proxy_headers=basic) as r:
            assert r.status == 200
    assert [(e.status, e.user) for e in auth_proxy.log] == [
        (407, None),
        (407, None),
        (200, user),
        (200, user),
    ]
    assert password not in repr(auth_proxy) + repr(auth_proxy.log)
    assert auth_proxy.saw(password) and not auth_proxy.saw(tls_emulator.api_key)
    assert tls_emulator.counters.get("requests:GET /v1/auth/whoami") == 2


async def test_saw_catches_a_session_authorization_sent_to_the_proxy(
    tls_emulator: Emulator, forward_proxy: ForwardProxy
) -> None:
    # aiohttp merges a session's default headers into the CONNECT request and turns its
    # Authorization into Proxy-Authorization: the API key reaches the proxy. Clients must keep
    # credentials out of session defaults; `saw` is how tests check they did.
    assert tls_emulator.ca_file is not None
    ctx = ssl.create_default_context(cafile=tls_emulator.ca_file)
    connector = aiohttp.TCPConnector(ssl=ctx)
    async with aiohttp.ClientSession(connector=connector, headers=auth(tls_emulator)) as s:
        async with s.get(tls_emulator.url + "/v1/auth/whoami", proxy=forward_proxy.url) as r:
            assert r.status == 200
    assert forward_proxy.saw(tls_emulator.api_key)


async def test_an_unreachable_origin_is_a_502(forward_proxy: ForwardProxy) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{port}/x", proxy=forward_proxy.url) as r:
            assert r.status == 502
    assert [(e.method, e.target, e.status) for e in forward_proxy.log] == [
        ("GET", f"127.0.0.1:{port}", 502)
    ]


async def test_an_inspecting_proxy_logs_every_request_inside_its_tunnels(
    tls_emulator: Emulator, inspecting_proxy: ForwardProxy
) -> None:
    emu, proxy = tls_emulator, inspecting_proxy
    assert emu.ca_file is not None and proxy.ca_file is not None
    bundle = ssl.create_default_context(cafile=proxy.bundle_with(emu.ca_file))
    body = os.urandom(200_000)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=bundle)) as s:
        for _ in range(2):
            async with s.get(emu.url + "/v1/auth/whoami", headers=auth(emu), proxy=proxy.url) as r:
                assert (await r.json())["userId"] == emu.user_id
        url = f"{emu.url}/v1/projects/{emu.teamspace_id}/artifacts/blobs"
        async with s.post(url, data=body, headers=auth(emu), proxy=proxy.url) as r:
            assert r.status == 400  # the origin read the body (not a JSON request)
        async with s.get(emu.storage_url + "/nothing", proxy=proxy.url) as r:
            assert r.status == 404
    api, storage = port_of(emu.url), port_of(emu.storage_url)
    inside = [(e.method, e.port, e.path, e.status) for e in proxy.log if e.inspected]
    assert inside == [
        ("GET", api, "/v1/auth/whoami", 200),
        ("GET", api, "/v1/auth/whoami", 200),
        ("POST", api, f"/v1/projects/{emu.teamspace_id}/artifacts/blobs", 400),
        ("GET", storage, "/nothing", 404),
    ]
    assert [e.method for e in proxy.log if not e.inspected] == ["CONNECT"] * 4
    assert emu.counters.get("requests:GET /v1/auth/whoami") == 2
    assert not proxy.saw(emu.api_key)  # addressed to the origin, not to the proxy


async def test_an_inspecting_proxy_is_refused_by_clients_that_do_not_trust_it(
    tls_emulator: Emulator, inspecting_proxy: ForwardProxy
) -> None:
    assert tls_emulator.ca_file is not None
    only_emulator = ssl.create_default_context(cafile=tls_emulator.ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=only_emulator)) as s:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await s.get(tls_emulator.url + "/v1/auth/whoami", proxy=inspecting_proxy.url)
    assert not [e for e in inspecting_proxy.log if e.inspected]
    assert tls_emulator.counters.get("requests:GET /v1/auth/whoami") == 0
    # and the proxy verifies origins: one it cannot verify is a 502, nothing forwarded
    async with ForwardProxy(inspect=True) as strict:  # the system's CAs only
        ctx = ssl.create_default_context(cafile=strict.bundle_with(tls_emulator.ca_file))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
            with pytest.raises(aiohttp.ClientHttpProxyError) as e:
                await s.get(tls_emulator.url + "/v1/auth/whoami", proxy=strict.url)
    assert e.value.status == 502
    assert [(x.method, x.status) for x in strict.log] == [("CONNECT", 502)]
