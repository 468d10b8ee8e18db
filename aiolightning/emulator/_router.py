"""A path router for the spec's templates: literal segments win over parameters.

Templates look like `/v1/projects/{projectId}/jobs/{id}`. Matching walks a segment trie,
trying the literal child before the parameter child and backtracking, so
`/v1/projects/p/jobs/find` reaches `.../jobs/find` and `/v1/projects/temporary_storage`
reaches the literal route. Each path segment is percent-decoded on its own, so `%2F`
stays inside one parameter value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar
from urllib.parse import unquote

__all__ = ["Match", "Router", "split_path"]

T = TypeVar("T")


@dataclass(slots=True)
class _Leaf(Generic[T]):
    template: str
    param_names: tuple[str, ...]
    target: T


@dataclass(slots=True)
class _Node(Generic[T]):
    literal: dict[str, _Node[T]] = field(default_factory=dict)
    param: _Node[T] | None = None
    tail: _Node[T] | None = None  # `{name:.*}` as the last segment: the rest of the path
    leaves: dict[str, _Leaf[T]] = field(default_factory=dict)  # by method


@dataclass(slots=True)
class Match(Generic[T]):
    template: str
    params: dict[str, str]
    target: T


def split_path(raw_path: str) -> list[str]:
    """Split a raw (still percent-encoded) path into decoded segments.

    Leading slashes are collapsed (a base URL with a trailing slash yields `//v1/...`); an
    empty trailing segment is kept, because `GET /v1/orgs/` means an empty `{id}`.
    """
    path = raw_path.split("?", 1)[0].lstrip("/")
    parts = path.split("/")
    return [unquote(p) if "%" in p else p for p in parts]


def _template_segments(template: str) -> list[str]:
    return template.lstrip("/").split("/")


class Router(Generic[T]):
    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._templates: dict[tuple[str, str], T] = {}

    def add(self, method: str, template: str, target: T, *, replace: bool = False) -> None:
        method = method.upper()
        key = (method, template)
        if key in self._templates and not replace:
            return
        self._templates[key] = target
        node = self._root
        names: list[str] = []
        segs = _template_segments(template)
        for i, seg in enumerate(segs):
            if (
                seg.startswith("{")
                and seg.endswith("}")
                and seg.endswith(":.*}")
                and i == len(segs) - 1
            ):
                names.append(seg[1:-1].split(":", 1)[0])
                if node.tail is None:
                    node.tail = _Node()
                node = node.tail
            elif seg.startswith("{") and seg.endswith("}"):
                names.append(seg[1:-1].split(":", 1)[0])
                if node.param is None:
                    node.param = _Node()
                node = node.param
            else:
                nxt = node.literal.get(seg)
                if nxt is None:
                    nxt = node.literal[seg] = _Node()
                node = nxt
        node.leaves[method] = _Leaf(template, tuple(names), target)

    def has(self, method: str, template: str) -> bool:
        return (method.upper(), template) in self._templates

    def __len__(self) -> int:
        return len(self._templates)

    def _walk(
        self, node: _Node[T], segs: list[str], i: int, values: list[str]
    ) -> Iterator[tuple[_Node[T], list[str]]]:
        if i == len(segs):
            if node.leaves:
                yield node, values
            if node.tail is not None and node.tail.leaves:
                yield node.tail, [*values, ""]
            return
        seg = segs[i]
        nxt = node.literal.get(seg)
        if nxt is not None:
            yield from self._walk(nxt, segs, i + 1, values)
        if node.param is not None:
            yield from self._walk(node.param, segs, i + 1, [*values, seg])
        if node.tail is not None and node.tail.leaves:
            yield node.tail, [*values, "/".join(segs[i:])]

    def match(self, method: str, segments: list[str]) -> Match[T] | Literal[False] | None:
        """The route for `method` and the path, in precedence order.

        Returns a Match; `False` when the path matches some template but not with this method
        (405); `None` when no template matches the path at all (404).
        """
        found_path = False
        for node, values in self._walk(self._root, segments, 0, []):
            found_path = True
            leaf = node.leaves.get(method)
            if leaf is not None:
                return Match(
                    leaf.template, dict(zip(leaf.param_names, values, strict=True)), leaf.target
                )
        return False if found_path else None

    def allowed_methods(self, segments: list[str]) -> list[str]:
        methods: set[str] = set()
        for node, _ in self._walk(self._root, segments, 0, []):
            methods.update(node.leaves)
        return sorted(methods)
