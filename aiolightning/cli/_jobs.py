"""``aiolightning jobs submit|list|watch|stop``."""

from __future__ import annotations

from typing import Any

from ._context import Context
from ._parser import subcommand

__all__ = ["register"]


def register(commands: Any) -> None:
    jobs = subcommand(commands, "jobs", "submit, list, watch and stop jobs")
    sub = jobs.add_subparsers(dest="action", metavar="ACTION", parser_class=type(jobs))
    sub.required = True

    p = subcommand(
        sub,
        "submit",
        "submit a job (or --count copies) and optionally watch it finish",
        description="Submit a job running COMMAND on a machine. With --count N, submit N "
        "jobs named NAME-0 ... NAME-<N-1>; '{i}' in COMMAND is replaced by the index.",
    )
    p.add_argument("name", help="job name (prefix with --count)")
    p.add_argument("job_command", metavar="COMMAND", help="command to run, e.g. 'python train.py'")
    p.add_argument("--machine", default=None, help="machine, e.g. cpu-4, gpu-l4 (default: cpu)")
    p.add_argument("--image", default=None, help="container image (default: the studio image)")
    p.add_argument("--studio", default=None, help="run in the environment of this studio")
    p.add_argument("--count", type=int, default=None, help="submit COUNT jobs")
    p.add_argument("--watch", action="store_true", help="wait until the jobs finish")
    p.add_argument("--concurrency", type=int, default=32, help="submissions in flight")
    p.set_defaults(handler=cmd_submit)

    p = subcommand(sub, "list", "list the jobs of the teamspace")
    p.set_defaults(handler=cmd_list)

    p = subcommand(sub, "watch", "wait for jobs to finish, with a progress bar")
    p.add_argument("name", nargs="*", help="job names (default: every unfinished job)")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.set_defaults(handler=cmd_watch)

    p = subcommand(sub, "stop", "stop jobs")
    p.add_argument("name", nargs="+", help="job name(s)")
    p.add_argument("--delete", action="store_true", help="delete the jobs once stopped")
    p.set_defaults(handler=cmd_stop)


async def cmd_submit(ctx: Context) -> int:
    raise NotImplementedError


async def cmd_list(ctx: Context) -> int:
    raise NotImplementedError


async def cmd_watch(ctx: Context) -> int:
    raise NotImplementedError


async def cmd_stop(ctx: Context) -> int:
    raise NotImplementedError
