"""Credentials resolution, auth headers, JWT single-flight refresh, and secret hygiene."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path

import pytest
from _servers import Handler, json_response, serve
from aiohttp import web

from aiolightning import (
    AsyncLightning,
    AuthenticationError,
    CredentialsError,
    LightningError,
    RetryPolicy,
    ServerError,
)
from aiolightning._auth import basic_header, resolve_credentials

pytestmark = pytest.mark.anyio

ENV_VARS = (
    "LIGHTNING_USER_ID",
    "LIGHTNING_API_KEY",
    "LIGHTNING_AUTH_TOKEN",
    "LIGHTNING_CREDENTIAL_PATH",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    # never read the real ~/.lightning of whoever runs the tests
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def write_creds(path: Path, **fields: str) -> Path:
    data = {"user_id": "", "api_key": "", "auth_token": ""}
    data.update(fields)
    path.write_text(json.dumps(data))
    return path


def test_basic_header_value() -> None:
    assert basic_header("user-123", "key-abc") == "Basic dXNlci0xMjM6a2V5LWFiYw=="


def test_precedence_arguments_then_env_then_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    f = write_creds(tmp_path / "c.json", user_id="file-user", api_key="file-key")
    monkeypatch.setenv("LIGHTNING_CREDENTIAL_PATH", str(f))
    c = resolve_credentials()
    assert (c.user_id, c.api_key, c.source) == ("file-user", "file-key", f"file {f}")

    monkeypatch.setenv("LIGHTNING_USER_ID", "env-user")
    c = resolve_credentials()  # no key in the env: the file wins, user id included
    assert (c.user_id, c.api_key) == ("file-user", "file-key")

    monkeypatch.setenv("LIGHTNING_API_KEY", "env-key")
    c = resolve_credentials()
    assert (c.user_id, c.api_key) == ("env-user", "env-key")
    assert c.source.startswith("environment")

    c = resolve_credentials(user_id="arg-user", api_key="arg-key")
    assert (c.user_id, c.api_key, c.source) == ("arg-user", "arg-key", "arguments")


def test_auth_token_env_gives_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTNING_AUTH_TOKEN", "tok-1")
    client = AsyncLightning("http://127.0.0.1:1")
    assert client.transport.auth.header == "Bearer tok-1"


def test_empty_strings_in_file_count_as_absent(tmp_path: Path) -> None:
    f = write_creds(tmp_path / "c.json", user_id="u", api_key="", auth_token="jwt-x")
    c = resolve_credentials(credentials_path=f)
    assert c.api_key is None and c.auth_token == "jwt-x"
    client = AsyncLightning("http://127.0.0.1:1", credentials_path=f)
    assert client.transport.auth.header == "Bearer jwt-x"
    empty = write_creds(tmp_path / "e.json")
    with pytest.raises(CredentialsError, match="neither an api_key nor an auth_token"):
        resolve_credentials(credentials_path=empty)


def test_missing_credentials_message_says_what_and_where(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "credentials.json"
    monkeypatch.setenv("LIGHTNING_CREDENTIAL_PATH", str(missing))
    with pytest.raises(CredentialsError) as ei:
        AsyncLightning("http://127.0.0.1:1")
    msg = str(ei.value)
    for needle in (
        "LIGHTNING_API_KEY",
        "LIGHTNING_USER_ID",
        "LIGHTNING_AUTH_TOKEN",
        "LIGHTNING_CREDENTIAL_PATH",
        str(missing),
    ):
        assert needle in msg
    # the default path when the variable is not set
    monkeypatch.delenv("LIGHTNING_CREDENTIAL_PATH")
    with pytest.raises(CredentialsError, match=r"\.lightning/credentials\.json"):
        resolve_credentials()


def test_credentials_repr_hides_secrets() -> None:
    c = resolve_credentials(user_id="user-123", api_key="key-abc", auth_token="jwt-secret")
    text = repr(c) + str(c)
    assert "key-abc" not in text and "jwt-secret" not in text
    assert "user-123" in text and "<hidden>" in text


# --- JWT ------------------------------------------------------------------------------------


class JwtServer:
    """Issues jwt-1, jwt-2 ... at /v1/auth/login; /v1/me accepts only the current one."""

    def __init__(self, login_delay: float = 0.0) -> None:
        self.logins: list[dict[str, str]] = []
        self.current: str | None = None
        self.login_delay = login_delay

    async def login(self, request: web.Request) -> web.Response:
        assert "Authorization" not in request.headers
        body = await request.json()
        self.logins.append(body)
        if body.get("apiKey") != "key-abc":
            return json_response({"code": 16, "message": "bad key"}, 401)
        await asyncio.sleep(self.login_delay)
        self.current = f"jwt-{len(self.logins)}"
        return json_response({"token": self.current})

    async def me(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.current}":
            return json_response({"code": 16, "message": "token expired"}, 401)
        return json_response({"token": self.current})

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {("POST", "/v1/auth/login"): self.login, ("GET", "/v1/me"): self.me}


async def test_jwt_login_body_and_first_use() -> None:
    srv = JwtServer()
    async with serve(srv.routes()) as (url, _):
        async with AsyncLightning(url, auth="jwt", user_id="user-123", api_key="key-abc") as c:
            assert await c.transport.request("GET", "/v1/me") == {"token": "jwt-1"}
            assert await c.transport.request("GET", "/v1/me") == {"token": "jwt-1"}
    assert srv.logins == [{"username": "user-123", "apiKey": "key-abc", "duration": "43200"}]


async def test_jwt_single_flight_refresh_under_20_concurrent_401s() -> None:
    srv = JwtServer(login_delay=0.2)
    async with serve(srv.routes()) as (url, rec):
        async with AsyncLightning(url, auth="jwt", user_id="user-123", api_key="key-abc") as c:
            # 20 concurrent first calls: one login
            await asyncio.gather(*(c.transport.request("GET", "/v1/me") for _ in range(20)))
            assert len(srv.logins) == 1
            srv.current = "rotated-away"  # every held token is now rejected
            results = await asyncio.gather(
                *(c.transport.request("GET", "/v1/me") for _ in range(20))
            )
            assert len(srv.logins) == 2
            assert all(r == {"token": "jwt-2"} for r in results)
            # 20 rejected + 20 replayed (+ the 20 first calls)
            assert rec.count("/v1/me") == 60


async def test_jwt_gives_up_after_one_refresh() -> None:
    async def login(request: web.Request) -> web.Response:
        return json_response({"token": "useless"})

    async def me(request: web.Request) -> web.Response:
        return json_response({"code": 16, "message": "nope"}, 401)

    async with serve({("POST", "/v1/auth/login"): login, ("GET", "/v1/me"): me}) as (url, rec):
        async with AsyncLightning(url, auth="jwt", user_id="u", api_key="k") as c:
            with pytest.raises(AuthenticationError):
                await c.transport.request("GET", "/v1/me")
    assert rec.count("/v1/auth/login") == 2  # first use + one refresh
    assert rec.count("/v1/me") == 2


def test_jwt_mode_needs_a_key() -> None:
    with pytest.raises(CredentialsError, match="JWT mode"):
        AsyncLightning("http://127.0.0.1:1", auth="jwt", auth_token=None, api_key="k")


# --- no secret anywhere ---------------------------------------------------------------------

SECRET_KEY = "key-abc-very-secret-0123456789"
USER = "user-123"


async def test_no_secret_in_logs_reprs_or_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    basic_b64 = base64.b64encode(f"{USER}:{SECRET_KEY}".encode()).decode()
    srv_token = "eyJhbGciOi.jwt-payload-secret.signature"
    attempts = {"n": 0}

    async def login(request: web.Request) -> web.Response:
        return json_response({"token": srv_token})

    async def echo_401(request: web.Request) -> web.Response:
        # a hostile server echoing the credential it got must not leak it through *our* code
        return json_response({"code": 16, "message": "denied"}, 401)

    async def flaky(request: web.Request) -> web.Response:
        attempts["n"] += 1
        return json_response({"code": 14, "message": "unavailable"}, 503)

    async def ok(request: web.Request) -> web.Response:
        return json_response({"ok": True})

    routes = {
        ("POST", "/v1/auth/login"): login,
        ("GET", "/v1/denied"): echo_401,
        ("GET", "/v1/flaky"): flaky,
        ("GET", "/v1/ok"): ok,
    }
    errors: list[BaseException] = []
    reprs: list[str] = []
    caplog.set_level(logging.DEBUG)
    fast = RetryPolicy(max_attempts=3, base=0.001, jitter=False)
    async with serve(routes) as (url, _):
        for mode in ("basic", "jwt"):
            async with AsyncLightning(
                url,
                auth=mode,
                user_id=USER,
                api_key=SECRET_KEY,
                retry=fast,
            ) as c:
                await c.transport.request("GET", "/v1/ok")
                for path in ("/v1/denied", "/v1/flaky"):
                    try:
                        await c.transport.request("GET", path)
                    except LightningError as e:
                        errors.append(e)
                reprs += [repr(c), str(c), repr(c.transport), repr(c.transport.auth)]
                reprs += [repr(c.credentials), repr(c.limiter)]
        bad = AsyncLightning("http://127.0.0.1:1", user_id=USER, api_key=SECRET_KEY)
        try:
            await bad.transport.request("GET", "/v1/x", retry=RetryPolicy.none())
        except LightningError as e:
            errors.append(e)
        await bad.close()
    assert any(isinstance(e, AuthenticationError) for e in errors)
    assert any(isinstance(e, ServerError) for e in errors)
    texts = [caplog.text, *reprs]
    texts += [r.getMessage() for r in caplog.records]
    texts += [f"{e!s} {e!r} {e.args!r}" for e in errors]
    assert any("retrying GET /v1/flaky" in r.getMessage() for r in caplog.records)
    assert any(r.levelno == logging.DEBUG and "/v1/ok" in r.getMessage() for r in caplog.records)
    for text in texts:
        for secret in (SECRET_KEY, basic_b64, srv_token):
            assert secret not in text
