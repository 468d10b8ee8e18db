"""What users' type checkers see: the sync client's real types, and every public name as itself.

Runs ``mypy --strict`` once on tests/typing/sync_user_script.py (the ``# -> T`` comment above each
``reveal_type`` says what must be revealed) and on a script revealing every name of ``aiolightning.__all__``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import aiolightning

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "typing" / "sync_user_script.py"
REVEALED = re.compile(r"^(?P<path>.+?):(?P<line>\d+): note: Revealed type is \"(?P<type>.*)\"$")


def expected(path: Path) -> dict[int, str]:
    """line of each ``reveal_type`` -> the type in the ``# -> T`` comment above it."""
    out = {}
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if line.strip().startswith("reveal_type(") and lines[number - 2].strip().startswith(
            "# -> "
        ):
            out[number] = lines[number - 2].strip().removeprefix("# -> ")
    return out


def public_names_script(path: Path) -> dict[int, str]:
    """``reveal_type(aiolightning.X)`` for every X in __all__; returns line -> name."""
    lines = ["import aiolightning", "from typing import reveal_type", ""]
    where = {}
    for name in aiolightning.__all__:
        lines.append(f"reveal_type(aiolightning.{name})")
        where[len(lines)] = name
    path.write_text("\n".join(lines) + "\n")
    return where


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[int, str], Path]:
    names_file = tmp_path_factory.mktemp("typing") / "public_names.py"
    where = public_names_script(names_file)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            str(SCRIPT),
            str(names_file),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return proc.stdout + proc.stderr, where, names_file


def revealed(output: str, path: Path) -> dict[int, str]:
    out = {}
    for line in output.splitlines():
        m = REVEALED.match(line)
        if m and Path(m["path"]).name == path.name:
            out[int(m["line"])] = m["type"]
    return out


def test_sync_user_script_has_no_error_and_real_types(
    mypy_output: tuple[str, dict[int, str], Path],
) -> None:
    output = mypy_output[0]
    errors = [line for line in output.splitlines() if ": error:" in line]
    assert errors == []
    want = expected(SCRIPT)
    assert len(want) >= 12
    assert revealed(output, SCRIPT) == want


def test_every_public_name_types_as_itself(
    mypy_output: tuple[str, dict[int, str], Path],
) -> None:
    output, where, names_file = mypy_output
    got = revealed(output, names_file)
    assert set(got) == set(where)
    untyped = sorted(where[line] for line, typ in got.items() if typ == "Any")
    assert untyped == []
