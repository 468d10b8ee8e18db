"""The package's rooms stay small and its imports run one way (docs/internals.md)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import aiolightning

PACKAGE = Path(aiolightning.__file__).parent
GENERATED = ("api", "models")  # written by tools/codegen.py, not by hand
MAX_LINES = 420  # "about 400": a room that outgrows this holds more than one thing


def hand_written() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] not in GENERATED:
            yield path


def module_name(path: Path) -> str:
    parts = ("aiolightning", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports when it runs: at module level or inside a function,
    but not under ``if TYPE_CHECKING:``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (
                (f"{base}.{node.module}" if node.level and node.module else base)
                if node.level
                else (node.module or "")
            )
            for alias in node.names:  # `from . import _x` imports the module _x
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in modules and m != name}


def test_no_hand_written_module_outgrows_a_room() -> None:
    big = {
        str(p.relative_to(PACKAGE)): n
        for p in hand_written()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}


def test_every_room_says_what_it_holds() -> None:
    missing = [
        str(p.relative_to(PACKAGE))
        for p in hand_written()
        if not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert missing == []


def test_no_runtime_import_circle() -> None:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {name: runtime_imports(path, modules) for name, path in paths.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt, stack)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [])
    assert cycles == []
