"""``aiolightning storage cp|ls|rm`` with ``lit://`` URLs."""

from __future__ import annotations

from typing import Any

from ._context import Context
from ._parser import subcommand

__all__ = ["register"]

_URLS = (
    "Remote paths are lit:// URLs: lit://<owner>/<teamspace>/<path> or lit:///<path> for "
    "the default teamspace; studio files live under lit://.../studios/<studio>/."
)


def register(commands: Any) -> None:
    storage = subcommand(commands, "storage", "copy, list and remove files in teamspace storage")
    sub = storage.add_subparsers(dest="action", metavar="ACTION", parser_class=type(storage))
    sub.required = True

    p = subcommand(
        sub,
        "cp",
        "copy a file or folder between this machine and lit:// storage",
        description="Upload (local -> lit://) or download (lit:// -> local). " + _URLS,
    )
    p.add_argument("source", help="local path or lit:// URL")
    p.add_argument("destination", help="local path or lit:// URL")
    p.add_argument("-r", "--recursive", action="store_true", help="copy a folder")
    p.set_defaults(handler=cmd_cp)

    p = subcommand(sub, "ls", "list files under a lit:// URL", description=_URLS)
    p.add_argument("url", nargs="?", default="lit:///", help="lit:// URL (default: lit:///)")
    p.add_argument("-r", "--recursive", action="store_true", help="list every file below")
    p.set_defaults(handler=cmd_ls)

    p = subcommand(sub, "rm", "remove a file (or a folder with -r)", description=_URLS)
    p.add_argument("url", nargs="+", help="lit:// URL(s)")
    p.add_argument("-r", "--recursive", action="store_true", help="remove folders")
    p.set_defaults(handler=cmd_rm)


async def cmd_cp(ctx: Context) -> int:
    raise NotImplementedError


async def cmd_ls(ctx: Context) -> int:
    raise NotImplementedError


async def cmd_rm(ctx: Context) -> int:
    raise NotImplementedError
