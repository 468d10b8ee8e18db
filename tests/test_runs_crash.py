"""Bulk runs killed half-way (SIGKILL, or the crash switch at a named boundary) and rerun with
the same journal: every item exactly once, none lost (issue 19)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import fast_timings

from aiolightning import Journal
from aiolightning._crash import BOUNDARIES, CRASH_ENV, CRASH_EXIT_CODE
from aiolightning.emulator import EmulatorConfig, EmulatorThread
from aiolightning.emulator._config import Faults

pytestmark = pytest.mark.anyio

WORKER = str(Path(__file__).with_name("_journal_worker.py"))
JOB_CREATE = "requests:POST /v1/projects/{projectId}/jobs"


@pytest.fixture
def emu(request: pytest.FixtureRequest) -> Iterator[EmulatorThread]:
    """The emulator; parametrized with a fraction, it also drops that share of connections
    *after* it acted on the request (the client then reconciles, the journal must agree)."""
    faults = Faults(latency=0.004, drop_after_rate=getattr(request, "param", 0.0))
    config = EmulatorConfig(timings=fast_timings(), admin=True, faults=faults)
    with EmulatorThread(seed=0, config=config) as e:
        yield e


# each kill sweep runs on a plain emulator and on one dropping 2 % of answers after the act
with_drops = pytest.mark.parametrize(
    "emu", [0.0, 0.02], indirect=True, ids=["plain", "drop-after-2%"]
)


def _spawn(
    emu: EmulatorThread, journal: Path, what: str, n: int, *extra: str, crash: str | None = None
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash is not None:
        env[CRASH_ENV] = crash
    args = [emu.url, emu.user_id, emu.api_key, emu.teamspace_name, str(journal), what, str(n)]
    return subprocess.Popen(
        [sys.executable, WORKER, *args, *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def _kill_when(proc: subprocess.Popen[str], emu: EmulatorThread, key: str, at: int) -> int:
    """SIGKILL the worker once the emulator counted ``at`` requests of ``key``."""
    deadline = time.monotonic() + 60
    while emu.counters.get(key) < at and proc.poll() is None:
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.002)
    assert proc.poll() is None, f"the worker finished before {at} of {key!r}: {proc.stderr}"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return emu.counters.get(key)


async def _job_names(emu: EmulatorThread) -> list[str]:
    async with emu.client() as c:
        return [j.name async for j in c.jobs.list(page_size=500)]


def _kill_sweep(emu: EmulatorThread, journal: Path, what: str, n: int, key: str) -> list[int]:
    seen = []
    for fraction in (0.1, 0.5, 0.9):
        proc = _spawn(emu, journal, what, n, *([str(journal.parent)] if what == "upload" else []))
        seen.append(_kill_when(proc, emu, key, int(n * fraction)))
    return seen


@with_drops
async def test_submit_many_killed_at_10_50_90_percent(emu: EmulatorThread, tmp_path: Path) -> None:
    journal = tmp_path / "fleet.db"
    seen = _kill_sweep(emu, journal, "jobs", 300, JOB_CREATE)
    assert seen[-1] < 300, "the last kill came too late to test anything"
    result = _finish(_spawn(emu, journal, "jobs", 300))
    assert result == {"outcomes": 300, "ok": 300, "errors": []}
    names = await _job_names(emu)
    assert sorted(names) == sorted(f"job-{i}" for i in range(300))
    assert emu.counters.get(JOB_CREATE) == 300
    run = Journal(journal).runs()[0]
    assert (run.status, run.items, run.done) == ("finished", 300, 300)


@pytest.mark.parametrize("boundary", BOUNDARIES)
async def test_crash_at_every_boundary(emu: EmulatorThread, tmp_path: Path, boundary: str) -> None:
    journal = tmp_path / "fleet.db"
    # the 25th item to reach the boundary (the 3rd batched commit that carries intents)
    proc = _spawn(
        emu, journal, "jobs", 60, crash=f"{boundary}:{3 if boundary == 'in-commit' else 25}"
    )
    proc.communicate(timeout=120)
    assert proc.returncode == CRASH_EXIT_CODE
    before = emu.counters.get(JOB_CREATE)
    assert before < 60
    result = _finish(_spawn(emu, journal, "jobs", 60))
    assert result == {"outcomes": 60, "ok": 60, "errors": []}
    names = await _job_names(emu)
    assert sorted(names) == sorted(f"job-{i}" for i in range(60))  # each once, none lost
    assert emu.counters.get(JOB_CREATE) == 60


@with_drops
async def test_start_many_killed_each_studio_started_once(
    emu: EmulatorThread, tmp_path: Path
) -> None:
    faults = emu.config.faults
    drops, faults.drop_after_rate = faults.drop_after_rate, 0.0  # the setup runs without
    async with emu.client() as c:
        outs = await c.studios.create_many([f"studio-{i}" for i in range(200)])
        assert all(o.ok for o in outs), [o.error for o in outs if not o.ok][:3]
    faults.drop_after_rate = drops
    key = "requests:POST /v1/projects/{projectId}/cloudspaces/{id}/start"
    journal = tmp_path / "fleet.db"
    _kill_sweep(emu, journal, "studios", 200, key)
    result = _finish(_spawn(emu, journal, "studios", 200))
    assert result == {"outcomes": 200, "ok": 200, "errors": []}
    assert emu.counters.get(key) == 200  # each studio started exactly once


@with_drops
async def test_upload_many_killed_files_byte_exact(emu: EmulatorThread, tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"f{i}.bin").write_bytes(os.urandom(1000 + 37 * i))
    journal = tmp_path / "fleet.db"
    key = "storage:parts_put"
    _kill_sweep(emu, journal, "upload", 50, key)
    not_done = sum(1 for item in Journal(journal).items() if item.state != "done")
    not_done += 50 - len(Journal(journal).items())
    before, drops = emu.counters.get(key), emu.counters.get("faults:drop_after")
    result = _finish(_spawn(emu, journal, "upload", 50, str(tmp_path)))
    assert result == {"outcomes": 50, "ok": 50, "errors": []}
    resent = emu.counters.get("faults:drop_after") - drops  # a part whose answer was lost
    assert emu.counters.get(key) - before <= not_done + resent  # no done file is sent again
    back = tmp_path / "back"
    back.mkdir()
    async with emu.client() as c:
        outs = await c.storage.download_many(
            [(f"up/f{i}.bin", back / f"f{i}.bin") for i in range(50)]
        )
    assert all(o.ok for o in outs)
    for i in range(50):
        assert (back / f"f{i}.bin").read_bytes() == (tmp_path / f"f{i}.bin").read_bytes()
