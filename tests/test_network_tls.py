"""TLS settings against real https servers on loopback (a private CA made by trustme):
``verify=`` in each form, the CA-bundle variables in their order, a proxy tunnel (CONNECT),
and certificate failures raised at once as TLSVerificationError, in the library and the
CLI (exit 2, one line that names the fix)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _proxy import ForwardProxy
from _servers import Recorder, json_response, serve
from _tls import PrivateCA, make_ca
from aiohttp import web
from conftest import PROXY_CREDENTIALS
from yarl import URL

from aiolightning import AsyncLightning, InvalidArgumentError, TLSVerificationError
from aiolightning._limiter import Limiter
from aiolightning.emulator import Emulator
from aiolightning.transfer._presigned import PresignedSession

pytestmark = pytest.mark.anyio

CA_VARS = ("LIGHTNING_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*CA_VARS, *PROXY_VARS):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ca(tmp_path: Path) -> PrivateCA:
    return make_ca(tmp_path)


async def whoami(request: web.Request) -> web.StreamResponse:
    return json_response({"id": "u1", "username": "me"})


@pytest.fixture
async def tls_server(ca: PrivateCA) -> AsyncIterator[tuple[str, Recorder]]:
    async with serve({("GET", "/v1/auth/user"): whoami}, ssl_context=ca.server_context()) as s:
        yield s


def client(base: str, **kw: object) -> AsyncLightning:
    return AsyncLightning(base, user_id="u1", api_key="k" * 20, **kw)  # type: ignore[arg-type]


async def test_verify_accepts_a_path_a_context_or_false(
    tls_server: tuple[str, Recorder], ca: PrivateCA, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiolightning")
    base, rec = tls_server
    for verify in (str(ca.ca_file), ca.ca_file, ca.client_context()):
        async with client(base, verify=verify) as c:
            assert (await c.transport.request("GET", "/v1/auth/user"))["id"] == "u1"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    async with client(base, verify=False) as c:
        await c.transport.request("GET", "/v1/auth/user")
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "verification is OFF" in warning.getMessage()
    assert rec.count() == 4


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ("LIGHTNING_CA_BUNDLE", "REQUESTS_CA_BUNDLE"),
        ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"),
        ("SSL_CERT_FILE", None),
        ("SSL_CERT_DIR", None),
    ],
)
async def test_the_ca_bundle_variables_in_their_order(
    tls_server: tuple[str, Recorder],
    ca: PrivateCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    good: str,
    bad: str | None,
) -> None:
    base, _ = tls_server
    (tmp_path / "other").mkdir()
    other = make_ca(tmp_path / "other")
    if good == "SSL_CERT_DIR" and shutil.which("openssl") is None:
        pytest.skip("the openssl command (to name the hashed file) is not installed")
    if good == "SSL_CERT_DIR":  # a hashed directory, as c_rehash / openssl rehash make it
        d = tmp_path / "certs"
        d.mkdir()
        der = ssl.PEM_cert_to_DER_cert(ca.ca_file.read_text())
        name = _subject_hash(der)
        (d / f"{name}.0").write_text(ca.ca_file.read_text())
        monkeypatch.setenv(good, str(d))
    else:
        monkeypatch.setenv(good, str(ca.ca_file))
    if bad is not None:  # a later variable naming another CA loses
        monkeypatch.setenv(bad, str(other.ca_file))
    async with client(base) as c:  # read when the client is built, not at import
        await c.transport.request("GET", "/v1/auth/user")
    if bad is not None:  # and the other way round it fails
        monkeypatch.setenv(good, str(other.ca_file))
        async with client(base) as c:
            with pytest.raises(TLSVerificationError):
                await c.transport.request("GET", "/v1/auth/user")


def _subject_hash(der: bytes) -> str:
    """OpenSSL's subject hash of a certificate (the file name SSL_CERT_DIR lookups use)."""
    import subprocess

    out = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-subject_hash"],
        input=der,
        capture_output=True,
        check=True,
    )
    return out.stdout.decode().strip()


async def test_an_untrusted_certificate_fails_at_once_with_the_fix(
    tls_server: tuple[str, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiolightning")
    base, rec = tls_server
    async with client(base) as c:  # the system's trust store does not know the private CA
        with pytest.raises(TLSVerificationError) as info:
            await c.transport.request("GET", "/v1/auth/user")
    msg = str(info.value)
    assert "127.0.0.1" in msg and "could not be verified" in msg
    assert "unable to get local issuer certificate" in msg  # what failed
    assert "checked against the system's trust store" in msg  # with what
    for fix in ("verify=", "LIGHTNING_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "--ca-bundle"):
        assert fix in msg
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]  # no retries
    assert rec.count() == 0


async def test_a_hostname_mismatch_is_a_tls_verification_error(ca: PrivateCA) -> None:
    ctx = ca.server_context("service.example")  # not 127.0.0.1
    async with serve({("GET", "/v1/auth/user"): whoami}, ssl_context=ctx) as (base, _):
        async with client(base, verify=ca.ca_file) as c:
            with pytest.raises(TLSVerificationError, match=r"(?i)hostname|IP address mismatch"):
                await c.transport.request("GET", "/v1/auth/user")


async def test_through_a_proxy_tunnel(
    tls_server: tuple[str, Recorder], ca: PrivateCA, forward_proxy: ForwardProxy
) -> None:
    base, rec = tls_server
    async with client(base, proxy=forward_proxy.url, verify=ca.ca_file) as c:
        await c.transport.request("GET", "/v1/auth/user")
        await c.transport.request("GET", "/v1/auth/user")
    async with client(base, proxy=forward_proxy.url) as c:  # a tunnel hides no bad chain
        with pytest.raises(TLSVerificationError):
            await c.transport.request("GET", "/v1/auth/user")
    port = URL(base).port
    assert forward_proxy.log[0].method == "CONNECT"
    assert forward_proxy.targets() == {f"127.0.0.1:{port}"}
    assert rec.count() == 2


async def test_presigned_requests_raise_it_too(tls_server: tuple[str, Recorder]) -> None:
    base, _ = tls_server
    presigned = PresignedSession(None, Limiter())
    async with presigned.use():
        with pytest.raises(TLSVerificationError, match=r"PUT https://127\.0\.0\.1") as info:
            await presigned.put(f"{base}/bucket/part?X-Sig=s3cr3t", b"data", None)
    assert "s3cr3t" not in str(info.value)  # the signature in the query stays out


async def test_a_missing_ca_bundle_is_an_error_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidArgumentError, match="verify="):
        client("https://127.0.0.1:9", verify=tmp_path / "nope.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "gone.pem"))
    with pytest.raises(InvalidArgumentError, match="REQUESTS_CA_BUNDLE"):
        client("https://127.0.0.1:9")


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolightning", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_cli_maps_it_to_a_settings_error_and_takes_the_flags(
    ca: PrivateCA, tmp_path: Path
) -> None:
    import os

    async def denied(request: web.Request) -> web.StreamResponse:
        return json_response({"code": 16, "message": "nope"}, status=401)

    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTNING_")}
    env.update(HOME=str(tmp_path), LIGHTNING_USER_ID="u1", LIGHTNING_API_KEY="k" * 20)
    async with serve(catch_all=denied, ssl_context=ca.server_context()) as (base, rec):
        code, err = await run_cli("--url", base, "studios", "list", env=env)
        assert code == 2, err
        (line,) = err.splitlines()
        assert line.startswith("aiolightning: error: TLS certificate verification failed")
        assert "--ca-bundle" in line and "cannot reach" not in line
        assert rec.count() == 0
        # with the CA the request reaches the server (which then refuses the key: exit 3)
        code, err = await run_cli(
            "--url", base, "--ca-bundle", str(ca.ca_file), "jobs", "list", env=env
        )
        assert code == 3, err
        code, err = await run_cli("--url", base, "--insecure", "jobs", "list", env=env)
        assert code == 3 and "not verified" in err, err
        assert rec.count() == 2


async def test_cli_proxy_flag_with_credentials(
    tls_emulator: Emulator, auth_proxy: ForwardProxy, tmp_path: Path
) -> None:
    import os

    emu = tls_emulator
    assert emu.ca_file is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTNING_")}
    env.update(HOME=str(tmp_path), LIGHTNING_USER_ID=emu.user_id, LIGHTNING_API_KEY=emu.api_key)
    for name in (*CA_VARS, *PROXY_VARS):
        env.pop(name, None)
    user, password = PROXY_CREDENTIALS
    common = ("--url", emu.url, "--teamspace", emu.teamspace_name, "--ca-bundle", emu.ca_file)
    proxy = auth_proxy.url_with_credentials()
    code, err = await run_cli(*common, "--proxy", proxy, "studios", "list", env=env)
    assert code == 0, err
    assert auth_proxy.log and {(e.method, e.user) for e in auth_proxy.log} == {("CONNECT", user)}
    assert auth_proxy.targets() == {f"127.0.0.1:{emu.port}"}
    assert not auth_proxy.saw(emu.api_key)
    bad = proxy.replace("http://", "socks5://")
    code, err = await run_cli(*common, "--proxy", bad, "studios", "list", env=env)
    assert code == 2 and "proxy" in err and password not in err, err
