"""Every example runs as documented: in a subprocess, against its own emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTNING_")}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / ".cache"))
    return subprocess.run(
        [sys.executable, *args],
        cwd=EXAMPLES.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_example_is_tested() -> None:
    names = {p.name for p in EXAMPLES.glob("*.py")}
    assert names == {
        "fleet_start_stop.py",
        "job_sweep.py",
        "dataset_upload.py",
        "test_with_emulator.py",
    }


@pytest.mark.parametrize(
    ("script", "args", "expect"),
    [
        ("fleet_start_stop.py", ["--count", "8"], "8/8 studios ran"),
        ("job_sweep.py", [], "12 completed, 0 not completed"),
        ("dataset_upload.py", ["--shards", "4", "--shard-mib", "2"], "sha256 matches: True"),
    ],
)
def test_example_script(script: str, args: list[str], expect: str, tmp_path: Path) -> None:
    proc = run([str(EXAMPLES / script), *args], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert expect in proc.stdout
    assert "Traceback" not in proc.stderr


def test_pytest_example(tmp_path: Path) -> None:
    proc = run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES / "test_with_emulator.py")],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout


@pytest.mark.parametrize("script", ["fleet_start_stop.py", "job_sweep.py", "dataset_upload.py"])
def test_example_without_credentials_prints_one_line(script: str, tmp_path: Path) -> None:
    # no LIGHTNING_* variables and an empty HOME: nothing to find (and nothing is sent)
    proc = run([str(EXAMPLES / script), "--url", "http://127.0.0.1:9"], tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"{script}: error: no credentials: set LIGHTNING_USER_ID"), line
