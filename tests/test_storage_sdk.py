"""The official lightning-sdk's storage calls work unchanged against the emulator, and files
move both ways between it and aiolightning."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import anyio
import pytest

from aiolightning.emulator import Emulator
from aiolightning.transfer import TransferConfig

pytestmark = pytest.mark.anyio

SCRIPT = r"""
import hashlib, os, sys
from lightning_sdk import Teamspace

work = sys.argv[1]
ts = Teamspace(os.environ["LIGHTNING_TEAMSPACE"])
src = os.path.join(work, "sdk-src.bin")
ts.upload_file(src, "sdk/big.bin", progress_bar=False)   # above the multipart threshold
ts.upload_file(os.path.join(work, "small.txt"), "sdk/sub/small.txt", progress_bar=False)
ts.upload_file(os.path.join(work, "empty.txt"), "sdk/empty.txt", progress_bar=False)
out = os.path.join(work, "sdk-out.bin")
ts.download_file("sdk/big.bin", out)
assert open(out, "rb").read() == open(src, "rb").read()
ts.download_file("from-aio/aio.bin", os.path.join(work, "aio-via-sdk.bin"))
flat = sorted((e.path, e.is_dir, e.size) for e in ts.list_files("sdk"))
print("flat", flat)
assert flat == [("big.bin", False, os.path.getsize(src)), ("empty.txt", False, 0), ("sub", True, None)], flat
deep = sorted(e.path for e in ts.list_files("sdk", recursive=True))
assert deep == ["big.bin", "empty.txt", "sub/small.txt"], deep
ts.download_folder("sdk", os.path.join(work, "folder"))
assert open(os.path.join(work, "folder", "sub", "small.txt")).read() == "hello"
print("ok")
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_official_sdk_upload_download_list(emulator: Emulator, tmp_path: Path) -> None:
    part = 256 * 1024
    src = tmp_path / "sdk-src.bin"
    src.write_bytes(os.urandom(5 * part + 11))
    (tmp_path / "small.txt").write_text("hello")
    (tmp_path / "empty.txt").write_bytes(b"")
    aio_src = tmp_path / "aio.bin"
    aio_src.write_bytes(os.urandom(3 * part + 5))

    async with emulator.client() as client:
        client.storage.configure(
            TransferConfig(
                part_size=part,
                multipart_threshold=part,
                download_threshold=part,
                download_part_size=part,
                journal_dir=tmp_path / "j",
                fsync=False,
            )
        )
        await client.storage.upload(aio_src, "from-aio/aio.bin", teamspace=emulator.teamspace_name)

        env = {
            **os.environ,
            **emulator.sdk_env(),
            "LIGHTNING_MULTIPART_THRESHOLD": str(part),
            "LIGHTNING_MULTI_PART_PART_SIZE": str(part),
        }
        started = emulator.counters.get("storage:uploads_started")
        result = await anyio.run_process(
            [sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, check=False
        )
        out = result.stdout.decode() + result.stderr.decode()
        assert result.returncode == 0, out
        assert "ok" in result.stdout.decode()
        # the SDK went multipart for the big file
        assert emulator.counters.get("storage:uploads_started") == started + 1
        assert emulator.storage is not None and emulator.storage.open_uploads() == []
        assert sha(tmp_path / "aio-via-sdk.bin") == sha(aio_src)

        # and aiolightning reads what the SDK wrote
        back = tmp_path / "sdk-via-aio.bin"
        await client.storage.download(
            f"lit://{emulator.org_name}/{emulator.teamspace_name}/sdk/big.bin", back
        )
        assert sha(back) == sha(src)
