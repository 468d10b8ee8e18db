"""Resume journals: pruning, best effort when the journal directory is unusable, and resumes
of multipart uploads that expired on the server (the emulator's ``upload_ttl``)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import aiohttp
import anyio
import pytest
from _storage import PART, small_config

from aiolightning import AsyncLightning
from aiolightning.emulator import Emulator
from aiolightning.transfer import RemoteTarget, TransferConfig, TransferError, TransferProgress
from aiolightning.transfer._journal import Journal, JournalHeader, prune_journals, start_prune

pytestmark = pytest.mark.anyio

DAY = 86400.0


def write_file(path: Path, size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    data = bytes(b ^ (i & 0xFF) for i, b in enumerate(block * (size // 32 + 1)))[:size]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def header(n: int = 2, upload_id: str = "u") -> JournalHeader:
    return JournalHeader(
        target="t", local="/l", size=n * 10, mtime_ns=1, part_size=10, parts=n, upload_id=upload_id
    )


def age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t))


# ---------------------------------------------------------------------------- pruning


def test_prune_removes_old_complete_and_temp_journals_only(tmp_path: Path) -> None:
    root = tmp_path / "j"
    root.mkdir()
    old = root / "old.jsonl"
    old.write_text("x\n")
    age(old, 8)
    fresh = root / "fresh.jsonl"
    fresh.write_text("x\n")
    age(fresh, 6)
    stale_tmp = root / "crash.jsonl.tmp"
    stale_tmp.write_text("x")
    age(stale_tmp, 8)
    other = root / "notes.txt"  # not ours
    other.write_text("x")
    age(other, 30)
    # a journal whose upload completed but whose delete failed ends with the marker
    done = Journal(root / "done.jsonl")
    done.start(header())
    done.record(1, '"e1"')
    real_unlink = Path.unlink

    def failing_unlink(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError("read-only directory")

    Path.unlink = failing_unlink  # type: ignore[assignment,method-assign]
    try:
        done.finish(drop=True, completed=True)
    finally:
        Path.unlink = real_unlink  # type: ignore[method-assign]
    loaded = Journal.load(root / "done.jsonl")
    assert loaded.completed and loaded.done == {1: '"e1"'}
    assert not loaded.matches(header())  # a completed upload is never resumed
    # a journal in use by an upload of this process is left alone, however old
    busy = Journal(root / "busy.jsonl")
    busy.start(header())
    age(busy.path, 30)

    assert prune_journals(root, 7 * DAY) == 3
    assert sorted(p.name for p in root.iterdir()) == ["busy.jsonl", "fresh.jsonl", "notes.txt"]
    busy.finish(drop=False)  # the upload is over, the journal kept for a resume
    assert prune_journals(root, 7 * DAY) == 1
    assert prune_journals(root, None) == 0  # None: no age limit
    assert (root / "fresh.jsonl").exists()


def test_prune_never_raises(tmp_path: Path) -> None:
    assert prune_journals(tmp_path / "missing", DAY) == 0
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert prune_journals(afile, DAY) == 0


def test_prune_runs_once_per_process_and_directory(tmp_path: Path) -> None:
    root = tmp_path / "once"
    root.mkdir()
    (root / "a.jsonl").write_text("x")
    age(root / "a.jsonl", 10)
    t = start_prune(root, 7 * DAY)
    assert t is not None
    t.join()
    assert not (root / "a.jsonl").exists()
    (root / "b.jsonl").write_text("x")
    age(root / "b.jsonl", 10)
    assert start_prune(root, 7 * DAY) is None  # already done in this process
    assert (root / "b.jsonl").exists()


def test_journal_max_age_is_validated() -> None:
    assert TransferConfig().journal_max_age == 7 * DAY
    assert TransferConfig(journal_max_age=None).journal_max_age is None
    with pytest.raises(ValueError, match="journal_max_age"):
        TransferConfig(journal_max_age=0)


async def test_first_resumable_upload_prunes_the_journal_dir_once(
    storage_client: AsyncLightning, tmp_path: Path
) -> None:
    root = tmp_path / "journals"
    root.mkdir()
    old = root / ("0" * 40 + ".jsonl")
    old.write_text('{"v":1}\n')
    age(old, 8)
    src = tmp_path / "a.bin"
    write_file(src, 3 * PART, seed=1)
    res = await storage_client.storage.upload(src, "p/a.bin")
    assert res.multipart
    with anyio.fail_after(30):  # the prune runs in a background thread
        while old.exists():  # noqa: ASYNC110
            await anyio.sleep(0.01)
    # and the upload's own journal was deleted when it completed
    assert list(root.iterdir()) == []
    again = root / ("1" * 40 + ".jsonl")
    again.write_text('{"v":1}\n')
    age(again, 8)
    await storage_client.storage.upload(src, "p/b.bin")
    assert again.exists()  # pruned once per process: no second pass started


async def test_an_unusable_journal_dir_does_not_fail_the_upload(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    storage_client.storage.configure(small_config(tmp_path, journal_dir=blocker / "journals"))
    src = tmp_path / "u.bin"
    data = write_file(src, 3 * PART + 1, seed=2)
    res = await storage_client.storage.upload(src, "u/u.bin")
    assert res.multipart and res.parts == 4
    await storage_client.storage.download("u/u.bin", tmp_path / "u.out")
    assert (tmp_path / "u.out").read_bytes() == data
    assert emulator.storage.open_uploads() == []


# ---------------------------------------------------------------------------- expired uploads


async def cancel_midway(storage_client: AsyncLightning, src: Path, remote: str, at: int) -> None:
    reached = anyio.Event()

    def on_progress(p: TransferProgress) -> None:
        if p.bytes_done >= at:
            reached.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                await storage_client.storage.upload(src, remote, progress=on_progress)

            tg.start_soon(run)
            await reached.wait()
            tg.cancel_scope.cancel()


async def test_resume_after_the_upload_expired_starts_a_fresh_upload(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.config.faults.latency = 0.01
    storage_client.storage.configure(small_config(tmp_path, max_parts_in_flight=2))
    n_parts = 12
    src = tmp_path / "r.bin"
    data = write_file(src, n_parts * PART, seed=3)
    await cancel_midway(storage_client, src, "exp/r.bin", 4 * PART)
    store = emulator.storage
    (up,) = store.open_uploads()
    assert list(up.directory.iterdir())  # parts were received
    assert len(list((tmp_path / "journals").glob("*.jsonl"))) == 1
    # a day later the store's lifecycle rule has expired the incomplete upload
    assert store.expire_uploads(now=time.time() + DAY + 1) == 1
    assert not up.directory.exists()
    c = emulator.counters
    started = c.get("storage:uploads_started")
    res = await storage_client.storage.upload(src, "exp/r.bin")  # not an error: a fresh upload
    assert res.parts_sent == n_parts and res.upload_id != up.upload_id
    assert c.get("storage:uploads_started") == started + 1
    assert store.open_uploads() == []
    assert not list((tmp_path / "journals").glob("*.jsonl"))
    await storage_client.storage.download("exp/r.bin", tmp_path / "r.out")
    assert (tmp_path / "r.out").read_bytes() == data


async def start_all_parts(
    emulator: Emulator, target: RemoteTarget, data: bytes
) -> tuple[str, dict[int, str]]:
    """A multipart upload with every part sent but not completed (as when a process dies
    between its last part and the complete call)."""
    n = -(-len(data) // PART)
    auth = aiohttp.encode_basic_auth(emulator.user_id, emulator.api_key)
    async with aiohttp.ClientSession(headers={"Authorization": auth}) as http:
        body = {
            "blobs": [{"path": target.path, "parts": n, "part_size": PART}],
            "cluster_id": target.cluster_id,
        }
        async with http.post(emulator.url + target.base + "/blobs", json=body) as r:
            assert r.status == 200
            res = (await r.json())["results"][0]
    etags: dict[int, str] = {}
    async with aiohttp.ClientSession() as plain:
        for u in res["urls"]:
            k = u["part_number"]
            async with plain.put(u["url"], data=data[(k - 1) * PART : k * PART]) as r:
                assert r.status == 200
                etags[k] = r.headers["ETag"]
    return res["upload_id"], etags


@pytest.mark.parametrize("expired", [False, True], ids=["open", "expired"])
async def test_resume_with_every_part_done(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path, expired: bool
) -> None:
    target = RemoteTarget(
        f"/v1/projects/{emulator.teamspace_id}/artifacts", "exp/all.bin", emulator.cluster_id
    )
    src = tmp_path / "all.bin"
    data = write_file(src, 3 * PART + 9, seed=4)
    upload_id, etags = await start_all_parts(emulator, target, data)
    st = src.stat()
    local = str(src.absolute())
    journal = Journal(Journal.path_for(tmp_path / "journals", target.key, local))
    journal.start(
        JournalHeader(
            target=target.key,
            local=local,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            part_size=PART,
            parts=4,
            upload_id=upload_id,
        ),
        etags,
    )
    journal.finish(drop=False)
    store = emulator.storage
    if expired:
        assert store.expire_uploads(now=time.time() + DAY + 1) == 1
    c = emulator.counters
    started = c.get("storage:uploads_started")
    res = await storage_client.storage.engine.upload_file(src, target)
    if expired:  # the probe found the upload gone: everything is sent again
        assert res.parts_sent == 4 and res.upload_id != upload_id
        assert c.get("storage:uploads_started") == started + 1
    else:  # nothing left to send: completed as it was
        assert res.parts_sent == 0 and res.upload_id == upload_id
        assert c.get("storage:uploads_started") == started
    assert store.open_uploads() == []
    assert not journal.path.exists()
    await storage_client.storage.download("exp/all.bin", tmp_path / "all.out")
    assert (tmp_path / "all.out").read_bytes() == data


async def test_an_upload_expiring_midway_fails_cleanly_then_starts_over(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    storage_client.storage.configure(small_config(tmp_path, max_parts_in_flight=1))
    src = tmp_path / "slow.bin"
    data = write_file(src, 12 * PART, seed=5)
    emulator.config.faults.latency = 0.05  # 12 sequential parts take well over the TTL
    emulator.config.faults.upload_ttl = 0.2
    with pytest.raises(TransferError, match="no longer exists on the server"):
        await storage_client.storage.upload(src, "exp/slow.bin")
    assert emulator.counters.get("storage:uploads_expired") == 1
    assert emulator.storage.open_uploads() == []
    assert not list((tmp_path / "journals").glob("*.jsonl"))
    assert not list((emulator.storage.root / "uploads").iterdir())
    emulator.config.faults.upload_ttl = DAY
    emulator.config.faults.latency = 0.0
    res = await storage_client.storage.upload(src, "exp/slow.bin")
    assert res.parts_sent == 12
    await storage_client.storage.download("exp/slow.bin", tmp_path / "slow.out")
    assert (tmp_path / "slow.out").read_bytes() == data


def test_multipart_etag_check() -> None:
    from aiolightning.transfer._etags import same_multipart_etag as _same_multipart_etag

    md5s = [hashlib.md5(b"a").hexdigest(), hashlib.md5(b"b").hexdigest()]
    parts = [{"part_number": i + 1, "etag": f'"{m}"'} for i, m in enumerate(md5s)]
    good = hashlib.md5(b"".join(bytes.fromhex(m) for m in md5s)).hexdigest()
    assert _same_multipart_etag(f'"{good}-2"', parts)
    assert not _same_multipart_etag(f'"{good}-3"', parts)
    assert not _same_multipart_etag(f'"{"0" * 32}-2"', parts)
    assert _same_multipart_etag('"opaque"', parts)  # nothing to tell: size decides
    assert _same_multipart_etag(f'"{good}-2"', [{"etag": "W/x"}, {"etag": "y"}])
