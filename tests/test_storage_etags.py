"""ETags that are not MD5s (a bucket under SSE-KMS): transfers succeed, unchecked, with one
WARNING; the check still catches damage where the ETags are MD5s."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from _storage import PART, KiB, small_config

from aiolightning import AsyncLightning
from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio


def write_random(path: Path, size: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.sha256(str(seed).encode()).digest()
    data = bytearray()
    i = 0
    while len(data) < size:
        data += hashlib.sha256(block + i.to_bytes(8, "little")).digest()
        i += 1
    path.write_bytes(bytes(data[:size]))
    return path


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("aiolightning") and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("headers", [True, False], ids=["sse-kms-headers", "no-headers"])
async def test_a_kms_bucket_round_trips_byte_exact_with_one_warning(
    storage_client: AsyncLightning,
    emulator: Emulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    headers: bool,
) -> None:
    emulator.config.faults.kms_etags = True
    emulator.config.faults.kms_headers = headers
    big = write_random(tmp_path / "big.bin", 6 * PART + 5, seed=1)  # multipart, streamed
    one = write_random(tmp_path / "one.bin", PART - 3, seed=2)  # one PUT, one GET
    caplog.set_level(logging.WARNING, logger="aiolightning")
    for src in (big, one):
        await storage_client.storage.upload(src, f"kms/{src.name}")
    info = await storage_client.storage.stat("kms/one.bin")
    assert info.etag.strip('"') != hashlib.md5(one.read_bytes()).hexdigest()  # no MD5
    (tmp_path / "out").mkdir()
    for src in (big, one):
        dest = tmp_path / "out" / src.name
        await storage_client.storage.download(f"kms/{src.name}", dest)
        assert dest.read_bytes() == src.read_bytes()
    said = warnings_of(caplog)
    if headers:  # the bucket says so: one warning for the client, nothing resent
        assert len(said) == 1 and "aws:kms" in said[0]
        assert emulator.counters.get("storage:parts_put") == 7 + 1
    else:  # found out by sending once more: one warning per upload, and for the download
        assert len(said) == 3 and all("twice for the same bytes" in w for w in said)
        assert [w.split(":")[0] for w in said] == [
            str(big),
            str(one),
            str(tmp_path / "out" / "one.bin"),
        ]
    assert emulator.counters.get("storage:puts_corrupted") == 0


async def test_damage_is_still_caught_where_the_etags_are_md5s(
    storage_client: AsyncLightning,
    emulator: Emulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Damaged parts are sent again, and their wrong ETags are never taken for non-MD5s:
    every part of this upload is damaged at least once."""
    emulator.config.faults.corrupt_rate = 0.6
    storage_client.storage.configure(small_config(tmp_path, part_attempts=30))
    big = write_random(tmp_path / "big.bin", 8 * PART + 1, seed=3)
    smalls = [write_random(tmp_path / f"s{i}.bin", 10 * KiB + i, seed=10 + i) for i in range(8)]
    caplog.set_level(logging.WARNING, logger="aiolightning")
    await storage_client.storage.upload(big, "d/big.bin")
    for s in smalls:
        await storage_client.storage.upload(s, f"d/{s.name}")
    assert emulator.counters.get("storage:puts_corrupted") > 5
    assert warnings_of(caplog) == []
    emulator.config.faults.corrupt_rate = 0.0
    (tmp_path / "out").mkdir()
    for src in (big, *smalls):
        dest = tmp_path / "out" / src.name
        await storage_client.storage.download(f"d/{src.name}", dest)
        assert dest.read_bytes() == src.read_bytes()


def test_which_responses_say_their_etag_is_no_md5() -> None:
    from multidict import CIMultiDict

    from aiolightning.transfer._etags import encryption, etag_md5

    md5 = "0123456789abcdef0123456789abcdef"
    cases = {
        (): "",
        (("x-amz-server-side-encryption", "AES256"),): "",  # SSE-S3: the ETag is the MD5
        (("X-Amz-Server-Side-Encryption", "aws:kms"),): "aws:kms",
        (("x-amz-server-side-encryption", "aws:kms:dsse"),): "aws:kms:dsse",
        (("x-amz-server-side-encryption-customer-algorithm", "AES256"),): "SSE-C",
    }
    for headers, kind in cases.items():
        assert encryption(CIMultiDict(headers)) == kind
        assert etag_md5(f'"{md5}"', kind) == (None if kind else md5)
    assert etag_md5(f'"{md5}-3"', "") is None  # a multipart ETag is no MD5 of the bytes
