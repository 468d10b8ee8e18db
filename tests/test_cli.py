"""The ``aiolightning`` command, end to end: each test runs it in a subprocess against an
emulator on a background thread, and checks what a user sees (stdout, stderr, exit code)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiolightning.emulator import EmulatorConfig, EmulatorThread, Timings

TIMEOUT = 60


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    timings = Timings(
        studio_start=0.1,
        studio_stop=0.05,
        job_pending=0.05,
        job_creating=0.05,
        job_running=0.1,
        job_finishing=0.05,
        job_stop=0.05,
        command=0.02,
    )
    with EmulatorThread(config=EmulatorConfig(timings=timings)) as e:
        yield e


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """No LIGHTNING_* from the developer's shell, and an empty HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTNING_")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    env.update(extra)
    return env


def emu_env(emu: EmulatorThread, home: Path) -> dict[str, str]:
    return clean_env(
        home,
        LIGHTNING_CLOUD_URL=emu.url,
        LIGHTNING_USER_ID=emu.user_id,
        LIGHTNING_API_KEY=emu.api_key,
        LIGHTNING_TEAMSPACE=f"{emu.org_name}/{emu.teamspace_name}",
    )


def cli(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiolightning", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def ok_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_one_error_line(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The failure is exactly one clear line on stderr, with the documented exit code."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("aiolightning: error: "), line
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w.lower() in line.lower(), line
    return line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- help and usage ------------------------------------------------------------------------


def test_help_documents_exit_codes_and_credentials(home: Path) -> None:
    proc = cli("--help", env=clean_env(home))
    assert proc.returncode == 0
    for text in ("exit codes:", "3  credentials", "4  connection", "LIGHTNING_API_KEY"):
        assert text in proc.stdout
    for sub in ("demo", "emulator", "studios", "jobs", "deployments", "storage"):
        assert sub in proc.stdout


def test_usage_error_is_one_line(home: Path) -> None:
    proc = cli("studios", "launch", env=clean_env(home))
    assert_one_error_line(proc, 2, "invalid choice")


# --- studios -------------------------------------------------------------------------------


def test_studios_start_many_list_stop(emu: EmulatorThread, home: Path) -> None:
    env = emu_env(emu, home)
    args = ["--json", "studios", "start-many", "--create", "--count", "3", "--prefix", "cli"]
    started = ok_json(cli(*args, env=env))
    assert [(r["name"], r["ok"], r["status"]) for r in started] == [
        (f"cli-{i}", True, "running") for i in range(3)
    ]
    listed = ok_json(cli("studios", "list", "--json", env=env))
    status = {r["name"]: r["status"] for r in listed}
    assert all(status[f"cli-{i}"] == "running" for i in range(3))

    proc = cli("studios", "stop", "cli-0", "cli-1", "cli-2", "--delete", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "3 deleted, 0 failed" in proc.stdout
    listed = ok_json(cli("--json", "studios", "list", env=env))
    assert not any(r["name"].startswith("cli-") for r in listed)


def test_studio_start_single_then_human_output(emu: EmulatorThread, home: Path) -> None:
    env = emu_env(emu, home)
    proc = cli("studios", "start", "solo", "--create", "--machine", "cpu-8", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "studio solo is running on cpu-8"
    assert proc.stderr == ""  # no progress bars when stderr is not a terminal
    assert cli("studios", "stop", "solo", "--delete", env=env).returncode == 0


def test_unknown_machine_is_bad_input(emu: EmulatorThread, home: Path) -> None:
    proc = cli("studios", "start", "x", "--machine", "gpu-9000", env=emu_env(emu, home))
    assert_one_error_line(proc, 2, "unknown machine", "cpu-4")


def test_start_of_a_missing_studio_needs_create_as_in_the_library(
    emu: EmulatorThread, home: Path
) -> None:
    env = emu_env(emu, home)
    proc = cli("studios", "start", "ghost", env=env)
    assert_one_error_line(proc, 1, "'ghost' does not exist", "add --create")
    proc = cli("studios", "start-many", "ghost-a", "ghost-b", env=env)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].endswith("add --create to create the missing ones")
    assert "0 running, 2 failed" in proc.stdout
    assert not [s for s in emu.state.studios.by_id.values() if s.name.startswith("ghost")]
    assert cli("studios", "start", "ghost", "--create", env=env).returncode == 0


def test_missing_studio_fails_with_exit_1(emu: EmulatorThread, home: Path) -> None:
    proc = cli("studios", "stop", "no-such-studio", env=emu_env(emu, home))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].startswith("aiolightning: error: not found")


# --- jobs ----------------------------------------------------------------------------------


def test_jobs_sweep_submit_watch_list(emu: EmulatorThread, home: Path) -> None:
    env = emu_env(emu, home)
    rows = ok_json(
        cli(
            "--json", "jobs", "submit", "sweep", "python train.py --lr 0.{i}",
            "--image", "python:3.12-slim", "--count", "4", "--watch", env=env,
        )
    )  # fmt: skip
    assert sorted(r["name"] for r in rows) == [f"sweep-{i}" for i in range(4)]
    assert {r["status"] for r in rows} == {"completed"}
    listed = ok_json(cli("jobs", "list", "--json", env=env))
    assert {f"sweep-{i}" for i in range(4)} <= {r["name"] for r in listed}
    stopped = ok_json(cli("--json", "jobs", "stop", "sweep-0", "--delete", env=env))
    assert stopped[0]["deleted"] is True


def test_failed_job_exits_1(emu: EmulatorThread, home: Path) -> None:
    emu.config.timings.job_outcome = "fail"
    try:
        proc = cli(
            "jobs", "submit", "doomed", "exit 1", "--image", "python:3.12-slim", "--watch",
            env=emu_env(emu, home),
        )  # fmt: skip
    finally:
        emu.config.timings.job_outcome = "complete"
    assert proc.returncode == 1
    assert "failed" in proc.stdout
    assert_one_error_line(proc, 1, "1 of 1 jobs failed")


def test_job_without_image_or_studio_is_usage_error(emu: EmulatorThread, home: Path) -> None:
    proc = cli("jobs", "submit", "j", "echo hi", env=emu_env(emu, home))
    assert_one_error_line(proc, 2, "--image")


def test_jobs_logs_follow_multi_machine(emu: EmulatorThread, home: Path) -> None:
    env = emu_env(emu, home)
    rows = ok_json(
        cli(
            "--json", "jobs", "submit", "mm", "python train.py", "--image", "pytorch",
            "--machines", "2", env=env,
        )
    )  # fmt: skip
    assert rows[0]["name"] == "mm"
    proc = cli("jobs", "logs", "mm", "--follow", env=env)  # until it ends
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("Job mm-") and "finished successfully" in lines[-1]
    assert sum("finished successfully" in ln for ln in lines) == 2  # both machines
    one = cli("--json", "jobs", "logs", "mm", "--rank", "1", env=env)
    entries = [json.loads(ln) for ln in one.stdout.splitlines()]
    assert len({e["resource_id"] for e in entries}) == 1
    assert all("mm-1" in e["message"] or e["message"] == "+ lightning" for e in entries[1:])


def test_deployments_create_wait_list_stop_delete(emu: EmulatorThread, home: Path) -> None:
    env = emu_env(emu, home)
    made = ok_json(
        cli(
            "--json", "deployments", "create", "api", "--image", "ghcr.io/acme/api:1",
            "--command", "python serve.py", "--replicas", "2", "--port", "8000", "--wait",
            env=env,
        )
    )  # fmt: skip
    assert made["status"] == "ready" and made["ready"] == "2/2" and made["url"]
    listed = ok_json(cli("--json", "deployments", "list", env=env))
    assert [r["name"] for r in listed] == ["api"]
    assert ok_json(cli("--json", "deployments", "wait", "api", env=env))[0]["status"] == "ready"
    stopped = ok_json(cli("--json", "deployments", "stop", "api", env=env))
    assert stopped[0]["status"] == "stopped" and stopped[0]["replicas"] == 0
    assert ok_json(cli("--json", "deployments", "delete", "api", env=env)) == [
        {"name": "api", "deleted": True}
    ]
    assert_one_error_line(cli("deployments", "delete", "api", env=env), 1, "not found")
    bad = cli("deployments", "create", "x", "--image", "i", "--replicas", "-1", env=env)
    assert_one_error_line(bad, 2, "replicas")


# --- storage -------------------------------------------------------------------------------


def test_storage_cp_both_ways_ls_rm(emu: EmulatorThread, home: Path, tmp_path: Path) -> None:
    env = emu_env(emu, home)
    src = tmp_path / "weights.bin"
    data = os.urandom(3 * 1024 * 1024 + 7)
    src.write_bytes(data)
    proc = cli("storage", "cp", str(src), "lit:///models/", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "lit:///models/weights.bin" in proc.stdout

    listed = ok_json(cli("--json", "storage", "ls", "lit:///models", env=env))
    assert listed == [
        {
            "path": "weights.bin",
            "type": "file",
            "size": len(data),
            "modified": listed[0]["modified"],
        }
    ]
    owner_url = f"lit://{emu.org_name}/{emu.teamspace_name}/models/weights.bin"
    back = tmp_path / "back.bin"
    assert cli("storage", "cp", owner_url, str(back), env=env).returncode == 0
    assert back.read_bytes() == data

    assert cli("storage", "rm", "lit:///models/weights.bin", env=env).returncode == 0
    assert ok_json(cli("--json", "storage", "ls", "lit:///models", env=env)) == []


def test_storage_recursive_copy(emu: EmulatorThread, home: Path, tmp_path: Path) -> None:
    env = emu_env(emu, home)
    tree = tmp_path / "dataset"
    (tree / "train").mkdir(parents=True)
    (tree / "train" / "a.txt").write_text("a")
    (tree / "val.txt").write_text("vv")
    proc = cli("storage", "cp", str(tree), "lit:///ds", env=env)
    assert_one_error_line(proc, 2, "use -r")
    assert cli("storage", "cp", "-r", str(tree), "lit:///ds", env=env).returncode == 0
    files = ok_json(cli("--json", "storage", "ls", "-r", "lit:///ds", env=env))
    assert sorted(f["path"] for f in files) == ["train/a.txt", "val.txt"]
    out = tmp_path / "out"
    assert cli("storage", "cp", "-r", "lit:///ds", str(out), env=env).returncode == 0
    assert (out / "train" / "a.txt").read_text() == "a"
    assert (out / "val.txt").read_text() == "vv"
    assert_one_error_line(cli("storage", "rm", "lit:///ds", env=env), 2, "use -r")
    assert cli("storage", "rm", "-r", "lit:///ds", env=env).returncode == 0


@pytest.mark.parametrize("url", ["lit://only-owner", "lit:///a/../b", "s3://bucket/x"])
def test_malformed_lit_url(emu: EmulatorThread, home: Path, url: str) -> None:
    proc = cli("storage", "ls", url, env=emu_env(emu, home))
    assert_one_error_line(proc, 2, "lit://")


# --- credentials and connection failures -------------------------------------------------


def test_missing_credentials(home: Path) -> None:
    env = clean_env(home, LIGHTNING_CREDENTIAL_PATH=str(home / "missing.json"))
    proc = cli("--url", "http://127.0.0.1:9", "studios", "list", env=env)
    assert_one_error_line(proc, 3, "credentials", "LIGHTNING_API_KEY")


def test_rejected_credentials_never_printed(emu: EmulatorThread, home: Path) -> None:
    secret = "wrong-key-0123456789abcdef"
    env = emu_env(emu, home)
    env["LIGHTNING_API_KEY"] = secret
    proc = cli("studios", "list", env=env)
    assert_one_error_line(proc, 3, "401")
    assert secret not in proc.stdout + proc.stderr


def test_credentials_file_is_used(emu: EmulatorThread, home: Path) -> None:
    creds = home / "creds.json"
    creds.write_text(json.dumps({"user_id": emu.user_id, "api_key": emu.api_key, "auth_token": ""}))
    env = clean_env(home, LIGHTNING_TEAMSPACE=emu.teamspace_name)
    proc = cli("--url", emu.url, "--credentials", str(creds), "--json", "studios", "list", env=env)
    assert isinstance(ok_json(proc), list)
    assert emu.api_key not in proc.stdout + proc.stderr


def test_unreachable_url(home: Path) -> None:
    env = clean_env(home, LIGHTNING_USER_ID="u", LIGHTNING_API_KEY="k" * 16)
    url = f"http://127.0.0.1:{free_port()}"
    proc = cli("--url", url, "--retries", "1", "jobs", "list", env=env)
    assert_one_error_line(proc, 4, "cannot reach")


def test_debug_shows_traceback(home: Path) -> None:
    env = clean_env(home, LIGHTNING_CREDENTIAL_PATH=str(home / "missing.json"))
    proc = cli("--debug", "studios", "list", env=env)
    assert proc.returncode == 3
    assert "Traceback" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("aiolightning: error: ")


# --- demo and emulator -------------------------------------------------------------------


def test_demo_scaled_down(home: Path) -> None:
    proc = cli(
        "demo", "--studios", "3", "--jobs", "6", "--size-mib", "3", "--json", env=clean_env(home)
    )
    report = ok_json(proc)
    phases = [p["phase"] for p in report["phases"]]
    assert phases == [
        "start studios",
        "run a command in each",
        "submit jobs",
        "watch jobs finish",
        "upload",
        "download + sha256",
        "stop + delete all",
    ]
    assert report["totals"]["failures"] == 0
    assert report["problems"] == []
    by_phase = {p["phase"]: p for p in report["phases"]}
    assert by_phase["start studios"]["items"] == 3
    assert by_phase["submit jobs"]["items"] == 6
    assert by_phase["upload"]["mb_per_s"] > 0
    assert report["totals"]["requests"] > 0


def test_demo_human_summary(home: Path) -> None:
    proc = cli("demo", "--studios", "0", "--jobs", "0", "--size-mib", "1", env=clean_env(home))
    assert proc.returncode == 0, proc.stderr
    assert "PHASE" in proc.stdout and "THROTTLES" in proc.stdout
    assert "total " in proc.stdout


def test_emulator_command_prints_url_and_credentials(home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiolightning", "emulator", "--port", "0"],
        env=clean_env(home),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    text = "".join(lines)
    assert "http://127.0.0.1:" in text
    assert "LIGHTNING_USER_ID=" in text and "LIGHTNING_API_KEY=" in text


def test_progress_bars_only_on_a_terminal(emu: EmulatorThread, home: Path) -> None:
    import pty
    import threading

    master, slave = pty.openpty()
    drawn = bytearray()

    def drain() -> None:  # read the terminal while the command runs (never fill it up)
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the command closed its end
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "aiolightning", "studios", "start-many", "--create",
             "--count", "2", "--prefix", "tty"],
            env=emu_env(emu, home), stdout=subprocess.PIPE, stderr=slave, text=True,
            timeout=TIMEOUT,
        )  # fmt: skip
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    assert proc.returncode == 0
    assert b"starting studios" in drawn and b"2/2 done" in drawn
    assert "starting studios" not in proc.stdout  # results only on stdout
    quiet = cli("studios", "stop", "tty-0", "tty-1", "--delete", env=emu_env(emu, home))
    assert quiet.returncode == 0 and quiet.stderr == ""  # not a terminal: no bars
