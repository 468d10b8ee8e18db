"""``aiolightning deployments list|create|wait|stop|delete``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._context import Context
from ._exit import UsageError
from ._parser import subcommand
from ._studios import check_machine, raise_failures

if TYPE_CHECKING:
    from ..resources.deployments import Deployment

__all__ = ["register"]

_COLUMNS = ["name", "status", "ready", "machine", "url"]


def register(commands: Any) -> None:
    deps = subcommand(
        commands, "deployments", "create, list, wait for, stop and delete deployments"
    )
    sub = deps.add_subparsers(dest="action", metavar="ACTION", parser_class=type(deps))
    sub.required = True

    p = subcommand(sub, "list", "list the deployments of the teamspace")
    p.set_defaults(handler=cmd_list)

    p = subcommand(
        sub,
        "create",
        "create a deployment (and with --wait, wait until it is ready and answers)",
        description="Serve COMMAND from a container --image (or in a --studio's environment) "
        "on --replicas replicas of --machine, reachable on --port behind your API key "
        "(--public: no auth). --min/--max turn on autoscaling within those bounds.",
    )
    p.add_argument("name", help="deployment name")
    p.add_argument("--command", dest="dep_command", default=None, help="command the replicas run")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--image", default=None, help="container image")
    where.add_argument("--studio", default=None, help="run in the environment of this studio")
    p.add_argument("--machine", default=None, help="machine slug, e.g. cpu-4 (default), lit-l4-1")
    p.add_argument("--replicas", type=int, default=1, help="replicas (default 1)")
    p.add_argument("--min", dest="min_replicas", type=int, default=None, help="autoscale from")
    p.add_argument("--max", dest="max_replicas", type=int, default=None, help="autoscale up to")
    p.add_argument("--port", type=int, action="append", default=None, help="port (repeatable)")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="env variable")
    p.add_argument("--public", action="store_true", help="no auth on the endpoint")
    p.add_argument("--wait", action="store_true", help="wait until ready")
    p.add_argument("--timeout", type=float, default=900.0, help="with --wait: give up after this")
    p.set_defaults(handler=cmd_create)

    p = subcommand(sub, "wait", "wait until deployments are ready and answer")
    p.add_argument("name", nargs="+", help="deployment names or ids")
    p.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    p.set_defaults(handler=cmd_wait)

    p = subcommand(sub, "stop", "scale deployments to zero and wait until their replicas are gone")
    p.add_argument("name", nargs="+", help="deployment names or ids")
    p.set_defaults(handler=cmd_stop)

    p = subcommand(sub, "delete", "delete deployments")
    p.add_argument("name", nargs="+", help="deployment names or ids")
    p.set_defaults(handler=cmd_delete)


def _row(d: Deployment) -> dict[str, Any]:
    return {
        "name": d.name,
        "status": d.status.value,
        "ready": f"{d.ready_replicas}/{d.replicas}",
        "replicas": d.replicas,
        "min_replicas": d.min_replicas,
        "max_replicas": d.max_replicas,
        "machine": d.machine or None,
        "url": d.url or None,
        "id": d.id,
    }


async def cmd_list(ctx: Context) -> int:
    client = await ctx.client()
    rows = [_row(d) async for d in client.deployments.list()]
    ctx.out.result(rows, _COLUMNS, empty="no deployments")
    return 0


async def cmd_create(ctx: Context) -> int:
    from ..resources.deployments import AutoScale

    a = ctx.args
    machine = check_machine(a.machine)
    if a.image is None and a.studio is None:
        raise UsageError("give --image IMAGE or --studio STUDIO: what the replicas run")
    env: dict[str, str] = {}
    for item in a.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env wants KEY=VALUE, got {item!r}")
        env[key] = value
    autoscale = None
    if a.min_replicas is not None or a.max_replicas is not None:
        lo = a.min_replicas if a.min_replicas is not None else 0
        hi = a.max_replicas if a.max_replicas is not None else max(lo, a.replicas)
        autoscale = AutoScale(lo, hi)
    client = await ctx.client()
    d = await client.deployments.create(
        a.name, image=a.image, studio=a.studio, command=a.dep_command, machine=machine,
        replicas=a.replicas, autoscale=autoscale, ports=a.port or [8080], env=env or None,
        auth=None if a.public else "api_key",
    )  # fmt: skip
    if a.wait:
        async with ctx.progress(f"waiting for {d.name}"):
            d = await client.deployments.wait(d, timeout=a.timeout)
    ctx.out.result([_row(d)], _COLUMNS, document=_row(d))
    return 0


async def cmd_wait(ctx: Context) -> int:
    client = await ctx.client()
    names = list(ctx.args.name)
    timeout = ctx.args.timeout

    async def one(name: str) -> Deployment:
        return await client.deployments.wait(name, timeout=timeout)

    from ..fanout import map_outcomes

    outcomes = await map_outcomes(one, names)
    rows = [_row(o.value) for o in outcomes if o.ok and o.value is not None]
    ctx.out.result(rows, _COLUMNS)
    raise_failures(outcomes, "deployments")
    return 0


async def cmd_stop(ctx: Context) -> int:
    client = await ctx.client()
    outcomes = await client.deployments.stop_many(list(ctx.args.name))
    rows = [_row(o.value) for o in outcomes if o.ok and o.value is not None]
    ctx.out.result(rows, _COLUMNS)
    raise_failures(outcomes, "deployments")
    return 0


async def cmd_delete(ctx: Context) -> int:
    client = await ctx.client()
    outcomes = await client.deployments.delete_many(list(ctx.args.name), missing_ok=False)
    rows = [{"name": o.item, "deleted": o.ok} for o in outcomes]
    ctx.out.result(rows, ["name", "deleted"])
    raise_failures(outcomes, "deployments")
    return 0
