"""A test-only switch that ends the process at once (``os._exit``) at a named boundary of a run.

``AIOLIGHTNING_TEST_CRASH_AT=<boundary>[:<n>]`` exits with status :data:`CRASH_EXIT_CODE` the
``n``-th time (default 1) the process reaches ``boundary``, as a ``kill -9`` would: no
``finally``, no flush. The boundaries of a journaled item, in order:

* ``before-intent`` -- the item is about to have its intent recorded;
* ``after-intent`` -- its intent is committed, its first mutating request not yet sent;
* ``after-act`` -- the server answered a mutating request of the item (it acted) and the
  answer has not reached the caller yet (checked by the transport as the status arrives);
* ``after-answer`` -- the item's call returned, its outcome is not yet recorded;
* ``in-commit`` -- the journal's writer executed a batch and has not committed it.

Unset (the normal case), every check is one test of a module-level flag.
"""

from __future__ import annotations

import os
from contextvars import ContextVar

__all__ = ["ARMED", "BOUNDARIES", "CRASH_ENV", "CRASH_EXIT_CODE", "IN_ITEM", "after_act", "reached"]

CRASH_ENV = "AIOLIGHTNING_TEST_CRASH_AT"
CRASH_EXIT_CODE = 86
BOUNDARIES = ("before-intent", "after-intent", "after-act", "after-answer", "in-commit")
_READS = frozenset({"GET", "HEAD", "OPTIONS"})

#: set while a journaled item runs, so only its own mutating requests count as ``after-act``
IN_ITEM: ContextVar[bool] = ContextVar("aiolightning_journal_item", default=False)


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    name, _, count = value.partition(":")
    if name not in BOUNDARIES:
        raise ValueError(f"{CRASH_ENV}={value!r}: the boundary must be one of {BOUNDARIES}")
    n = int(count) if count else 1
    if n < 1:
        raise ValueError(f"{CRASH_ENV}={value!r}: the count must be >= 1")
    return name, n


_TARGET = _parse(os.environ.get(CRASH_ENV))
ARMED = _TARGET is not None
_hits = 0


def reached(boundary: str) -> None:
    """Exit now if this is the armed boundary's n-th hit."""
    global _hits
    if _TARGET is None or _TARGET[0] != boundary:
        return
    _hits += 1
    if _hits >= _TARGET[1]:
        os._exit(CRASH_EXIT_CODE)


def after_act(method: str) -> None:
    """The transport saw the status of a request: the server acted on it if it mutates."""
    if method not in _READS and IN_ITEM.get():
        reached("after-act")
