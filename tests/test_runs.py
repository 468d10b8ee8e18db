"""Run journals in one process: files, leases, reruns, cancels, map_outcomes, if_exists."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from aiolightning import (
    AsyncLightning,
    ConflictError,
    JobRequest,
    Journal,
    JournalBusyError,
    JournalCorruptError,
    JournalError,
    map_outcomes,
)
from aiolightning.emulator import Emulator

pytestmark = pytest.mark.anyio

JOB_CREATE = "requests:POST /v1/projects/{projectId}/jobs"


def _reqs(n: int) -> list[JobRequest]:
    return [JobRequest(f"job-{i}", "echo", image="python:3.11") for i in range(n)]


async def test_rerun_sends_nothing_done_and_returns_the_recorded_jobs(
    emulator: Emulator, tmp_path: Path
) -> None:
    journal = tmp_path / "fleet.db"
    async with emulator.client() as c:
        first = await c.jobs.submit_many(_reqs(20), journal=journal)
        again = await c.jobs.submit_many(_reqs(20), journal=str(journal))
    assert [o.value for o in again] == [o.value for o in first]
    assert [o.result().name for o in again] == [f"job-{i}" for i in range(20)]
    assert emulator.counters.get(JOB_CREATE) == 20
    (run,) = Journal(journal).runs()
    assert (run.run_id, run.kind, run.status, run.done, run.holder) == (
        "jobs.submit_many", "jobs.submit_many", "finished", 20, "",
    )  # fmt: skip


async def test_job_env_values_are_not_written_to_the_journal(
    emulator: Emulator, tmp_path: Path
) -> None:
    journal = tmp_path / "fleet.db"
    req = JobRequest("j", "echo", image="python:3.11", env={"TOKEN": "s3cr3t-value"})
    async with emulator.client() as c:
        (out,) = await c.jobs.submit_many([req], journal=journal)
    assert out.ok
    assert b"s3cr3t-value" not in journal.read_bytes()
    assert "s3cr3t-value" not in str(Journal(journal).items())


async def test_a_cancelled_run_leaves_a_journal_a_rerun_finishes(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.config.faults.latency = 0.01
    journal = tmp_path / "fleet.db"
    async with emulator.client() as c:
        with anyio.CancelScope() as scope:

            def progress(p: object) -> None:
                if getattr(p, "done", 0) >= 15:
                    scope.cancel()

            await c.jobs.submit_many(_reqs(80), journal=journal, on_progress=progress)
        assert scope.cancel_called
        (run,) = Journal(journal).runs()
        assert run.status == "incomplete" and 15 <= run.done < 80
        outs = await c.jobs.submit_many(_reqs(80), journal=journal)
        assert all(o.ok for o in outs)
        names = [j.name async for j in c.jobs.list(page_size=500)]
    assert sorted(names) == sorted(f"job-{i}" for i in range(80))


async def test_a_corrupt_or_foreign_file_is_refused_and_left_alone(
    emulator: Emulator, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE photos (id INTEGER)")
    async with emulator.client() as c:
        for path, words in ((garbage, "not a readable run journal"), (foreign, "another program")):
            before = path.read_bytes()
            with pytest.raises(JournalCorruptError, match=words):
                await c.jobs.submit_many(_reqs(3), journal=path)
            assert path.read_bytes() == before
    assert emulator.counters.get(JOB_CREATE) == 0


async def test_a_run_has_one_holder_at_a_time(emulator: Emulator, tmp_path: Path) -> None:
    journal = tmp_path / "fleet.db"
    emulator.config.faults.latency = 0.05
    async with emulator.client() as c, anyio.create_task_group() as tg:
        started = anyio.Event()

        def first_progress(_: object) -> None:
            started.set()

        tg.start_soon(
            lambda: c.jobs.submit_many(
                _reqs(10), journal=journal, on_progress=first_progress, concurrency=1
            )
        )
        await started.wait()
        with pytest.raises(JournalBusyError, match=r"held by process \d+"):
            await c.jobs.submit_many(_reqs(10), journal=journal)
        # another run of the same file is free
        outs = await c.jobs.submit_many(
            [JobRequest("other", "echo", image="x")], journal=Journal(journal, run="second")
        )
        assert outs[0].ok
    assert {r.run_id for r in Journal(journal).runs()} == {"jobs.submit_many", "second"}


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(done.stdout)


def _set_holder(path: Path, run: str, pid: int, host: str, heartbeat: float) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE runs SET owner = 'x', owner_pid = ?, owner_host = ?, heartbeat = ?, "
            "status = 'running' WHERE run_id = ?",
            (pid, host, heartbeat, run),
        )


async def test_a_dead_holder_is_taken_over_a_live_one_is_not(
    emulator: Emulator, tmp_path: Path
) -> None:
    journal = tmp_path / "fleet.db"
    run = "jobs.submit_many"
    async with emulator.client() as c:
        await c.jobs.submit_many(_reqs(2), journal=journal)
        dead = _dead_pid()
        here = socket.gethostname()
        # this host, pid gone (a kill -9), heartbeat fresh: dead at once
        _set_holder(journal, run, dead, here, time.time())
        assert Journal(journal).runs()[0].status == "incomplete"
        assert all(o.ok for o in await c.jobs.submit_many(_reqs(2), journal=journal))
        # another host, fresh heartbeat: alive
        _set_holder(journal, run, 1, "elsewhere.example", time.time())
        with pytest.raises(JournalBusyError, match=r"elsewhere\.example"):
            await c.jobs.submit_many(_reqs(2), journal=journal)
        with pytest.raises(JournalBusyError):
            Journal(journal).prune(run)
        # another host, heartbeat older than the lease: dead
        _set_holder(journal, run, 1, "elsewhere.example", time.time() - 60)
        assert all(o.ok for o in await c.jobs.submit_many(_reqs(2), journal=journal))
    assert emulator.counters.get(JOB_CREATE) == 2


async def test_a_run_id_holds_one_kind_of_call(emulator: Emulator, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "fleet.db", run="nightly")
    async with emulator.client() as c:
        await c.jobs.submit_many(_reqs(1), journal=journal)
        with pytest.raises(
            JournalError, match=r"holds jobs\.submit_many, not studios\.create_many"
        ):
            await c.studios.create_many(["s1"], journal=journal)


async def test_map_outcomes_journal_runs_each_item_once(tmp_path: Path) -> None:
    calls: list[int] = []

    async def square(x: int) -> int:
        calls.append(x)
        if x == 3 and calls.count(3) == 1:
            raise ValueError("first time")
        return x * x

    journal = tmp_path / "map.db"
    outs = await map_outcomes(square, range(6), journal=journal)
    assert [o.ok for o in outs] == [True, True, True, False, True, True]
    outs = await map_outcomes(square, range(6), journal=journal)
    assert [o.value for o in outs] == [0, 1, 4, 9, 16, 25]
    assert sorted(calls) == [0, 1, 2, 3, 3, 4, 5]  # only the failed one ran again
    assert Journal(journal).runs()[0].status == "finished"


def test_journal_arguments_are_checked() -> None:
    with pytest.raises(JournalError):
        Journal("")
    with pytest.raises(JournalError):
        Journal("x.db", run=" ")
    with pytest.raises(JournalError):
        Journal("x.db", lease_ttl=0)


async def test_prune_removes_runs_and_their_items(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    async with emulator.client() as c:
        await c.jobs.submit_many(_reqs(2), journal=Journal(path, run="a"))
        await c.jobs.submit_many(_reqs(2), journal=Journal(path, run="b"))
    j = Journal(path)
    assert [i.key for i in j.items("a")] == ["job-0", "job-1"]
    assert j.prune("a") == ["a"]
    assert [r.run_id for r in j.runs()] == ["b"]
    assert j.prune() == ["b"] and j.runs() == []
    with pytest.raises(JournalError, match="no run 'zzz'"):
        j.prune("zzz")


async def test_if_exists_without_a_journal(emulator: Emulator) -> None:
    async with emulator.client() as c:
        first = await c.jobs.submit("j", "echo", image="x")
        skipped = await c.jobs.submit_many([JobRequest("j", "echo", image="x")], if_exists="skip")
        assert skipped[0].result().id == first.id
        with pytest.raises(ConflictError, match="already exists"):
            await c.jobs.submit("j", "echo", image="x", if_exists="error")
        renamed = await c.jobs.submit("j", "echo", image="x")  # "new", the default
        assert renamed.id != first.id
        with pytest.raises(ValueError, match="if_exists must be"):
            await c.jobs.submit("j", "echo", image="x", if_exists="maybe")  # type: ignore[arg-type]
    assert emulator.counters.get(JOB_CREATE) == 2


def test_the_blocking_client_takes_a_journal_too(tmp_path: Path) -> None:
    from aiolightning.emulator import EmulatorConfig, EmulatorThread

    with EmulatorThread(config=EmulatorConfig(admin=True)) as emu, emu.sync_client() as c:
        first = c.jobs.submit_many(_reqs(5), journal=tmp_path / "j.db")
        again = c.jobs.submit_many(_reqs(5), journal=tmp_path / "j.db")
        assert [o.value for o in again] == [o.value for o in first]
        assert emu.counters.get(JOB_CREATE) == 5


async def test_a_holder_whose_run_was_taken_over_stops_writing(
    emulator: Emulator, tmp_path: Path
) -> None:
    journal = tmp_path / "fleet.db"
    emulator.config.faults.latency = 0.1  # 40 jobs one at a time: longer than a heartbeat

    def steal(p: object) -> None:
        if getattr(p, "done", 0) == 1:  # another process decided this one was dead
            with sqlite3.connect(journal) as db:
                db.execute("UPDATE runs SET owner = 'someone-else'")

    async with emulator.client() as c:
        outs = await c.jobs.submit_many(
            _reqs(40), journal=journal, concurrency=1, on_progress=steal
        )
    errors = [o.error for o in outs if not o.ok]
    assert errors and all(isinstance(e, JournalBusyError) for e in errors)
    assert "taken over by another process" in str(errors[0])
    assert emulator.counters.get(JOB_CREATE) == 40 - len(errors)  # none sent unrecorded


async def test_storage_reruns_skip_the_files_done(
    emulator: Emulator, storage_client: AsyncLightning, tmp_path: Path
) -> None:
    journal = tmp_path / "files.db"
    for i in range(4):
        (tmp_path / f"f{i}").write_bytes(bytes([i]) * (100 + i))
    ups = [(tmp_path / f"f{i}", f"d/f{i}") for i in range(4)]
    downs = [(f"d/f{i}", tmp_path / f"back{i}") for i in range(4)]
    first = await storage_client.storage.upload_many(ups, journal=journal)
    got = await storage_client.storage.download_many(downs, journal=journal)
    assert all(o.ok for o in first) and all(o.ok for o in got)
    requests = emulator.counters.get("requests")
    again = await storage_client.storage.upload_many(ups, journal=journal)
    got_again = await storage_client.storage.download_many(downs, journal=journal)
    assert emulator.counters.get("requests") == requests  # nothing sent
    assert [o.value for o in again] == [o.value for o in first]
    assert [o.value for o in got_again] == [o.value for o in got]
    assert {r.run_id for r in Journal(journal).runs()} == {
        "storage.upload_many", "storage.download_many",
    }  # fmt: skip
