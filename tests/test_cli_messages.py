"""What a newcomer meets on the command line: for each mistake, one clear line on stderr and
the documented exit code (2: usage or bad input), and storage paths that follow one rule."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import assert_one_error_line, clean_env, cli, emu_env, ok_json

from aiolightning.emulator import EmulatorConfig, EmulatorThread, Timings


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(config=EmulatorConfig(timings=Timings(studio_start=0.05))) as e:
        yield e


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.mark.parametrize("url", ["lit://a/../b", "lit://emu-org/../b", "lit:///../etc"])
def test_dot_dot_in_a_lit_url_is_a_usage_error(emu: EmulatorThread, home: Path, url: str) -> None:
    assert_one_error_line(cli("storage", "ls", url, env=emu_env(emu, home)), 2, "'..'")


def test_unknown_job_state_is_a_usage_error(emu: EmulatorThread, home: Path) -> None:
    proc = cli("jobs", "list", "--state", "bogus", env=emu_env(emu, home))
    assert_one_error_line(proc, 2, "unknown job state 'bogus'", "running", "completed")


def test_bad_studio_name_is_a_usage_error(emu: EmulatorThread, home: Path) -> None:
    proc = cli("studios", "start", "bad name/with slash", "--create", env=emu_env(emu, home))
    assert_one_error_line(proc, 2, "'bad name/with slash' is not valid")


def test_missing_credentials_line_is_short_and_about_the_cli(home: Path) -> None:
    given = cli(
        "--url", "http://127.0.0.1:9", "--credentials", str(home / "nope.json"), "jobs", "list",
        env=clean_env(home),
    )  # fmt: skip
    line = assert_one_error_line(given, 3, "--credentials file", "nope.json", "does not exist")
    default = cli("--url", "http://127.0.0.1:9", "jobs", "list", env=clean_env(home))
    other = assert_one_error_line(default, 3, "LIGHTNING_API_KEY", "--credentials FILE")
    for text in (line, other):
        assert len(text.replace(str(home), "~")) < 160, text  # the path aside
        assert "api_key=" not in text and "LIGHTNING_CREDENTIAL_PATH" not in text


def test_download_of_a_folder_without_r_says_use_r(
    emu: EmulatorThread, home: Path, tmp_path: Path
) -> None:
    env = emu_env(emu, home)
    (tmp_path / "one.txt").write_text("1")
    assert (
        cli("storage", "cp", str(tmp_path / "one.txt"), "lit:///fold/one.txt", env=env).returncode
        == 0
    )
    proc = cli("storage", "cp", "lit:///fold", str(tmp_path / "got"), env=env)
    assert_one_error_line(proc, 2, "lit:///fold is a folder; use -r")
    proc = cli("storage", "cp", "lit:///no-such-file", str(tmp_path / "got"), env=env)
    assert_one_error_line(proc, 1, "does not exist")


def test_recursive_copy_follows_aws_s3_cp_recursive(
    emu: EmulatorThread, home: Path, tmp_path: Path
) -> None:
    """The folder's contents go into the destination, with or without a trailing '/', and
    whether or not the destination exists (documented in ``storage cp --help``)."""
    env = emu_env(emu, home)
    tree = tmp_path / "dir"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    for dst in ("lit:///r1/", "lit:///r2"):
        assert cli("storage", "cp", "-r", str(tree), dst, env=env).returncode == 0
        files = ok_json(cli("--json", "storage", "ls", "-r", dst, env=env))
        assert sorted(f["path"] for f in files) == ["a.txt", "sub/b.txt"]
    again = cli("storage", "cp", "-r", str(tree), "lit:///r1/", env=env)  # r1 exists now
    assert again.returncode == 0
    files = ok_json(cli("--json", "storage", "ls", "-r", "lit:///r1", env=env))
    assert sorted(f["path"] for f in files) == ["a.txt", "sub/b.txt"]
    out = tmp_path / "out"
    assert cli("storage", "cp", "-r", "lit:///r1/", str(out), env=env).returncode == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.txt")) == [
        "a.txt",
        "sub/b.txt",
    ]
    assert "aws s3 cp --recursive" in cli("storage", "cp", "--help", env=env).stdout


def test_upload_into_a_missing_studio_fails_clearly(
    emu: EmulatorThread, home: Path, tmp_path: Path
) -> None:
    env = emu_env(emu, home)
    f = tmp_path / "a.txt"
    f.write_text("a")
    proc = cli("storage", "cp", str(f), "lit:///studios/nosuch/a.txt", env=env)
    assert_one_error_line(proc, 1, "studio 'nosuch' does not exist")
    listed = ok_json(cli("--json", "storage", "ls", "lit:///", env=env))
    assert "studios/" not in [row["path"] for row in listed]  # nothing was uploaded
    assert cli("studios", "start", "real", "--create", env=env).returncode == 0
    proc = cli("storage", "cp", str(f), "lit:///studios/real/a.txt", env=env)
    assert proc.returncode == 0, proc.stderr


def test_download_into_a_missing_folder_fails_instead_of_creating_it(
    emu: EmulatorThread, home: Path, tmp_path: Path
) -> None:
    env = emu_env(emu, home)
    (tmp_path / "x.txt").write_text("x")
    assert cli("storage", "cp", str(tmp_path / "x.txt"), "lit:///x.txt", env=env).returncode == 0
    missing = tmp_path / "nonexistent-dir"
    for dst in (missing / "sub" / "x.txt", f"{missing}{os.sep}sub{os.sep}"):
        proc = cli("storage", "cp", "lit:///x.txt", str(dst), env=env)
        assert_one_error_line(proc, 2, "does not exist")
    proc = cli("storage", "cp", "-r", "lit:///", str(missing / "sub"), env=env)
    assert_one_error_line(proc, 2, "does not exist")
    assert not missing.exists()
    assert cli("storage", "cp", "lit:///x.txt", str(tmp_path / "x2.txt"), env=env).returncode == 0
