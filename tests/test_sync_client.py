"""The blocking client: every resource through one loop thread, threads, notebooks, fork, Ctrl-C."""

from __future__ import annotations

import asyncio
import contextvars
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _storage import small_config
from conftest import fast_timings

from aiolightning import BulkInterrupted, JobRequest, Lightning, Progress, StudioStatus
from aiolightning.emulator import Emulator, EmulatorConfig, EmulatorThread

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(seed=0, config=EmulatorConfig(timings=fast_timings(), page_size=3)) as e:
        yield e


@pytest.fixture
def client(emu: EmulatorThread, tmp_path: Path) -> Iterator[Lightning]:
    with emu.sync_client() as c:
        c.storage.configure(small_config(tmp_path))
        yield c


@pytest.mark.skipif(
    not Path(sys.executable).with_name("ruff").exists() and shutil.which("ruff") is None,
    reason="the generator formats its output with ruff",
)
def test_regenerating_the_sync_client_changes_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "syncgen.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_studios_lifecycle_and_listing(client: Lightning) -> None:
    studio = client.studios.create("sync-dev", exist_ok=True)
    assert client.studios.get("sync-dev").id == studio.id
    state = client.studios.start(studio, "cpu-4")
    assert state.status is StudioStatus.RUNNING
    result = client.studios.run(studio, "echo hello")
    assert result.ok and "hello" in result.output
    assert client.studios.stop(studio).status is StudioStatus.STOPPED
    names = [f"sync-many-{i}" for i in range(7)]
    seen: list[Progress] = []
    created = client.studios.create_many(names, exist_ok=True, on_progress=seen.append)
    assert [o.result().name for o in created] == names
    assert seen[-1] == Progress(7, 0, 7)
    listed = {s.name for s in client.studios.list()}  # page size 3: several pages
    assert {"sync-dev", *names} <= listed
    cloudspaces = client.api.cloud_space.list_cloud_spaces_iter(emu_project(client))
    assert {cs.name for cs in cloudspaces} == listed
    assert len(cloudspaces.collect(limit=4)) == 4
    assert all(o.ok for o in client.studios.delete_many(names))


def emu_project(client: Lightning) -> str:
    return client.teamspaces.resolve().id


def test_jobs_submit_watch_and_logs(client: Lightning) -> None:
    outs = client.jobs.submit_many(
        [JobRequest(f"sync-job-{i}", "echo hi", image="py:3") for i in range(3)]
    )
    jobs = [o.result() for o in outs]
    final = {}
    for change in client.jobs.watch(jobs, timeout=30):
        if change.status.is_terminal:
            final[change.job.name] = change.status
    assert set(final) == {j.name for j in jobs}
    assert client.jobs.wait(jobs[0]).status.is_terminal
    assert list(client.jobs.logs(jobs[0]))
    assert {j.name for j in client.jobs.list()} >= set(final)


def test_storage_upload_download_with_progress(client: Lightning, tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(300_000))
    progressed: list[object] = []
    up = client.storage.upload(src, "sync/a.bin", progress=progressed.append)
    assert up.size == 300_000 and progressed
    assert client.storage.exists("sync/a.bin")
    assert [f.path for f in client.storage.list("sync")] == ["a.bin"]
    down = tmp_path / "b.bin"
    progressed.clear()
    client.storage.download("sync/a.bin", down, progress=progressed.append)
    assert down.read_bytes() == src.read_bytes() and progressed
    assert client.teamspaces.list() and client.machines.list()


def test_eight_threads_share_one_client(client: Lightning) -> None:
    def work(i: int) -> list[str]:
        return [client.api.auth.whoami().username for _ in range(10)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    assert results == [["emu-user"] * 10] * 8


def test_from_a_thread_whose_loop_runs_like_a_notebook(emu: EmulatorThread) -> None:
    async def cell() -> str:  # a notebook cell: the kernel's loop runs in this thread
        with emu.sync_client() as c:
            return c.api.auth.whoami().username

    assert asyncio.run(cell()) == "emu-user"


def test_emulator_on_the_callers_loop_is_a_clear_error() -> None:
    async def cell() -> None:
        async with Emulator(seed=0) as served_here:
            with served_here.sync_client() as c:
                with pytest.raises(RuntimeError, match="EmulatorThread"):
                    c.api.auth.whoami()

    asyncio.run(cell())


def test_a_blocking_call_on_the_clients_own_loop_is_a_clear_error(client: Lightning) -> None:
    errors: list[BaseException] = []

    def callback(_p: Progress) -> None:
        try:
            client.api.auth.whoami()
        except RuntimeError as e:
            errors.append(e)

    client.studios.create_many(["sync-cb"], exist_ok=True, on_progress=callback)
    assert len(errors) == 1 and "own event loop" in str(errors[0])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
# forking the threaded test process is the point here (3.12+ warns of it)
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_after_fork_a_clear_error(client: Lightning) -> None:
    client.api.auth.whoami()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            client.api.auth.whoami()
            message = "no error"
        except RuntimeError as e:
            message = str(e)
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert "after fork()" in os.read(read, 4096).decode()
    os.close(read)
    client.api.auth.whoami()  # the parent's client is untouched


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="SIGINT")
def test_ctrl_c_during_start_many_cancels_and_keeps_outcomes(client: Lightning) -> None:
    names = [f"sync-ctrl-c-{i}" for i in range(12)]
    client.studios.create_many(names, exist_ok=True)
    main = threading.main_thread().ident
    assert main is not None

    def on_progress(p: Progress) -> None:
        if p.done == 3:  # Ctrl-C, as the terminal would send it
            signal.pthread_kill(main, signal.SIGINT)

    with pytest.raises(BulkInterrupted) as info:
        client.studios.start_many(names, "cpu-4", concurrency=3, on_progress=on_progress)
    kept = info.value.outcomes
    assert len(kept) >= 3 and all(o.ok for o in kept)
    assert isinstance(info.value, KeyboardInterrupt)

    async def leftovers() -> tuple[int, int]:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        stats = client.aio.limiter.stats()
        return len(tasks), sum(s.in_flight for s in stats.values())

    assert client.run(leftovers()) == (0, 0)  # nothing runs on, no request in flight
    client.studios.stop_many(names)


def test_close_and_use_after_close(emu: EmulatorThread) -> None:
    c = emu.sync_client()
    assert c.api.auth.whoami().username == "emu-user"
    c.close()
    c.close()
    assert c.closed
    with pytest.raises(RuntimeError, match="closed"):
        c.api.auth.whoami()


def test_the_callers_context_variables_follow_the_call(client: Lightning) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("span", default="none")

    async def read() -> str:
        return var.get()

    var.set("parent-span")
    assert client.run(read()) == "parent-span"


def test_the_clis_progress_bars_work_from_sync_code(client: Lightning, tmp_path: Path) -> None:
    from aiolightning.cli._progress import Progress as Bar

    names = [f"sync-bar-{i}" for i in range(4)]
    screen = io.StringIO()
    with Bar("create", total=len(names), enabled=True, stream=screen) as bar:
        client.studios.create_many(
            names, exist_ok=True, on_progress=lambda p: bar.update(done=p.done, failed=p.failed)
        )
    assert "create" in screen.getvalue() and "4/4" in screen.getvalue()
    src = tmp_path / "c.bin"
    src.write_bytes(b"x" * 100_000)
    screen = io.StringIO()
    with Bar("upload", total=100_000, unit="bytes", enabled=True, stream=screen) as bar:
        client.storage.upload(src, "sync/c.bin", progress=lambda p: bar.update(done=p.bytes_done))
    assert bar.done == 100_000 and "upload" in screen.getvalue()
