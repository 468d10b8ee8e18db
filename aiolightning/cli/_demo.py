"""``aiolightning demo``: the README's tour, end to end, against an emulator."""

from __future__ import annotations

from typing import Any

from ._context import Context
from ._parser import subcommand

__all__ = ["register"]


def register(commands: Any) -> None:
    p = subcommand(
        commands,
        "demo",
        "start studios, run jobs, move a big file, clean up; print a summary",
        description="Start --studios studios, run a command on each, submit --jobs jobs and "
        "watch them finish, upload and download a --size-mib file and verify its sha256, "
        "then stop and delete everything and print what it took. Without --url it starts "
        "its own emulator in this process, so it needs no account.",
    )
    p.add_argument("--studios", type=int, default=50, help="studios to start (default 50)")
    p.add_argument("--jobs", type=int, default=200, help="jobs to submit (default 200)")
    p.add_argument("--size-mib", type=int, default=256, help="file size in MiB (default 256)")
    p.set_defaults(handler=cmd_demo)


async def cmd_demo(ctx: Context) -> int:
    raise NotImplementedError
