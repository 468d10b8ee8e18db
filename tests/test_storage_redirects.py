"""Downloads through blob GETs that redirect to presigned URLs (wire-flows §6.5), against the
emulator's ``redirect_downloads`` knob: the presigned URLs live on its second listener, another
origin, so following them must drop the Lightning ``Authorization`` header."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import anyio
import pytest
from _storage import PART, small_config
from yarl import URL

from aiolightning import AsyncLightning
from aiolightning.emulator import Emulator
from aiolightning.transfer import RemoteFileNotFoundError, RemoteTarget

pytestmark = pytest.mark.anyio

API_GET = "requests:GET /v1/projects/{pid}/artifacts/blobs/{path}"
PRESIGNED_GET = "requests:GET /_storage/blobs/{token}"


async def uploaded(storage_client: AsyncLightning, tmp_path: Path, remote: str, size: int) -> bytes:
    data = hashlib.sha256(remote.encode()).digest() * (size // 32 + 1)
    data = data[:size]
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    await storage_client.storage.upload(src, remote)
    return data


def blob_path(emulator: Emulator, remote: str) -> str:
    return f"/v1/projects/{emulator.teamspace_id}/artifacts/blobs/{remote}"


@pytest.mark.parametrize("ranged", [True, False], ids=["ranges", "one-stream"])
async def test_downloads_follow_the_redirect_without_authorization(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path, ranged: bool
) -> None:
    if not ranged:
        storage_client.storage.configure(small_config(tmp_path, download_threshold=64 * PART))
    data = await uploaded(storage_client, tmp_path, "r/big.bin", 6 * PART + 5)
    emulator.config.faults.redirect_downloads = True
    c = emulator.counters
    c.reset()
    dest = tmp_path / "out.bin"
    res = await storage_client.storage.download("r/big.bin", dest)
    assert dest.read_bytes() == data
    assert res.ranges == (7 if ranged else 1)
    assert c.get("storage:authorization_header_seen") == 0
    # one GET through the API (redirected); every range went to the presigned URL
    assert c.get(API_GET) == 1
    assert c.get(PRESIGNED_GET) == res.ranges
    assert c.get("storage:downloads_redirected") == 2  # the HEAD and that one GET
    loc = storage_client.storage.engine.locations.location(blob_path(emulator, "r/big.bin"))
    assert loc is not None and loc.origin() == URL(emulator.storage_url).origin()
    assert loc.origin() != URL(emulator.url).origin()  # a cross-origin redirect


async def test_a_refused_location_is_asked_for_again(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    data = await uploaded(storage_client, tmp_path, "r/x.bin", 3 * PART)
    emulator.config.faults.redirect_downloads = True
    engine = storage_client.storage.engine
    key = blob_path(emulator, "r/x.bin")
    await storage_client.storage.download("r/x.bin", tmp_path / "1.bin")
    first = engine.locations.location(key)
    assert first is not None
    c = emulator.counters
    c.reset()
    # The store refuses the remembered URL (a revoked or early-expired signature: 403):
    # one request goes back to the API, which redirects to a fresh URL.
    entry = engine.locations._entries[key]
    entry.location = first.update_query(Signature="0" * 64)
    await storage_client.storage.download("r/x.bin", tmp_path / "2.bin")
    assert (tmp_path / "2.bin").read_bytes() == data
    assert c.get("storage:signature_rejected") >= 1
    assert c.get(API_GET) == 1
    second = engine.locations.location(key)
    assert second is not None and "0" * 64 not in str(second)
    assert c.get("storage:authorization_header_seen") == 0


async def test_an_expired_location_is_not_used(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    data = await uploaded(storage_client, tmp_path, "r/e.bin", 3 * PART)
    emulator.config.faults.redirect_downloads = True
    engine = storage_client.storage.engine
    key = blob_path(emulator, "r/e.bin")
    await storage_client.storage.download("r/e.bin", tmp_path / "1.bin")
    first = engine.locations.location(key)
    assert first is not None
    # the URL's own expiry says it is over: the storage_client asks the API for a new one instead of
    # sending a request it knows will fail
    engine.locations._entries[key].location = first.update_query(Expires="1000")
    c = emulator.counters
    c.reset()
    await storage_client.storage.download("r/e.bin", tmp_path / "2.bin")
    assert (tmp_path / "2.bin").read_bytes() == data
    assert c.get(API_GET) == 1 and c.get("storage:urls_expired") == 0
    assert c.get("storage:signature_rejected") == 0
    # URLs about to expire (within ~2 s here) are never reused: every range asks the API
    emulator.config.faults.url_ttl = 1.0
    engine.locations._entries.clear()
    c.reset()
    res = await storage_client.storage.download("r/e.bin", tmp_path / "3.bin")
    assert (tmp_path / "3.bin").read_bytes() == data
    assert c.get(API_GET) == res.ranges == 3


async def test_errors_through_the_redirect(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    await uploaded(storage_client, tmp_path, "r/gone.bin", 3 * PART)
    emulator.config.faults.redirect_downloads = True
    with pytest.raises(RemoteFileNotFoundError):
        await storage_client.storage.download("r/missing.bin", tmp_path / "m.bin")
    await storage_client.storage.download("r/gone.bin", tmp_path / "g.bin")
    await storage_client.storage.delete("r/gone.bin")
    # the remembered URL now finds no object: 404 from the store, the file does not exist
    # (the size given, so no HEAD goes first: the ranges meet the 404 themselves)
    target = RemoteTarget(f"/v1/projects/{emulator.teamspace_id}/artifacts", "r/gone.bin")
    with pytest.raises(RemoteFileNotFoundError):
        await storage_client.storage.engine.download_file(
            target, tmp_path / "g2.bin", size=3 * PART
        )
    assert emulator.counters.get("responses:404") >= 1
    assert not (tmp_path / "g2.bin").exists()
    assert not list(tmp_path.glob(".*aiolightning-part"))  # noqa: ASYNC240


SDK_SCRIPT = r"""
import os, sys
from lightning_sdk import Teamspace

work = sys.argv[1]
ts = Teamspace(os.environ["LIGHTNING_TEAMSPACE"])
ts.download_file("redir/a.bin", os.path.join(work, "sdk-a.bin"))
ts.download_folder("redir", os.path.join(work, "sdk-folder"))
print("ok")
"""


async def test_official_sdk_downloads_through_the_redirect(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    a = await uploaded(storage_client, tmp_path, "redir/a.bin", 3 * PART + 7)
    b = await uploaded(storage_client, tmp_path, "redir/sub/b.bin", 100)
    emulator.config.faults.redirect_downloads = True
    c = emulator.counters
    c.reset()
    env = {**os.environ, **emulator.sdk_env()}
    result = await anyio.run_process(
        [sys.executable, "-c", SDK_SCRIPT, str(tmp_path)], env=env, check=False
    )
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    assert (tmp_path / "sdk-a.bin").read_bytes() == a
    assert (tmp_path / "sdk-folder" / "a.bin").read_bytes() == a
    assert (tmp_path / "sdk-folder" / "sub" / "b.bin").read_bytes() == b
    assert c.get("storage:downloads_redirected") >= 3
    assert c.get(PRESIGNED_GET) >= 3
    assert c.get("storage:authorization_header_seen") == 0


async def test_without_redirects_nothing_changes(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    data = await uploaded(storage_client, tmp_path, "r/plain.bin", 4 * PART)
    c = emulator.counters
    c.reset()
    res = await storage_client.storage.download("r/plain.bin", tmp_path / "p.bin")
    assert (tmp_path / "p.bin").read_bytes() == data
    assert c.get(API_GET) == res.ranges == 4 and c.get(PRESIGNED_GET) == 0
    locations = storage_client.storage.engine.locations
    key = blob_path(emulator, "r/plain.bin")
    # the HEAD was not redirected: the ranges did not wait for each other's first answer
    assert locations._entries[key].direct and locations.location(key) is None
