"""``aiolightning runs list|show|prune FILE``: what a run journal holds, and removing runs."""

from __future__ import annotations

import time
from typing import Any

from ._context import Context
from ._parser import subcommand

__all__ = ["register"]


def register(commands: Any) -> None:
    runs = subcommand(
        commands, "runs", "see and prune the run journals of bulk commands (--journal FILE)"
    )
    sub = runs.add_subparsers(dest="action", metavar="ACTION", parser_class=type(runs))
    sub.required = True

    p = subcommand(sub, "list", "the runs of a journal file: items done, failed, in flight")
    p.add_argument("file", help="the journal file")
    p.set_defaults(handler=cmd_list)

    p = subcommand(
        sub,
        "show",
        "the items of one run",
        description="One line per item: its key, state (intent = in flight when the run "
        "ended: a rerun looks it up at the service first), and its error if it failed.",
    )
    p.add_argument("file", help="the journal file")
    p.add_argument("run", nargs="?", default=None, help="run id (needed if the file has several)")
    p.set_defaults(handler=cmd_show)

    p = subcommand(
        sub,
        "prune",
        "remove runs from a journal (records never expire on their own)",
        description="Remove RUN, or every run of FILE that no live process holds. With "
        "--finished, only the runs that finished (a rerun could still complete the others).",
    )
    p.add_argument("file", help="the journal file")
    p.add_argument("run", nargs="?", default=None, help="one run id (default: every run)")
    p.add_argument("--finished", action="store_true", help="only finished runs")
    p.set_defaults(handler=cmd_prune)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


async def cmd_list(ctx: Context) -> int:
    from ..runs import Journal

    runs = Journal(ctx.args.file).runs()
    rows = [
        {
            "run": r.run_id, "kind": r.kind, "status": r.status, "items": r.items,
            "done": r.done, "failed": r.failed, "in_flight": r.in_flight,
            "updated": _when(r.updated), "holder": r.holder or None,
        }
        for r in runs
    ]  # fmt: skip
    columns = ["run", "kind", "status", "items", "done", "failed", "in_flight", "updated"]
    ctx.out.result(rows, [*columns, "holder"], empty="no runs")
    return 0


async def cmd_show(ctx: Context) -> int:
    from ..runs import Journal

    items = Journal(ctx.args.file).items(ctx.args.run)
    rows = [
        {"key": i.key, "state": i.state, "updated": _when(i.updated), "error": i.error}
        for i in items
    ]
    ctx.out.result(rows, ["key", "state", "updated", "error"], empty="no items")
    return 0


async def cmd_prune(ctx: Context) -> int:
    from ..runs import Journal

    removed = Journal(ctx.args.file).prune(ctx.args.run, finished_only=ctx.args.finished)
    if ctx.json:
        ctx.out.document({"removed": removed})
    else:
        ctx.out.line(
            f"removed {len(removed)} run(s)" + (f": {', '.join(removed)}" if removed else "")
        )
    return 0
