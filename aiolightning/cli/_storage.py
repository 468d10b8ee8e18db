"""``aiolightning storage cp|ls|rm`` with ``lit://`` URLs."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._context import Context
from ._exit import UsageError
from ._output import format_bytes
from ._parser import subcommand

if TYPE_CHECKING:
    from ..transfer import DownloadResult, TransferProgress, UploadResult
    from ._progress import Progress

__all__ = ["download_file", "register", "remove_remote", "upload_file"]

_URLS = (
    "Remote paths are lit:// URLs: lit://<owner>/<teamspace>/<path>, or lit:///<path> in "
    "the default teamspace (--teamspace, LIGHTNING_TEAMSPACE, or your only teamspace). A "
    "studio's files are under lit://.../studios/<studio>/."
)


def register(commands: Any) -> None:
    storage = subcommand(commands, "storage", "copy, list and remove files in teamspace storage")
    sub = storage.add_subparsers(dest="action", metavar="ACTION", parser_class=type(storage))
    sub.required = True

    p = subcommand(
        sub,
        "cp",
        "copy files between this machine and lit:// storage",
        description="Upload (local path -> lit:// URL) or download (lit:// URL -> local "
        "path). Large files move in parallel parts, resumably, with a progress bar. A "
        "destination ending in '/' (or an existing local folder) keeps the file's name. "
        "-r copies a folder's contents into DESTINATION, as `aws s3 cp --recursive` does: "
        "`cp -r data lit:///ds/` makes lit:///ds/a.txt of data/a.txt, whether or not ds "
        "exists (to keep the folder's name, say so: lit:///ds/data/). A download creates "
        "the destination folder but not its parent, as cp does. " + _URLS,
    )
    p.add_argument("source", help="local path or lit:// URL")
    p.add_argument("destination", help="local path or lit:// URL")
    p.add_argument("-r", "--recursive", action="store_true", help="copy a folder")
    p.set_defaults(handler=cmd_cp)

    p = subcommand(sub, "ls", "list files under a lit:// URL", description=_URLS)
    p.add_argument(
        "target", metavar="URL", nargs="?", default="lit:///", help="lit:// URL (default lit:///)"
    )
    p.add_argument("-r", "--recursive", action="store_true", help="list every file below")
    p.set_defaults(handler=cmd_ls)

    p = subcommand(sub, "rm", "remove files (or folders with -r)", description=_URLS)
    p.add_argument("targets", metavar="URL", nargs="+", help="lit:// URL(s)")
    p.add_argument("-r", "--recursive", action="store_true", help="remove folders recursively")
    p.set_defaults(handler=cmd_rm)


def _check_url(url: str) -> str:
    """Validate a lit:// URL before anything is sent (malformed: exit code 2)."""
    from ..transfer import parse_lit_url

    parse_lit_url(url)  # raises StoragePathError (a ValueError): exit code 2
    return url


def _local_kind(path: Path) -> tuple[str, int]:
    """("missing" | "dir" | "file" | "other", size) of a local path (a quick stat)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing", 0
    if stat.S_ISDIR(st.st_mode):
        return "dir", 0
    return ("file" if stat.S_ISREG(st.st_mode) else "other"), st.st_size


def _make_dir(path: Path) -> None:
    """The destination folder, not its parents (as ``cp`` creates none)."""
    try:
        path.mkdir(exist_ok=True)
    except FileNotFoundError:
        raise UsageError(f"local folder {str(path.parent)!r} does not exist") from None


def _bytes_callback(bar: Progress) -> Any:
    def seen(p: TransferProgress) -> None:
        bar.update(done=p.bytes_done, total=p.bytes_total or None, failed=p.files_failed)

    return seen


async def upload_file(ctx: Context, local: Path, remote: str) -> UploadResult:
    """Upload one file with a bytes/s progress bar."""
    client = await ctx.client()
    size = _local_kind(local)[1]
    async with ctx.progress("upload", size, unit="bytes") as bar:
        return await client.storage.upload(local, remote, progress=_bytes_callback(bar))


async def download_file(ctx: Context, remote: str, local: Path) -> DownloadResult:
    """Download one file with a bytes/s progress bar."""
    client = await ctx.client()
    async with ctx.progress("download", None, unit="bytes") as bar:
        return await client.storage.download(remote, local, progress=_bytes_callback(bar))


async def remove_remote(ctx: Context, remote: str, *, recursive: bool = False) -> None:
    client = await ctx.client()
    await client.storage.delete(remote, recursive=recursive)


async def cmd_cp(ctx: Context) -> int:
    from ..transfer import IsAFolderError, is_lit_url

    src, dst, recursive = ctx.args.source, ctx.args.destination, ctx.args.recursive
    src_remote, dst_remote = is_lit_url(src), is_lit_url(dst)
    if src_remote == dst_remote:
        which = "both are" if src_remote else "neither is"
        raise UsageError(
            f"one of SOURCE and DESTINATION must be a lit:// URL and the other a local path "
            f"({which})"
        )
    _check_url(src if src_remote else dst)
    client = await ctx.client()
    rows: list[dict[str, Any]] = []
    if not src_remote:  # upload
        local = Path(src)
        kind = _local_kind(local)[0]
        if kind == "missing":
            raise UsageError(f"local path {src!r} does not exist")
        if kind == "dir" and not recursive:
            raise UsageError(f"{src!r} is a folder; use -r to copy a folder")
        if kind == "dir":
            async with ctx.progress("upload", None, unit="bytes") as bar:
                ups = await client.storage.upload_dir(local, dst, progress=_bytes_callback(bar))
            rows = [{"source": u.local, "destination": u.remote, "size": u.size} for u in ups]
        else:
            up = await upload_file(ctx, local, dst)
            rows = [{"source": up.local, "destination": up.remote, "size": up.size}]
    else:  # download
        local = Path(dst)
        kind = _local_kind(local)[0]
        if recursive:
            if kind not in ("missing", "dir"):
                raise UsageError(f"{dst!r} is a file; give a folder to download into")
            async with ctx.progress("download", None, unit="bytes") as bar:
                downs = await client.storage.download_dir(src, local, progress=_bytes_callback(bar))
            rows = [{"source": d.remote, "destination": d.local, "size": d.size} for d in downs]
        else:
            if dst.endswith(os.sep) and kind == "missing":
                _make_dir(local)
            try:
                down = await download_file(ctx, src, local)
            except IsAFolderError as exc:
                raise UsageError(f"{src} is a folder; use -r to copy a folder") from exc
            rows = [{"source": down.remote, "destination": down.local, "size": down.size}]
    if ctx.json:
        ctx.out.document(rows)
    else:
        total = sum(int(r["size"]) for r in rows)
        if len(rows) == 1:
            r = rows[0]
            ctx.out.line(f"copied {r['source']} -> {r['destination']} ({format_bytes(total)})")
        else:
            ctx.out.line(f"copied {len(rows)} files ({format_bytes(total)})")
    return 0


async def cmd_ls(ctx: Context) -> int:
    url = _check_url(ctx.args.target)
    client = await ctx.client()
    rows: list[dict[str, Any]] = []
    async for info in client.storage.list(url, recursive=ctx.args.recursive):
        rows.append(
            {
                "path": info.path + ("/" if info.is_dir else ""),
                "type": "folder" if info.is_dir else "file",
                "size": info.size,
                "modified": info.last_modified.isoformat(timespec="seconds")
                if info.last_modified
                else None,
            }
        )
    if ctx.json:
        ctx.out.document(rows)
    else:
        shown = [
            {**r, "size": format_bytes(r["size"]) if r["size"] is not None else None} for r in rows
        ]
        ctx.out.table(shown, ["size", "modified", "path"], empty="(empty)")
    return 0


async def cmd_rm(ctx: Context) -> int:
    urls = [_check_url(u) for u in ctx.args.targets]
    client = await ctx.client()
    from ..transfer import IsAFolderError

    for url in urls:
        try:
            await client.storage.delete(url, recursive=ctx.args.recursive)
        except IsAFolderError as exc:
            raise UsageError(f"{url} is a folder; use -r to remove a folder") from exc
        ctx.out.line(f"removed {url}")
    if ctx.json:
        ctx.out.document([{"removed": u} for u in urls])
    return 0
