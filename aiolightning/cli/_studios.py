"""``aiolightning studios list|start|stop|start-many``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from ._context import Context
from ._exit import OperationFailed, UsageError, one_line
from ._parser import subcommand

if TYPE_CHECKING:
    from ..fanout import Outcome
    from ..resources.machines import Machine
    from ..resources.studios import StudioState

__all__ = ["check_machine", "raise_failures", "register", "start_studios", "stop_studios"]

_MACHINE_HELP = "machine slug, e.g. cpu-4 (default), cpu-8, lit-l4-1, lit-a100-1"
_CREATE_HELP = "create a studio that does not exist (else it is an error, as in the library)"
_CREATE_HINT = "; add --create to create it"
_CREATE_MANY_HINT = "; add --create to create the missing ones"


def register(commands: Any) -> None:
    studios = subcommand(commands, "studios", "list, start and stop studios")
    sub = studios.add_subparsers(dest="action", metavar="ACTION", parser_class=type(studios))
    sub.required = True

    p = subcommand(sub, "list", "list your studios in the teamspace, with their status")
    p.add_argument("--all-users", action="store_true", help="include other users' studios")
    p.set_defaults(handler=cmd_list)

    p = subcommand(
        sub, "start", "start a studio and wait (--create: create it if it does not exist)"
    )
    p.add_argument("name", help="studio name")
    p.add_argument("--create", action="store_true", help=_CREATE_HELP)
    p.add_argument("--machine", default=None, help=_MACHINE_HELP)
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait (default 900)")
    p.set_defaults(handler=cmd_start)

    p = subcommand(sub, "stop", "stop studios and wait (optionally delete them)")
    p.add_argument("name", nargs="+", help="studio name(s)")
    p.add_argument("--delete", action="store_true", help="delete the studios once stopped")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (default 300)")
    p.add_argument(
        "--journal", metavar="FILE", default=None,
        help="record the run in FILE: rerun the same command after a crash to finish it",
    )  # fmt: skip
    p.set_defaults(handler=cmd_stop)

    p = subcommand(
        sub,
        "start-many",
        "start many studios at once, with a progress bar",
        description="Start many studios concurrently (with --create, creating the missing "
        "ones). Name them one by one, or give --count (and --prefix) to start "
        "<prefix>-0 ... <prefix>-<count-1>. A studio that fails does not stop the others; "
        "the exit code is 1 if any failed.",
    )
    p.add_argument("name", nargs="*", help="studio names")
    p.add_argument("--create", action="store_true", help=_CREATE_HELP)
    p.add_argument("--count", type=int, default=None, help="start COUNT studios named PREFIX-i")
    p.add_argument("--prefix", default="studio", help="name prefix with --count (default studio)")
    p.add_argument("--machine", default=None, help=_MACHINE_HELP)
    p.add_argument("--concurrency", type=int, default=64, help="studios in progress at once")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for each")
    p.add_argument(
        "--journal", metavar="FILE", default=None,
        help="record the run in FILE: rerun the same command after a crash to finish it",
    )  # fmt: skip
    p.set_defaults(handler=cmd_start_many)


def check_machine(machine: str | None) -> Machine:
    """The machine, validated before anything is sent (unknown machine: exit code 2)."""
    from ..resources.machines import resolve_machine

    return resolve_machine(machine)


def _state_row(name: str, state: StudioState | None, error: BaseException | None) -> dict[str, Any]:
    status = state.status.value if state is not None else None
    if state is None and error is None:
        status = "deleted"
    return {
        "name": name,
        "ok": error is None,
        "status": status,
        "machine": (state.machine or state.requested_machine or None) if state else None,
        "ready": state.ready if state is not None else None,
        "error": one_line(error) if error is not None else None,
    }


async def cmd_list(ctx: Context) -> int:
    from ..fanout import map_outcomes

    client = await ctx.client()
    studios = [s async for s in client.studios.list(all_users=ctx.args.all_users)]
    outcomes = await map_outcomes(client.studios.state, studios, concurrency=32)
    rows = []
    for s, o in zip(studios, outcomes, strict=True):
        state = o.value if o.ok else None
        rows.append(
            {
                "name": s.name,
                "id": s.id,
                "status": state.status.value
                if state
                else f"? ({one_line(o.error or Exception())})",
                "machine": (state.machine or None) if state else None,
                "ready": state.ready if state else None,
                "cluster": s.cluster_id or None,
            }
        )
    ctx.out.result(rows, ["name", "status", "machine", "id"], empty="no studios")
    return 0


async def cmd_start(ctx: Context) -> int:
    from ..resources.studios import StudioNotFoundError

    machine = check_machine(ctx.args.machine)
    client = await ctx.client()
    name = ctx.args.name
    try:
        state = await client.studios.start(
            name, machine, timeout=ctx.args.timeout, create=ctx.args.create
        )
    except StudioNotFoundError as e:
        raise OperationFailed(f"{one_line(e)}{_CREATE_HINT}") from None
    studio = await client.studios.get(name)
    row = _state_row(studio.name, state, None)
    row["id"] = studio.id
    if ctx.json:
        ctx.out.document(row)
    else:
        ctx.out.line(f"studio {studio.name} is {state.status.value} on {state.machine or machine}")
    return 0


async def start_studios(
    ctx: Context,
    names: Sequence[str],
    machine: Machine,
    *,
    create: bool = False,
    concurrency: int = 64,
    timeout: float | None = 900.0,  # noqa: ASYNC109
    journal: str | None = None,
) -> list[Outcome[str, StudioState]]:
    """Start each studio (``create``: creating the missing ones), with a done/failed
    progress bar; with ``journal``, recorded as a run of that file (rerun to finish it)."""
    from ..fanout import Progress as Counts

    client = await ctx.client()
    async with ctx.progress("starting studios", len(names)) as bar:

        def seen(p: Counts) -> None:
            bar.update(done=p.done, failed=p.failed)

        outcomes = await client.studios.start_many(
            names, machine, create=create, timeout=timeout, concurrency=concurrency,
            on_progress=seen, journal=journal,
        )  # fmt: skip
    return cast("list[Outcome[str, StudioState]]", outcomes)  # the items are the names


def _report(ctx: Context, verb: str, outcomes: Sequence[Outcome[Any, Any]], hint: str = "") -> int:
    rows = [_state_row(str(o.item), o.value if o.ok else None, o.error) for o in outcomes]
    failed = [r for r in rows if not r["ok"]]
    if ctx.json:
        ctx.out.document(rows)
    else:
        if failed:
            shown = [{**r, "error": _clip(r["error"])} for r in failed[:10]]
            ctx.out.table(shown, ["name", "error"])
            if len(failed) > 10:
                ctx.out.line(f"... and {len(failed) - 10} more")
        ctx.out.line(f"{len(rows) - len(failed)} {verb}, {len(failed)} failed")
    raise_failures(outcomes, "studios", hint)
    return 0


def _clip(text: str | None, width: int = 160) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def raise_failures(outcomes: Sequence[Outcome[Any, Any]], what: str, hint: str = "") -> None:
    """Raise for failed items: when every item failed, the first item's own error (so the
    exit code tells why: credentials, unreachable ...), else :class:`OperationFailed`;
    ``hint`` ends the message."""
    errors = [o for o in outcomes if not o.ok]
    if not errors:
        return
    if len(errors) == len(outcomes) and not hint:
        errors[0].result()
    first = errors[0]
    raise OperationFailed(
        f"{len(errors)} of {len(outcomes)} {what} failed; first: {first.item}: "
        f"{one_line(first.error or Exception())}{hint}"
    )


async def cmd_start_many(ctx: Context) -> int:
    args = ctx.args
    machine = check_machine(args.machine)
    names: list[str] = list(args.name)
    if args.count is not None:
        if args.count < 1:
            raise UsageError("--count must be a positive number")
        names += [f"{args.prefix}-{i}" for i in range(args.count)]
    if not names:
        raise UsageError("name some studios, or give --count")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be a positive number")
    outcomes = await start_studios(
        ctx, names, machine, create=args.create, concurrency=args.concurrency,
        timeout=args.timeout, journal=args.journal,
    )  # fmt: skip
    return _report(ctx, "running", outcomes, _missing_hint(outcomes))


def _missing_hint(outcomes: Sequence[Outcome[Any, Any]]) -> str:
    """The --create hint, when a studio failed for not existing."""
    from ..resources.studios import StudioNotFoundError

    missing = any(isinstance(o.error, StudioNotFoundError) for o in outcomes)
    return _CREATE_MANY_HINT if missing else ""


async def stop_studios(
    ctx: Context,
    names: Sequence[str],
    *,
    delete: bool = False,
    timeout: float | None = 300.0,  # noqa: ASYNC109
    journal: str | None = None,
) -> list[Outcome[str, StudioState | None]]:
    """Stop (and optionally delete) each studio, with a done/failed progress bar. With a
    ``journal`` file: ``stop_many`` then ``delete_many``, each a run of that journal."""
    from ..fanout import Progress as Counts
    from ..fanout import map_outcomes

    client = await ctx.client()

    async def one(name: str) -> StudioState | None:
        state = await client.studios.stop(name, timeout=timeout)
        if delete:
            await client.studios.delete(name)
            return None
        return state

    label = "stopping and deleting studios" if delete else "stopping studios"
    async with ctx.progress(label, len(names)) as bar:

        def seen(p: Counts) -> None:
            bar.update(done=p.done, failed=p.failed)

        if journal is None:
            return await map_outcomes(one, names, concurrency=64, on_progress=seen)
        stopped = await client.studios.stop_many(
            names, timeout=timeout, concurrency=64, on_progress=None if delete else seen,
            journal=journal,
        )  # fmt: skip
        if not delete:
            return cast("list[Outcome[str, StudioState | None]]", stopped)
        raise_failures(stopped, "studio stops")
        deleted = await client.studios.delete_many(
            names, concurrency=64, on_progress=seen, journal=journal
        )
        return cast("list[Outcome[str, StudioState | None]]", deleted)


async def cmd_stop(ctx: Context) -> int:
    delete = bool(ctx.args.delete)
    outcomes = await stop_studios(
        ctx, ctx.args.name, delete=delete, timeout=ctx.args.timeout, journal=ctx.args.journal
    )
    return _report(ctx, "deleted" if delete else "stopped", outcomes)
