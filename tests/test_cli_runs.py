"""``--journal FILE`` on the bulk commands, and ``aiolightning runs list|show|prune``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import fast_timings
from test_cli import assert_one_error_line, cli, emu_env, ok_json

from aiolightning._crash import CRASH_ENV, CRASH_EXIT_CODE
from aiolightning.emulator import EmulatorConfig, EmulatorThread


@pytest.fixture
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(config=EmulatorConfig(timings=fast_timings(), admin=True)) as e:
        yield e


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def test_jobs_submit_journal_crash_rerun_list_show_prune(
    emu: EmulatorThread, home: Path, tmp_path: Path
) -> None:
    env = emu_env(emu, home)
    journal = str(tmp_path / "sweep.db")
    submit = ("--json", "jobs", "submit", "sweep", "echo {i}", "--image", "x", "--count", "12")
    crashed = cli(*submit, "--journal", journal, env={**env, CRASH_ENV: "after-act:5"})
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr
    (run,) = ok_json(cli("--json", "runs", "list", journal, env=env))
    assert run["status"] == "incomplete" and run["holder"] is None
    assert run["in_flight"] >= 1  # the item the process died on
    jobs = ok_json(cli(*submit, "--journal", journal, env=env))
    assert sorted(j["name"] for j in jobs) == sorted(f"sweep-{i}" for i in range(12))
    listed = ok_json(cli("--json", "jobs", "list", env=env))
    assert sorted(j["name"] for j in listed) == sorted(f"sweep-{i}" for i in range(12))
    (run,) = ok_json(cli("--json", "runs", "list", journal, env=env))
    assert (run["run"], run["status"], run["done"]) == ("jobs.submit_many", "finished", 12)
    items = ok_json(cli("--json", "runs", "show", journal, env=env))
    assert {i["state"] for i in items} == {"done"} and len(items) == 12
    human = cli("runs", "list", journal, env=env)
    assert "jobs.submit_many" in human.stdout and "finished" in human.stdout
    pruned = cli("runs", "prune", journal, "jobs.submit_many", env=env)
    assert "removed 1 run(s): jobs.submit_many" in pruned.stdout
    assert ok_json(cli("--json", "runs", "list", journal, env=env)) == []


def test_studios_start_many_journal_and_bad_files(
    emu: EmulatorThread, home: Path, tmp_path: Path
) -> None:
    env = emu_env(emu, home)
    journal = str(tmp_path / "fleet.db")
    args = ("--json", "studios", "start-many", "--count", "4", "--prefix", "j", "--create")
    args = (*args, "--journal")
    first = ok_json(cli(*args, journal, env=env))
    again = ok_json(cli(*args, journal, env=env))
    assert [r["status"] for r in again] == [r["status"] for r in first] == ["running"] * 4
    runs = ok_json(cli("--json", "runs", "list", journal, env=env))
    assert {r["run"]: r["status"] for r in runs} == {"studios.start_many": "finished"}
    stop = ("--json", "studios", "stop", *(f"j-{i}" for i in range(4)), "--delete", "--journal")
    assert [r["status"] for r in ok_json(cli(*stop, journal, env=env))] == ["deleted"] * 4
    assert [r["status"] for r in ok_json(cli(*stop, journal, env=env))] == ["deleted"] * 4
    runs = ok_json(cli("--json", "runs", "list", journal, env=env))
    assert [r["run"] for r in runs][1:] == ["studios.stop_many", "studios.delete_many"]
    assert ok_json(cli("--json", "runs", "prune", journal, "--finished", env=env))["removed"]
    bad = tmp_path / "bad.db"
    bad.write_text("hello")
    assert_one_error_line(cli("runs", "list", str(bad), env=env), 1, "not a readable run journal")
    assert_one_error_line(cli(*args, str(bad), env=env), 1, "not a readable run journal")
