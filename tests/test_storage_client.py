"""client.storage against the emulator: round trips, faults, resume, bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import anyio
import pytest
from _storage import PART, KiB, MiB, small_config

from aiolightning import AsyncLightning, LightningError
from aiolightning.emulator import Emulator
from aiolightning.transfer import (
    BulkTransferError,
    RemoteFileNotFoundError,
    StorageError,
    StoragePathError,
    TransferError,
    TransferProgress,
)

pytestmark = pytest.mark.anyio


def store(emulator: Emulator) -> Any:
    return emulator.storage


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def write_random(path: Path, size: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.sha256(str(seed).encode()).digest() * (MiB // 32)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left > 0:
            chunk = block[: min(left, len(block))]
            # vary each MiB so misplaced parts are detected
            f.write(i.to_bytes(8, "little") + chunk[8:] if len(chunk) > 8 else chunk)
            left -= len(chunk)
            i += 1
    return path


@pytest.mark.parametrize(
    "size", [0, 1, PART, PART + 1, 3 * PART + 17], ids=["0B", "1B", "part", "part+1", "3parts+17"]
)
async def test_round_trip_byte_exact(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path, size: int
) -> None:
    src = write_random(tmp_path / "src.bin", size, seed=size)
    res = await storage_client.storage.upload(src, "data/file.bin")
    assert res.size == size and res.multipart == (size > PART)
    info = await storage_client.storage.stat("data/file.bin")
    assert info.size == size and not info.is_dir
    (tmp_path / "out").mkdir()  # a download creates no folder (as cp)
    dest = tmp_path / "out" / "file.bin"
    got = await storage_client.storage.download("lit:///data/file.bin", dest)
    assert got.size == size
    assert sha(dest) == sha(src)
    assert not list((tmp_path / "out").glob(".*aiolightning-part"))
    assert store(emulator).open_uploads() == []
    assert emulator.counters.get("storage:authorization_header_seen") == 0


async def test_300_mib_round_trip(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    storage_client.storage.configure(
        small_config(
            tmp_path,
            part_size=8 * MiB,
            multipart_threshold=8 * MiB,
            byte_budget=64 * MiB,
            download_part_size=16 * MiB,
            download_threshold=8 * MiB,
            write_chunk=4 * MiB,
        )
    )
    size = 300 * MiB + 123
    src = write_random(tmp_path / "big.bin", size, seed=7)
    seen: list[TransferProgress] = []
    res = await storage_client.storage.upload(src, "big/big.bin", progress=lambda p: seen.append(p))
    assert res.parts == 38 and res.parts_sent == 38
    assert seen[-1].bytes_done == size and seen[-1].files_done == 1
    dest = tmp_path / "big.out"
    got = await storage_client.storage.download("big/big.bin", dest)
    assert got.ranges == 19
    assert sha(dest) == sha(src)
    assert storage_client.storage.engine.budget.peak <= 64 * MiB
    assert emulator.counters.get("storage:authorization_header_seen") == 0


async def test_upload_dir_and_download_dir_of_1000_files(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    src = tmp_path / "tree"
    for i in range(1000):
        p = src / f"d{i % 7}" / f"f{i:04}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"file {i}\n".encode() * (i % 5))
    progress: list[tuple[int, int]] = []
    results = await storage_client.storage.upload_dir(
        src, "lit:///many", progress=lambda p: progress.append((p.files_done, p.files_total))
    )
    assert len(results) == 1000
    assert progress[-1] == (1000, 1000)
    # URLs of small files are requested in batches
    sign_calls = emulator.counters.get("requests:POST /v1/projects/{pid}/artifacts/blobs")
    assert 0 < sign_calls <= 250
    listed = [e async for e in storage_client.storage.list("many", recursive=True)]
    assert len(listed) == 1000
    top = [e async for e in storage_client.storage.list("many")]
    assert sorted(e.name for e in top) == [f"d{i}" for i in range(7)] and all(e.is_dir for e in top)
    out = tmp_path / "back"
    downloaded = await storage_client.storage.download_dir("many", out)
    assert len(downloaded) == 1000
    for i in range(1000):
        rel = Path(f"d{i % 7}") / f"f{i:04}.txt"
        assert (out / rel).read_bytes() == (src / rel).read_bytes()


async def test_part_failures_and_expiring_urls(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.config.faults.part_failure_rate = 0.1
    emulator.config.faults.url_ttl = 1.0
    emulator.config.faults.latency = 0.05  # slow-ish parts: URLs expire in the queue
    storage_client.storage.configure(
        small_config(tmp_path, byte_budget=2 * PART, max_parts_in_flight=2)
    )
    size = 40 * PART + 5
    src = write_random(tmp_path / "f.bin", size, seed=3)
    await storage_client.storage.upload(src, "faulty/f.bin")
    c = emulator.counters
    assert c.get("storage:parts_failed") > 0
    assert c.get("storage:parts_resigned") > 0
    emulator.config.faults.part_failure_rate = 0.0
    dest = tmp_path / "f.out"
    await storage_client.storage.download("faulty/f.bin", dest)
    assert sha(dest) == sha(src)
    assert store(emulator).open_uploads() == []


async def test_cancelled_upload_resumes_from_journal(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.config.faults.latency = 0.02
    storage_client.storage.configure(small_config(tmp_path, max_parts_in_flight=2))
    n_parts = 20
    src = write_random(tmp_path / "r.bin", n_parts * PART, seed=5)
    c = emulator.counters

    reached = anyio.Event()

    def on_progress(p: TransferProgress) -> None:
        if p.bytes_done >= 8 * PART:
            reached.set()

    with anyio.move_on_after(30) as scope:
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                await storage_client.storage.upload(src, "resume/r.bin", progress=on_progress)

            tg.start_soon(run)
            await reached.wait()
            tg.cancel_scope.cancel()
    assert not scope.cancelled_caught
    first = c.get("storage:parts_put")
    assert 3 <= first < n_parts
    assert len(store(emulator).open_uploads()) == 1  # kept for the resume
    journals = list((tmp_path / "journals").glob("*.jsonl"))
    assert len(journals) == 1

    res = await storage_client.storage.upload(src, "resume/r.bin")
    assert res.parts == n_parts
    # only the missing parts were sent (a part in flight at cancel time may be resent)
    assert res.parts_sent <= n_parts - first + 2
    assert c.get("storage:parts_put") - first == res.parts_sent
    assert c.get("storage:uploads_started") == 1
    assert store(emulator).open_uploads() == []
    assert not list((tmp_path / "journals").glob("*.jsonl"))
    dest = tmp_path / "r.out"
    await storage_client.storage.download("resume/r.bin", dest)
    assert sha(dest) == sha(src)


async def test_changed_file_starts_over_and_replaces_stale_upload(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    storage_client.storage.configure(small_config(tmp_path, max_parts_in_flight=1))
    src = write_random(tmp_path / "x.bin", 8 * PART, seed=1)
    c = emulator.counters
    reached = anyio.Event()

    def on_progress(p: TransferProgress) -> None:
        if p.bytes_done >= 2 * PART:
            reached.set()

    with anyio.move_on_after(30):
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                await storage_client.storage.upload(src, "x.bin", progress=on_progress)

            tg.start_soon(run)
            await reached.wait()
            tg.cancel_scope.cancel()
    write_random(src, 9 * PART, seed=2)  # a different file now
    await storage_client.storage.upload(src, "x.bin")
    assert c.get("storage:uploads_aborted") == 1
    assert store(emulator).open_uploads() == []
    dest = tmp_path / "x.out"
    await storage_client.storage.download("x.bin", dest)
    assert sha(dest) == sha(src)


async def test_failed_download_leaves_no_partial_file(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    dest = tmp_path / "nothing.bin"
    with pytest.raises(RemoteFileNotFoundError):
        await storage_client.storage.download("missing/file.bin", dest)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240


async def test_list_stat_exists_delete(storage_client: AsyncLightning, tmp_path: Path) -> None:
    a = write_random(tmp_path / "a.txt", 10)
    await storage_client.storage.upload(a, "lit:///docs/")
    await storage_client.storage.upload(a, "docs/sub/b.txt")
    assert await storage_client.storage.exists("docs/a.txt")
    assert (await storage_client.storage.stat("docs")).is_dir
    assert not await storage_client.storage.exists("docs/zzz")
    with pytest.raises(StorageError, match="recursive=True"):
        await storage_client.storage.delete("docs/sub")
    await storage_client.storage.delete("docs/a.txt")
    assert not await storage_client.storage.exists("docs/a.txt")
    await storage_client.storage.delete("docs", recursive=True)
    assert [e async for e in storage_client.storage.list("", recursive=True)] == []
    await storage_client.storage.delete("docs/a.txt", missing_ok=True)
    with pytest.raises(RemoteFileNotFoundError):
        await storage_client.storage.delete("docs/a.txt")


async def test_bad_input_fails_before_any_request(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    before = emulator.counters.get("requests")
    (tmp_path / "adir").mkdir()
    with pytest.raises(StoragePathError, match="does not exist"):
        await storage_client.storage.upload(tmp_path / "nope.bin", "x")
    with pytest.raises(StoragePathError, match="is a directory"):
        await storage_client.storage.upload(tmp_path / "adir", "x")
    f = write_random(tmp_path / "f.bin", 3)
    for bad in [
        "../etc/passwd",
        "a/../../b",
        "a//b",
        "lit://onlyowner",
        "lit://o/t/../x",
        "s3://x/y",
    ]:
        with pytest.raises(StoragePathError):
            await storage_client.storage.upload(f, bad)
    with pytest.raises(StoragePathError):
        await storage_client.storage.download("lit:///", tmp_path / "x")
    with pytest.raises(StoragePathError):
        await storage_client.storage.upload_dir(tmp_path / "nope", "x")
    with pytest.raises(StoragePathError):
        await storage_client.storage.delete("")
    assert emulator.counters.get("requests") == before
    assert issubclass(StoragePathError, LightningError)


async def test_upload_many_reports_each_outcome(
    storage_client: AsyncLightning, tmp_path: Path
) -> None:
    good = [write_random(tmp_path / f"{i}.bin", 100 + i) for i in range(4)]
    pairs: list[tuple[Any, str]] = [(p, f"many/{p.name}") for p in good]
    pairs.insert(2, (tmp_path / "missing.bin", "many/missing.bin"))
    outcomes = await storage_client.storage.upload_many(pairs)
    assert [o.ok for o in outcomes] == [True, True, False, True, True]
    assert isinstance(outcomes[2].error, StoragePathError)
    down = await storage_client.storage.download_many(
        [(f"many/{p.name}", tmp_path / "d" / p.name) for p in good]
        + [("many/nope", tmp_path / "d" / "n")]
    )
    assert [o.ok for o in down] == [True] * 4 + [False]
    assert isinstance(down[4].error, RemoteFileNotFoundError)
    for p in good:
        assert (tmp_path / "d" / p.name).read_bytes() == p.read_bytes()


async def test_bulk_error_lists_failures(storage_client: AsyncLightning, tmp_path: Path) -> None:
    await storage_client.storage.upload(write_random(tmp_path / "a", 5), "dl/a")
    await storage_client.storage.upload(write_random(tmp_path / "b", 5), "dl/b")
    out = tmp_path / "out"
    (out / "b").mkdir(parents=True)  # a folder where the file "b" must go
    with pytest.raises(BulkTransferError) as ei:
        await storage_client.storage.download_dir("dl", out)
    assert len(ei.value.failures) == 1 and len(ei.value.outcomes) == 2
    assert (out / "a").read_bytes() == (tmp_path / "a").read_bytes()


async def test_transfer_error_names_file_and_part(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.config.faults.part_failure_rate = 1.0
    storage_client.storage.configure(small_config(tmp_path, part_attempts=2))
    src = write_random(tmp_path / "p.bin", 2 * PART)
    with pytest.raises(TransferError) as ei:
        await storage_client.storage.upload(src, "p.bin")
    assert ei.value.part in (1, 2) and "p.bin" in str(ei.value) and "part" in str(ei.value)


async def test_studio_scope(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    studio = await storage_client.studios.create("files-studio")
    src = write_random(tmp_path / "s.bin", 3 * PART + 1)
    await storage_client.storage.upload(src, "work/s.bin", studio="files-studio")
    assert [
        e.path async for e in storage_client.storage.list("", studio=studio.id, recursive=True)
    ] == ["work/s.bin"]
    # the studio's files are not in the drive root
    assert [e async for e in storage_client.storage.list("", recursive=True)] == []
    dest = tmp_path / "s.out"
    await storage_client.storage.download("work/s.bin", dest, studio="files-studio")
    assert sha(dest) == sha(src)
    await storage_client.storage.delete("work", recursive=True, studio="files-studio")
    assert not await storage_client.storage.exists("work/s.bin", studio="files-studio")


async def test_control_and_range_errors_are_retried(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    src = write_random(tmp_path / "e.bin", 12 * PART + 3, seed=11)
    emulator.config.faults.error_rate = 0.15  # 5xx on /v1 calls: sign, complete, ranged GETs
    emulator.config.faults.drop_rate = 0.05
    await storage_client.storage.upload(src, "errs/e.bin")
    dest = tmp_path / "e.out"
    await storage_client.storage.download("errs/e.bin", dest)
    assert sha(dest) == sha(src)
    assert store(emulator).open_uploads() == []


async def test_corrupt_journal_fails_cleanly_then_starts_over(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    storage_client.storage.configure(small_config(tmp_path, max_parts_in_flight=1))
    src = write_random(tmp_path / "c.bin", 10 * PART, seed=9)
    reached = anyio.Event()

    def on_progress(p: TransferProgress) -> None:
        if p.bytes_done >= 4 * PART:
            reached.set()

    with anyio.move_on_after(30):
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                await storage_client.storage.upload(src, "c.bin", progress=on_progress)

            tg.start_soon(run)
            await reached.wait()
            tg.cancel_scope.cancel()
    (journal,) = (tmp_path / "journals").glob("*.jsonl")
    lines = journal.read_text().splitlines()
    assert len(lines) >= 3  # header + finished parts
    lines[1] = lines[1][: lines[1].index('"etag"')] + '"etag":"\\"0123\\""}'
    journal.write_text("\n".join(lines) + "\n")
    with pytest.raises(TransferError, match="completing the upload failed"):
        await storage_client.storage.upload(src, "c.bin")
    assert not journal.exists()  # a journal the server refuses is not kept
    await storage_client.storage.upload(src, "c.bin")
    dest = tmp_path / "c.out"
    await storage_client.storage.download("c.bin", dest)
    assert sha(dest) == sha(src)
    assert store(emulator).open_uploads() == []


@pytest.mark.parametrize("md5_backend", ["multi-buffer", "hashlib"])
async def test_parts_damaged_in_transit_are_caught_by_the_md5_check_and_sent_again(
    storage_client: AsyncLightning,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    md5_backend: str,
) -> None:
    from aiolightning.transfer import _md5

    if md5_backend == "hashlib":
        monkeypatch.setattr(_md5, "_HASHER", None)
        monkeypatch.setattr(_md5, "QUEUE_DEPTH", 1)
    elif _md5._HASHER is None:
        pytest.skip("the multi-buffer hasher is not in use on this CPU")
    emulator.config.faults.corrupt_rate = 0.2
    storage_client.storage.configure(small_config(tmp_path, part_attempts=20))
    big = write_random(tmp_path / "big.bin", 24 * PART + 7, seed=21)  # streamed parts
    one = write_random(tmp_path / "one.bin", PART, seed=22)  # a single PUT
    smalls = tmp_path / "smalls"
    for i in range(40):
        write_random(smalls / f"s{i}.bin", 10 * KiB + i, seed=100 + i)  # read whole
    await storage_client.storage.upload(big, "damaged/big.bin")
    await storage_client.storage.upload(one, "damaged/one.bin")
    await storage_client.storage.upload_dir(smalls, "damaged/smalls")
    assert emulator.counters.get("storage:puts_corrupted") > 0
    emulator.config.faults.corrupt_rate = 0.0
    (tmp_path / "out").mkdir()
    for src, remote in ((big, "damaged/big.bin"), (one, "damaged/one.bin")):
        dest = tmp_path / "out" / src.name
        await storage_client.storage.download(remote, dest)
        assert sha(dest) == sha(src)
    await storage_client.storage.download_dir("damaged/smalls", tmp_path / "smalls-back")
    for i in range(40):
        name = f"s{i}.bin"
        assert (tmp_path / "smalls-back" / name).read_bytes() == (smalls / name).read_bytes()


async def test_without_the_md5_check_damaged_parts_go_unnoticed(
    storage_client: AsyncLightning, emulator: Emulator, tmp_path: Path
) -> None:
    """The check above is what catches the damage: switched off, it gets through."""
    emulator.config.faults.corrupt_rate = 1.0
    storage_client.storage.configure(small_config(tmp_path, verify_checksums=False))
    src = write_random(tmp_path / "big.bin", 4 * PART, seed=23)
    await storage_client.storage.upload(src, "damaged/unchecked.bin")
    emulator.config.faults.corrupt_rate = 0.0
    dest = tmp_path / "unchecked.out"
    await storage_client.storage.download("damaged/unchecked.bin", dest)
    assert dest.stat().st_size == src.stat().st_size and sha(dest) != sha(src)


async def test_download_creates_no_missing_folder_and_names_a_remote_folder(
    storage_client: AsyncLightning, tmp_path: Path
) -> None:
    """Like cp: a download into a folder that does not exist fails (nothing is created),
    and a remote folder asks for download_dir."""
    from aiolightning.transfer import IsAFolderError, StoragePathError

    src = tmp_path / "f.txt"
    src.write_text("f")
    await storage_client.storage.upload(src, "lit:///folder/f.txt")
    missing = tmp_path / "nonexistent-dir"
    with pytest.raises(StoragePathError, match="does not exist"):
        await storage_client.storage.download("lit:///folder/f.txt", missing / "sub" / "f.txt")
    with pytest.raises(StoragePathError, match="does not exist"):
        await storage_client.storage.download_dir("lit:///folder", missing / "sub")
    assert not missing.exists()
    with pytest.raises(IsAFolderError, match="download_dir"):
        await storage_client.storage.download("lit:///folder", tmp_path / "got")
    await storage_client.storage.download_dir("lit:///folder", missing)  # its parent exists
    assert (missing / "f.txt").read_text() == "f"


async def test_a_studios_files_need_that_studio(
    storage_client: AsyncLightning, tmp_path: Path
) -> None:
    """``studios/<name>/...`` in a drive path is that studio's files: the studio must exist
    (else the upload would make a folder that no studio sees), and its name be valid."""
    from aiolightning import InvalidArgumentError
    from aiolightning.resources.studios import StudioNotFoundError

    src = tmp_path / "a.txt"
    src.write_text("a")
    with pytest.raises(StudioNotFoundError, match="'nosuch' does not exist"):
        await storage_client.storage.upload(src, "lit:///studios/nosuch/a.txt")
    with pytest.raises(InvalidArgumentError, match="studio name"):
        await storage_client.storage.upload(src, "lit:///studios/bad name/a.txt")
    assert not await storage_client.storage.exists("lit:///studios/nosuch/a.txt")  # a read
    await storage_client.studios.create("there")
    await storage_client.storage.upload(src, "lit:///studios/there/a.txt")
    assert await storage_client.storage.exists("lit:///studios/there/a.txt")
