"""The emulator over TLS (`--tls`, `tls=True`): both listeners on https with a private CA made
at start; a client trusting `emu.ca_file` works end to end, an untrusted one fails."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import anyio
import pytest
import trustme
from _storage import PART, small_config

from aiolightning import RetryPolicy
from aiolightning.emulator import Emulator, EmulatorThread, spawn_emulator
from aiolightning.emulator._cli import main as emulator_main
from aiolightning.emulator._tls import TLSUnavailableError

pytestmark = pytest.mark.anyio


def trusting(ca_file: str | None) -> aiohttp.TCPConnector:
    assert ca_file is not None
    return aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca_file))


def whoami(url: str, user_id: str, api_key: str, ca_file: str) -> dict[str, str]:
    req = urllib.request.Request(url + "/v1/auth/whoami")
    req.add_header("Authorization", aiohttp.encode_basic_auth(user_id, api_key))
    ctx = ssl.create_default_context(cafile=ca_file)
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


async def test_a_client_trusting_the_ca_uploads_and_downloads_over_https(
    tls_emulator: Emulator, tmp_path: Path
) -> None:
    emu = tls_emulator
    assert emu.url.startswith("https://127.0.0.1:")
    assert emu.storage_url.startswith("https://127.0.0.1:")
    assert emu.ca_file is not None and emu.info()["ca_file"] == emu.ca_file
    assert (await anyio.Path(emu.ca_file).read_text()).startswith("-----BEGIN CERTIFICATE-----")
    emu.config.faults.redirect_downloads = True  # ranged GETs on the second listener
    data = os.urandom(5 * PART + 7)
    (tmp_path / "src.bin").write_bytes(data)
    async with aiohttp.ClientSession(connector=trusting(emu.ca_file)) as session:
        async with emu.client(session=session) as client:
            client.storage.configure(small_config(tmp_path))
            assert (await client.api.auth.get_user()).username == emu.username
            await client.storage.upload(tmp_path / "src.bin", "tls/big.bin")
            res = await client.storage.download("tls/big.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    c = emu.counters
    assert res.ranges == 6 and c.get("requests:GET /_storage/blobs/{token}") == 6
    assert c.get("requests:PUT /_storage/parts/{upload_id}/{part}") == 6
    assert c.get("storage:authorization_header_seen") == 0
    ca = emu.ca_file
    await emu.close()
    assert not await anyio.Path(ca).exists() and emu.ca_file is None  # the CA lives for one run


async def test_an_untrusted_client_fails_verification(tls_emulator: Emulator) -> None:
    emu = tls_emulator
    other_ca = trustme.CA()
    other = ssl.create_default_context()
    other_ca.configure_trust(other)
    for connector in (aiohttp.TCPConnector(), aiohttp.TCPConnector(ssl=other)):
        async with aiohttp.ClientSession(connector=connector) as s:
            for url in (emu.url, emu.storage_url):
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    await s.get(url + "/v1/auth/whoami")
    async with aiohttp.ClientSession() as s:  # plain http to the https port: no answer
        with pytest.raises(aiohttp.ClientError):
            await s.get(emu.url.replace("https://", "http://") + "/v1/auth/whoami")
    assert emu.counters.get("requests:GET /v1/auth/whoami") == 0


async def test_the_certificate_names_every_loopback_spelling(tls_emulator: Emulator) -> None:
    emu = tls_emulator
    async with aiohttp.ClientSession(connector=trusting(emu.ca_file)) as s:
        url = f"https://localhost:{emu.port}/v1/auth/whoami"
        async with s.get(url, headers={"Authorization": _basic(emu)}) as r:
            assert r.status == 200
    async with Emulator(host="::1", tls=True) as v6:
        assert v6.url.startswith("https://[::1]:")
        async with aiohttp.ClientSession(connector=trusting(v6.ca_file)) as s:
            async with s.get(
                v6.url + "/v1/auth/whoami", headers={"Authorization": _basic(v6)}
            ) as r:
                assert r.status == 200


def _basic(emu: Emulator) -> str:
    return aiohttp.encode_basic_auth(emu.user_id, emu.api_key)


async def test_emu_client_trusts_the_ca_by_itself(tls_emulator: Emulator) -> None:
    async with tls_emulator.client(retry=RetryPolicy(max_attempts=1)) as client:
        assert (await client.api.auth.get_user()).username == tls_emulator.username


def test_spawned_and_threaded_emulators_serve_https() -> None:
    with spawn_emulator(seed=2, tls=True) as spawned, EmulatorThread(seed=2, tls=True) as thread:
        for emu in (spawned, thread):
            assert emu.url.startswith("https://") and emu.ca_file is not None
            assert whoami(emu.url, emu.user_id, emu.api_key, emu.ca_file)["userId"] == emu.user_id
        assert spawned.ca_file != thread.ca_file  # a CA per run
        assert thread.sdk_env()["REQUESTS_CA_BUNDLE"] == thread.ca_file
        with thread.sync_client(retry=RetryPolicy(max_attempts=1)) as sync:  # trusts the CA
            assert sync.api.auth.get_user().username == thread.username


def test_cli_prints_the_ca_file_and_removes_it_on_stop() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiolightning", "emulator", "--tls", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(8)]
        assert "listening on https://127.0.0.1:" in lines[0], lines
        env = dict(line.strip().removeprefix("export ").split("=", 1) for line in lines[1:6])
        ca_file = env["REQUESTS_CA_BUNDLE"]
        who = whoami(
            env["LIGHTNING_CLOUD_URL"], env["LIGHTNING_USER_ID"], env["LIGHTNING_API_KEY"], ca_file
        )
        assert who["userId"] == env["LIGHTNING_USER_ID"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert not Path(ca_file).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_without_the_extra_the_error_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # import trustme -> ImportError
    with pytest.raises(TLSUnavailableError, match=r"pip install 'aiolightning\[tls\]'"):
        Emulator(tls=True)
    assert emulator_main(["--tls", "--port", "0"]) == 2
    assert "aiolightning[tls]" in capsys.readouterr().err
    Emulator()  # without TLS nothing is needed


SDK_SCRIPT = r"""
import os, sys
from lightning_sdk import Teamspace

work = sys.argv[1]
ts = Teamspace(os.environ["LIGHTNING_TEAMSPACE"])
print("teamspace", ts.name, ts.id)
ts.upload_file(os.path.join(work, "src.bin"), "sdk/big.bin", progress_bar=False)
ts.download_file("sdk/big.bin", os.path.join(work, "out.bin"))
print("ok")
"""


def test_the_official_sdk_over_tls_with_requests_ca_bundle(tmp_path: Path) -> None:
    pytest.importorskip("lightning_sdk")
    from conftest import fast_timings

    from aiolightning.emulator import EmulatorConfig, Faults

    config = EmulatorConfig(timings=fast_timings(), faults=Faults(redirect_downloads=True))
    data = os.urandom(3 * PART + 1)
    (tmp_path / "src.bin").write_bytes(data)
    with EmulatorThread(seed=0, config=config, tls=True) as emu:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("LIGHTNING_") and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")
        }
        env.update(
            emu.sdk_env(),
            HOME=str(tmp_path),
            LIGHTNING_MULTIPART_THRESHOLD=str(PART),
            LIGHTNING_MULTI_PART_PART_SIZE=str(PART),
        )
        assert env["REQUESTS_CA_BUNDLE"] == emu.ca_file
        proc = subprocess.run(
            [sys.executable, "-c", SDK_SCRIPT, str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"teamspace {emu.teamspace_name} {emu.teamspace_id}" in proc.stdout
        snap = emu.counters.snapshot()
    assert (tmp_path / "out.bin").read_bytes() == data
    assert snap["storage:uploads_started"] == 1  # multipart, every part over https
    assert snap["requests:PUT /_storage/parts/{upload_id}/{part}"] == 4
    assert snap.get("storage:presigned_gets", 0) >= 1  # the download went to the second listener
