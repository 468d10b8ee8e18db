"""``aiolightning studios list|start|stop|start-many``."""

from __future__ import annotations

from typing import Any

from ._context import Context
from ._parser import subcommand

__all__ = ["register"]


def register(commands: Any) -> None:
    studios = subcommand(commands, "studios", "list, start and stop studios")
    sub = studios.add_subparsers(dest="action", metavar="ACTION", parser_class=type(studios))
    sub.required = True

    p = subcommand(sub, "list", "list the studios of the teamspace")
    p.set_defaults(handler=cmd_list)

    p = subcommand(sub, "start", "start a studio (created if it does not exist) and wait")
    p.add_argument("name", help="studio name")
    p.add_argument("--machine", default=None, help="machine, e.g. cpu-4, gpu-l4 (default: cpu)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (default 600)")
    p.set_defaults(handler=cmd_start)

    p = subcommand(sub, "stop", "stop a studio (and optionally delete it)")
    p.add_argument("name", nargs="+", help="studio name(s)")
    p.add_argument("--delete", action="store_true", help="delete the studio once stopped")
    p.set_defaults(handler=cmd_stop)

    p = subcommand(
        sub,
        "start-many",
        "start many studios at once, with a progress bar",
        description="Start many studios concurrently (creating the missing ones). Name them "
        "one by one, or give --count and --prefix to start <prefix>-0 ... <prefix>-<count-1>.",
    )
    p.add_argument("name", nargs="*", help="studio names")
    p.add_argument("--count", type=int, default=None, help="start COUNT studios named PREFIX-i")
    p.add_argument("--prefix", default="studio", help="name prefix with --count")
    p.add_argument("--machine", default=None, help="machine, e.g. cpu-4 (default: cpu)")
    p.add_argument("--concurrency", type=int, default=32, help="studios in progress at once")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each")
    p.set_defaults(handler=cmd_start_many)


async def cmd_list(ctx: Context) -> int:
    raise NotImplementedError


async def cmd_start(ctx: Context) -> int:
    raise NotImplementedError


async def cmd_stop(ctx: Context) -> int:
    raise NotImplementedError


async def cmd_start_many(ctx: Context) -> int:
    raise NotImplementedError
