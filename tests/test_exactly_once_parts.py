"""Storage parts exactly once: a part PUT whose answer is lost is not sent again.

The presigned URLs of the emulator are pointed at the fault proxy of ``_fault_proxy.py``,
which breaks the answer of one chosen part PUT after the store kept the bytes (or, with
``before=True``, loses the request before the store sees it: the client cannot tell the
two apart). The emulator's effect counters show how often each part was stored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from _fault_proxy import FaultProxy, fault_proxy, proxied_client
from _storage import PART, small_config

from aiolightning._retry import RetryPolicy
from aiolightning.emulator import Emulator
from aiolightning.emulator._config import EmulatorConfig, Faults
from aiolightning.transfer import TransferError
from aiolightning.transfer._journal import Journal

pytestmark = pytest.mark.anyio

RETRY = RetryPolicy(base=0.02, max_wait=0.3, max_attempts=8)
PARTS = 4
PART2 = r"/_storage/parts/[^/]+/2$"


def _file(tmp_path: Path, size: int = PARTS * PART - 5) -> tuple[Path, bytes]:
    data = hashlib.sha256(b"parts").digest() * (size // 32 + 1)
    path = tmp_path / "big.bin"
    path.write_bytes(data[:size])
    return path, data[:size]


async def _upload(
    emu: Emulator, proxy: FaultProxy, tmp_path: Path, local: Path, **config: Any
) -> Any:
    emu.storage.signer.base_url = lambda: proxy.url  # the PUTs go through the proxy too
    async with proxied_client(emu, proxy, retry=RETRY) as client:
        client.storage.configure(small_config(tmp_path, **config))
        result = await client.storage.upload(local, "lit:///big.bin")
        out = tmp_path / "back.bin"
        await client.storage.download("lit:///big.bin", out)
        return result, out.read_bytes()


def _stored(emu: Emulator) -> dict[str, int]:
    return emu.counters.effects("part_stored")


@pytest.mark.parametrize("read_chunk", [64 * 1024, PART], ids=["streamed", "read-whole"])
@pytest.mark.parametrize("kind", ["drop", "500", "502", "truncate"])
async def test_a_stored_part_whose_answer_is_lost_is_not_sent_again(
    tmp_path: Path, kind: str, read_chunk: int
) -> None:
    local, data = _file(tmp_path)
    async with Emulator() as emu, fault_proxy(emu.url) as proxy:
        proxy.break_next("PUT", PART2, kind)
        result, back = await _upload(emu, proxy, tmp_path, local, read_chunk=read_chunk)
        assert proxy.injected[kind] == 1
        assert back == data and result.parts == PARTS
        assert _stored(emu) == {f"big.bin#{k}": 1 for k in range(1, PARTS + 1)}
        assert emu.counters.get("storage:completes_refused") == 0
        assert emu.storage.open_uploads() == []


@pytest.mark.parametrize("kind", ["drop", "502"])
async def test_a_part_lost_before_the_store_kept_it_is_sent_after_complete_refuses(
    tmp_path: Path, kind: str
) -> None:
    """The same failure seen by the client, but the store never got the part: complete is
    refused (InvalidPart, nothing committed), and only that part is sent again."""
    local, data = _file(tmp_path)
    async with Emulator() as emu, fault_proxy(emu.url) as proxy:
        proxy.break_next("PUT", PART2, kind, before=True)
        result, back = await _upload(emu, proxy, tmp_path, local)
        assert proxy.injected[f"{kind} before"] == 1
        assert back == data and result.parts == PARTS
        assert _stored(emu) == {f"big.bin#{k}": 1 for k in range(1, PARTS + 1)}
        assert emu.counters.get("storage:completes_refused") == 1
        assert emu.counters.get("storage:uploads_completed") == 1
        assert emu.storage.open_uploads() == []
        assert not list((tmp_path / "journals").glob("*.jsonl"))  # dropped once completed


async def test_under_kms_etags_a_part_whose_answer_is_lost_is_sent_again(tmp_path: Path) -> None:
    """Under SSE-KMS the ETags are not MD5s: the part cannot be recorded by the MD5 sent,
    so it is sent again (the same bytes stored twice is harmless)."""
    local, data = _file(tmp_path)
    config = EmulatorConfig(faults=Faults(kms_etags=True))
    async with Emulator(config=config) as emu, fault_proxy(emu.url) as proxy:
        proxy.break_next("PUT", PART2, "drop")
        # one part at a time: part 1's answer (with its SSE-KMS header) comes first
        result, back = await _upload(emu, proxy, tmp_path, local, max_parts_in_flight=1)
        assert back == data and result.parts == PARTS
        stored = _stored(emu)
        assert stored.pop("big.bin#2") == 2
        assert stored == {f"big.bin#{k}": 1 for k in (1, 3, 4)}
        assert emu.counters.get("storage:completes_refused") == 0


async def test_a_part_recorded_by_its_md5_is_not_journaled(tmp_path: Path) -> None:
    """The resume journal holds only the parts whose ETag the store answered: a part
    recorded by the MD5 sent is sent again by a resume (its upload was never verified)."""
    local, _ = _file(tmp_path)
    async with Emulator() as emu, fault_proxy(emu.url) as proxy:
        proxy.break_next("PUT", PART2, "drop")
        proxy.break_next("POST", r"/blobs/complete$", "502", times=100, before=True)
        emu.storage.signer.base_url = lambda: proxy.url
        async with proxied_client(emu, proxy, retry=RETRY) as client:
            client.storage.configure(small_config(tmp_path, max_parts_in_flight=1))
            with pytest.raises(TransferError, match="completing the upload failed"):
                await client.storage.upload(local, "lit:///big.bin")
        [path] = (tmp_path / "journals").glob("*.jsonl")
        journal = Journal.load(path)
        assert sorted(journal.done) == [1, 3, 4]
        assert _stored(emu) == {f"big.bin#{k}": 1 for k in range(1, PARTS + 1)}
        # the resume sends part 2 again and completes
        proxy._rules.clear()
        async with proxied_client(emu, proxy, retry=RETRY) as client:
            client.storage.configure(small_config(tmp_path, max_parts_in_flight=1))
            result = await client.storage.upload(local, "lit:///big.bin")
        assert result.parts_sent == 1
        assert emu.counters.get("storage:uploads_completed") == 1
