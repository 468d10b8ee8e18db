"""Property tests of the upload journal and the multipart upload state machine: a crash at a
random point, then a resumed upload against the emulator.

The crash is one of: the task cancelled once a chosen number of bytes went out; every part
PUT failing from that point on (the emulator's ``part_failure_rate``); the complete call
failing (``error_rate``, no retries); and, on top, the journal's tail torn off as by a
process killed mid-write. Whatever the crash, the next upload of the same file is
byte-exact, and when it resumes it re-sends no part the journal holds: the emulator still
has the very part it received before the crash, and counts exactly the missing parts PUT.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

import anyio
from _storage import KiB, small_config
from hypothesis import event, given, settings
from hypothesis import strategies as st

from aiolightning import RetryPolicy
from aiolightning.emulator import Emulator
from aiolightning.transfer import TransferError, TransferProgress
from aiolightning.transfer._journal import Journal

PART = 64 * KiB
REMOTE = "journal/f.bin"


async def crash_and_resume(
    tmp: Path, n: int, tail: int, crash: str, at: float, parallel: int, attempts: int, tear: int
) -> None:
    async with Emulator(seed=0) as emu, emu.client(retry=RetryPolicy.none()) as c:
        c.storage.configure(
            small_config(
                tmp,
                part_size=PART,
                multipart_threshold=PART,
                byte_budget=4 * PART,
                max_parts_in_flight=parallel,
                part_attempts=attempts,
                read_chunk=16 * KiB,  # parts are streamed: a crash can land mid-part
            )
        )
        size = (n - 1) * PART + tail
        data = random.Random(size).randbytes(size)
        src = tmp / "f.bin"
        src.write_bytes(data)
        faults, counters = emu.config.faults, emu.counters
        threshold = max(1, int(size * at))
        reached = anyio.Event()

        def on_progress(p: TransferProgress) -> None:
            if crash == "part" and p.bytes_done >= threshold:
                faults.part_failure_rate = 1.0
            elif crash == "complete" and p.bytes_done >= size:
                faults.error_rate = 1.0
            elif crash == "cancel" and p.bytes_done >= threshold:
                reached.set()

        # --- the crash
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:

                async def upload() -> None:
                    try:
                        await c.storage.upload(src, REMOTE, progress=on_progress)
                    except TransferError:
                        assert crash in ("part", "complete")
                    reached.set()  # finished (or failed) before the cancel point

                tg.start_soon(upload)
                await reached.wait()
                tg.cancel_scope.cancel()
        faults.part_failure_rate = 0.0
        faults.error_rate = 0.0

        # --- what survived it: the journal (torn, maybe) and the open upload on the server
        journals = list((tmp / "journals").glob("*.jsonl"))
        assert len(journals) <= 1
        journal = None
        if journals:
            raw = journals[0].read_bytes()
            journals[0].write_bytes(raw[: max(0, len(raw) - tear)])
            journal = Journal.load(journals[0])
        open_uploads = {u.upload_id: u for u in emu.storage.open_uploads()}
        resumed = (
            journal is not None
            and journal.header is not None
            and not journal.completed
            and journal.header.upload_id in open_uploads
        )
        kept = {}
        if resumed:
            assert journal is not None and journal.header is not None
            up = open_uploads[journal.header.upload_id]
            for k, etag in journal.done.items():  # the journal holds only what the server has
                assert up.received[k].etag == etag
                kept[k] = up.received[k]
        event(f"resumed: {resumed}, journaled parts kept: {len(kept) if resumed else '-'}")
        puts, started = counters.get("storage:parts_put"), counters.get("storage:uploads_started")

        # --- the resumed upload
        res = await c.storage.upload(src, REMOTE)
        # at least: a PUT of the cancelled attempt whose body was all sent may still be
        # landing on the server (not journaled: the client never saw its answer)
        assert counters.get("storage:parts_put") - puts >= res.parts_sent
        if resumed:
            assert journal is not None and journal.header is not None
            assert res.upload_id == journal.header.upload_id
            assert counters.get("storage:uploads_started") == started
            assert res.parts_sent == n - len(kept)
            assert all(up.received[k] is part for k, part in kept.items())  # none sent again
        else:
            assert res.parts_sent == n
        await c.storage.download(REMOTE, tmp / "out.bin")
        assert (tmp / "out.bin").read_bytes() == data
        assert emu.storage.open_uploads() == []
        assert not list((tmp / "journals").glob("*.jsonl"))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 6),
    tail=st.sampled_from([1, PART // 2, PART]),
    crash=st.sampled_from(["cancel", "part", "complete"]),
    at=st.floats(0.0, 1.0),
    parallel=st.integers(1, 3),
    attempts=st.integers(1, 2),
    tear=st.sampled_from([0, 0, 1, 7, 30, 200]),
)
def test_a_crash_at_any_point_then_resume_is_byte_exact_and_resends_no_journaled_part(
    n: int, tail: int, crash: str, at: float, parallel: int, attempts: int, tear: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(crash_and_resume(Path(tmp), n, tail, crash, at, parallel, attempts, tear))
