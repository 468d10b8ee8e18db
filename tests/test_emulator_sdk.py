"""The official lightning-sdk, unchanged, against the emulator.

The SDK reads LIGHTNING_CLOUD_URL at import time, so each scenario (tests/sdk_scenarios/*.py)
runs in its own interpreter with the environment pointing at an EmulatorThread.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiolightning.emulator import EmulatorConfig, EmulatorThread

pytest.importorskip("lightning_sdk")

SCENARIOS = Path(__file__).parent / "sdk_scenarios"


@pytest.fixture
def sdk_emulator() -> Iterator[EmulatorThread]:
    from conftest import fast_timings

    with EmulatorThread(seed=0, config=EmulatorConfig(timings=fast_timings())) as emu:
        yield emu


def _run(emu: EmulatorThread, script: str, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTNING_")}
    env.update(emu.sdk_env())
    env.update(
        HOME=str(tmp_path),  # no ~/.lightning of the developer
        LIGHTNING_KEEPALIVE_FREQUENCY="0.2",  # the keep-alive thread is joined on stop
        EMU_ORG=emu.org_name,
        EMU_USERNAME=emu.username,
    )
    proc = subprocess.run(
        [sys.executable, str(SCENARIOS / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def test_sdk_teamspaces(sdk_emulator: EmulatorThread, tmp_path: Path) -> None:
    out = _run(sdk_emulator, "teamspaces.py", tmp_path)
    assert f"org {sdk_emulator.org_name} " in out
    assert "org teamspaces ['emu-teamspace']" in out
    assert f"teamspace emu-teamspace {sdk_emulator.teamspace_id} emu-org" in out


def test_sdk_studio_lifecycle(sdk_emulator: EmulatorThread, tmp_path: Path) -> None:
    out = _run(sdk_emulator, "studio_lifecycle.py", tmp_path)
    assert "started Running" in out
    assert "output 'hi'" in out
    assert "stopped Stopped" in out
    snap = sdk_emulator.counters.snapshot()
    assert snap["creates:studio:sdk-studio"] == 1
    starts = [v for k, v in snap.items() if k.startswith("starts:")]
    assert starts == [1]  # started once
    assert not sdk_emulator.state.studios.by_id  # deleted


def test_sdk_job_lifecycle(sdk_emulator: EmulatorThread, tmp_path: Path) -> None:
    out = _run(sdk_emulator, "job_lifecycle.py", tmp_path)
    assert "finished Completed" in out
    assert "failing Failed" in out
    assert "stopped Stopped" in out
    assert "deleted" in out
    assert sdk_emulator.counters.get("creates:job:sdk-job") == 1


def test_sdk_studio_switch_and_env(sdk_emulator: EmulatorThread, tmp_path: Path) -> None:
    out = _run(sdk_emulator, "studio_switch_env.py", tmp_path)
    assert "machine CPU Running" in out
    assert "switched T4 Running" in out
    assert "exit ('x', 4)" in out
    assert "env {'A': '1'} 1" in out
    assert "listed ['sdk-switch']" in out
    assert "stopped Stopped" in out


def test_sdk_deployment_lifecycle(sdk_emulator: EmulatorThread, tmp_path: Path) -> None:
    out = _run(sdk_emulator, "deployment_lifecycle.py", tmp_path)
    assert "created sdk-dep 1 0 1 [8080]" in out
    assert "urls 1" in out
    assert "updated 2 1 3" in out
    assert "machine lit-t4-1" in out
    assert "stopped 0 0" in out
    assert "restarted 1 0 1" in out
    assert "duplicate rejected True" in out
    assert "bad machine rejected True" in out
    assert "deleted False" in out
    assert sdk_emulator.counters.get("creates:deployment:sdk-dep") >= 1
    assert not sdk_emulator.state.deployments.by_id


def test_sdk_multi_machine_job(sdk_emulator: EmulatorThread, tmp_path: Path) -> None:
    out = _run(sdk_emulator, "mmt_lifecycle.py", tmp_path)
    assert "finished Completed" in out
    assert "machines 3 ['Completed', 'Completed', 'Completed']" in out
    assert "found Job sdk-mmt Completed" in out
    assert "stopped Stopping" in out  # the SDK's MMT stop waits for Stopping or terminal
    assert "deleted" in out
    assert sdk_emulator.counters.get("creates:mmt:sdk-mmt") == 1
    assert not sdk_emulator.state.mmts.by_id and not sdk_emulator.state.jobs.by_id
