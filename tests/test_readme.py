"""Every code block of the README runs, as written, against an emulator.

Python blocks run in this process with the ``LIGHTNING_*`` environment pointing at an
emulator (``emu.sdk_env()``), in a folder holding the files they name (``model.ckpt``,
``data/``), as a reader would run them:

* a complete program (it calls ``asyncio.run`` or opens ``Lightning``) runs as a script;
* a block with top-level ``await`` continues "inside such a coroutine, with ``client``
  open", as the README says: it runs as a notebook cell would, with ``client`` an open
  ``AsyncLightning``;
* a block of pytest tests runs under pytest, with the plugin's fixtures.

Shell blocks are command lines: every ``aiolightning`` command and option they name must
exist (the demo itself runs, scaled down, in ``test_cli.py``), and the README's test command
is the one CI runs (``.ci/run``).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiolightning import AsyncLightning
from aiolightning.emulator import EmulatorConfig, EmulatorThread, Timings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TEAMSPACE = "my-team"  # the teamspace the README's snippets name


def blocks(language: str) -> list[tuple[int, str]]:
    """(line number, code) of every fenced block of ``language`` in the README."""
    found = []
    lines = README.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{language}":
            start = i + 1
            end = lines.index("```", start)
            found.append((start + 1, "\n".join(lines[start:end]) + "\n"))
            i = end
        i += 1
    return found


PYTHON = blocks("python")
SHELL = blocks("sh")


def test_the_readme_has_only_blocks_this_file_runs() -> None:
    fences = re.findall(r"^```(\S*)$", README.read_text(), flags=re.MULTILINE)
    opened = fences[0::2]
    assert set(opened) <= {"python", "sh"}, opened  # a new language needs a runner here
    assert len(PYTHON) + len(SHELL) == len(opened) and len(PYTHON) >= 8


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    fast = Timings(
        studio_start=0.05, studio_stop=0.02, job_pending=0.02, job_creating=0.02,
        job_running=0.05, job_finishing=0.02, job_stop=0.02, command=0.01,
    )  # fmt: skip
    with EmulatorThread(config=EmulatorConfig(timings=fast)) as e:
        org = e.state.orgs[e.org_id]
        user = e.state.users[e.user_id]
        e.state.add_project(TEAMSPACE, org.id, "organization", user)
        yield e


@pytest.fixture
def reader(emu: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A reader's shell: the environment points at the emulator; the current folder holds
    the files the snippets name."""
    for key, value in emu.sdk_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIOLIGHTNING_CACHE_DIR", str(tmp_path / "cache"))
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "model.ckpt").write_bytes(b"weights" * 1000)
    for i in range(3):
        (work / "data" / f"shard-{i}.bin").write_bytes(bytes([i]) * 2048)
    monkeypatch.chdir(work)
    return work


def _kind(code: str) -> str:
    if re.search(r"^def test_", code, flags=re.MULTILINE):
        return "pytest"
    tree = ast.parse(code, "README.md")  # top-level await/async for/with are not in a function
    top = [n for n in ast.walk(tree) if isinstance(n, ast.Await | ast.AsyncFor | ast.AsyncWith)]
    inside = {
        id(n) for f in ast.walk(tree) if isinstance(f, ast.AsyncFunctionDef) for n in ast.walk(f)
    }
    return "cell" if any(id(n) not in inside for n in top) else "script"


def _run_cell(code: str, where: str) -> None:
    """Run a block with top-level await as a notebook cell: ``client`` is open."""
    compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

    async def cell() -> None:
        async with AsyncLightning() as client:
            namespace: dict[str, Any] = {"client": client, "__name__": "__readme__"}
            result = eval(compiled, namespace)
            if asyncio.iscoroutine(result):
                await result

    asyncio.run(cell())


@pytest.mark.parametrize(
    "code", [code for _, code in PYTHON], ids=[f"line{line}" for line, _ in PYTHON]
)
def test_python_block_runs(code: str, reader: Path) -> None:
    where = f"README.md block {code.splitlines()[0]!r}"
    kind = _kind(code)
    if kind == "pytest":
        (reader / "test_readme_block.py").write_text(code)
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme_block.py"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if kind == "cell":
            _run_cell(code, where)
        else:
            exec(compile(code, where, "exec"), {"__name__": "__main__"})


# --- shell blocks ----------------------------------------------------------------------------


def _cli_tree() -> dict[str, set[str]]:
    """``{"studios start": {subcommands and options}}`` for every command of the CLI."""
    import argparse

    from aiolightning.cli._commands import build_parser
    from aiolightning.emulator._cli import parser as emulator_parser

    tree: dict[str, set[str]] = {}

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        words = tree.setdefault(path, set())
        for action in parser._actions:  # argparse keeps them there
            words.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    words.add(name)
                    walk(child, f"{path} {name}".strip())

    walk(build_parser(), "")
    walk(emulator_parser(), "emulator")  # `aiolightning emulator` hands its options over
    return tree


def _commands(code: str) -> Iterator[list[str]]:
    """The ``aiolightning`` command lines of a shell block; ``a | b`` alternatives in a
    synopsis become one command each (``aiolightning studios list | start NAME``)."""
    for raw in code.splitlines():
        line = raw.split("  #")[0].strip()
        if line.startswith("#") or not line:
            continue
        for part in line.split("&&"):
            words = shlex.split(part.strip())
            if not words or not words[0].endswith("aiolightning"):
                continue
            words = words[1:]
            if "|" not in words:
                yield words
                continue
            alternatives = " ".join(words).split(" | ")
            first = alternatives[0].split()
            prefix = first[:-1]
            yield first
            for alt in alternatives[1:]:
                yield [*prefix, *alt.split()]


def test_shell_blocks_name_commands_and_options_that_exist() -> None:
    tree = _cli_tree()
    seen = 0
    for line, code in SHELL:
        for words in _commands(code):
            path: list[str] = []
            for w in words:  # the longest run of subcommands
                if " ".join([*path, w]) in tree:
                    path.append(w)
                elif not w.startswith(("-", "[")):
                    break
            assert path, (line, words)
            known = tree[" ".join(path)]
            options = {
                m.group(0) for w in words for m in [re.match(r"-[-\w]+", w.strip("[]"))] if m
            }
            unknown = options - known - {"-h", "--help"}
            assert not unknown, (line, " ".join(words), unknown)
            seen += 1
    assert seen >= 10


def test_the_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [c for _, code in SHELL for c in code.split("&&") if "pytest" in c]
    assert commands, "the README names no test command"
    for command in commands:
        invocation = command.strip().split("/bin/", 1)[-1]  # python -m pytest -q
        assert invocation in ci, invocation
