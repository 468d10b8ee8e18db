"""What the emulator refuses as the service does, and accepts as it does: query values that
grpc-gateway cannot parse, int64 strings and enum names in bodies, odd credentials.

Each case here was first found by schemathesis (tests/test_schemathesis.py)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio


async def _status(s: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> int:
    async with s.request(method, path, **kw) as r:
        await r.read()
        return r.status


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("filterByUserId=true", 200),
        ("filterByUserId=F", 200),  # strconv.ParseBool spellings
        ("filterByUserId=None", 200),  # the SDK's literal for a parameter passed as None
        ("filterByUserId=null", 400),
        ("filterByUserId=", 400),
        ("filterByUserId=yes", 400),
        ("filterByUserId=true&filterByUserId=true", 400),  # not a list: one value
    ],
)
async def test_bool_query_values(emu_http: aiohttp.ClientSession, query: str, status: int) -> None:
    assert await _status(emu_http, "GET", f"/v1/memberships?{query}") == status


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("limit=5", 200),
        ("limit=-3", 200),  # <= 0: the default page size
        ("limit=2.5", 400),
        ("limit=1e3", 400),
        ("limit=2147483648", 400),  # past int32
    ],
)
async def test_int_query_values(emu_http: aiohttp.ClientSession, query: str, status: int) -> None:
    path = f"/v1/cloudspaces/environment-templates/managed?{query}"
    assert await _status(emu_http, "GET", path) == status


async def test_int64_query_values(emulator: Emulator, emu_http: aiohttp.ClientSession) -> None:
    base = f"/v1/projects/{emulator.teamspace_id}/cloudspaces"
    assert await _status(emu_http, "GET", f"{base}?limit=3000000000") == 200  # int64: fine
    assert await _status(emu_http, "GET", f"{base}?limit=ten") == 400


@pytest.mark.parametrize(
    ("duration", "status"),
    [("3600", 200), (3600, 200), (None, 200), ("", 400), ("1h", 400), ("1e3", 400)],
)
async def test_int64_body_fields(
    emu_http: aiohttp.ClientSession, duration: Any, status: int
) -> None:
    """protojson reads an int64 from a number or a decimal string, null as unset."""
    assert await _status(emu_http, "POST", "/v1/auth/refresh", json={"duration": duration}) == (
        status
    )


@pytest.mark.parametrize(
    ("value", "status"),
    [("SDK_COMMAND_HISTORY_TYPE_CLI", 200), (None, 200), ("CLI", 400), ("", 400), (2, 400)],
)
async def test_enum_body_fields(emu_http: aiohttp.ClientSession, value: Any, status: int) -> None:
    """An enum field takes one of its names; anything else is a 400. (protojson would take
    the enum's number too; the spec gives no numbers, so the emulator refuses them.)"""
    body = {"command": "x", "type": value}
    assert await _status(emu_http, "POST", "/v1/sdk-command-history", json=body) == status


async def test_unset_enum_is_its_zero_name(
    emulator: Emulator, emu_http: aiohttp.ClientSession
) -> None:
    async with emu_http.post(
        f"/v1/projects/{emulator.teamspace_id}/cloudspaces", json={"name": "enum"}
    ) as r:
        studio = await r.json()
    assert studio["imageStatus"] == "IMAGE_STATE_UNSPECIFIED"


async def test_non_ascii_credentials_are_refused_not_crashed(emulator: Emulator) -> None:
    async with aiohttp.ClientSession(base_url=emulator.url) as s:
        body = {"username": "emu-user", "apiKey": "clé-à-molette"}
        assert await _status(s, "POST", "/v1/auth/login", json=body) == 401
        basic = aiohttp.encode_basic_auth(emulator.user_id, "mot-de-passe-é", encoding="utf-8")
        headers = {"Authorization": basic}
        assert await _status(s, "GET", "/v1/auth/whoami", headers=headers) == 401
