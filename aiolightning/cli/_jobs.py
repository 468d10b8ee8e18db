"""``aiolightning jobs submit|list|watch|stop|logs``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._context import Context
from ._exit import OperationFailed, UsageError, one_line
from ._parser import subcommand
from ._studios import check_machine, raise_failures

if TYPE_CHECKING:
    from ..fanout import Outcome
    from ..resources.jobs import Job, JobRequest

__all__ = ["register", "submit_jobs", "watch_jobs"]


def register(commands: Any) -> None:
    jobs = subcommand(commands, "jobs", "submit, list, watch and stop jobs; read their logs")
    sub = jobs.add_subparsers(dest="action", metavar="ACTION", parser_class=type(jobs))
    sub.required = True

    p = subcommand(
        sub,
        "submit",
        "submit a job (or --count jobs) and optionally watch them finish",
        description="Submit a job running COMMAND in a container --image or in the "
        "environment of a --studio. With --count N, submit N jobs named NAME-0 ... NAME-<N-1>; "
        "'{i}' in COMMAND becomes the job's index (a parameter sweep in one line).",
    )
    p.add_argument("name", help="job name (the prefix with --count)")
    p.add_argument("job_command", metavar="COMMAND", help="command to run, e.g. 'python train.py'")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--image", default=None, help="container image, e.g. python:3.11-slim")
    where.add_argument("--studio", default=None, help="run in the environment of this studio")
    p.add_argument("--machine", default=None, help="machine slug, e.g. cpu-4 (default), lit-l4-1")
    p.add_argument("--count", type=int, default=None, help="submit COUNT jobs")
    p.add_argument(
        "--machines", type=int, default=1, help="run each job on this many machines (ranks)"
    )
    p.add_argument("--watch", action="store_true", help="wait until the jobs finish")
    p.add_argument("--timeout", type=float, default=None, help="with --watch: give up after this")
    p.add_argument("--concurrency", type=int, default=64, help="submissions in flight")
    p.add_argument(
        "--journal", metavar="FILE", default=None,
        help="record the run in FILE: rerun the same command after a crash to finish it",
    )  # fmt: skip
    p.set_defaults(handler=cmd_submit)

    p = subcommand(sub, "list", "list the jobs of the teamspace")
    p.add_argument(
        "--state", default=None, help="only jobs in this state (pending, running, completed, ...)"
    )
    p.set_defaults(handler=cmd_list)

    p = subcommand(
        sub,
        "watch",
        "wait for jobs to finish, with a progress bar",
        description="Poll jobs until every one is completed, stopped or failed (one list "
        "call per page when cheaper than one request per job). Exit code 1 if any failed.",
    )
    p.add_argument("name", nargs="*", help="job names or ids (default: every unfinished job)")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.set_defaults(handler=cmd_watch)

    p = subcommand(sub, "stop", "stop jobs and wait until they stopped")
    p.add_argument("name", nargs="+", help="job names or ids")
    p.add_argument("--delete", action="store_true", help="delete the jobs once stopped")
    p.set_defaults(handler=cmd_stop)

    p = subcommand(
        sub,
        "logs",
        "print a job's log (--follow: until it finishes)",
        description="Print the log lines of a job (of every machine of a multi-machine job, or "
        "of one with --rank). With --follow, keep printing as the job writes them until it "
        "is completed, stopped or failed. --json prints one JSON object per line.",
    )
    p.add_argument("name", help="job name or id")
    p.add_argument("-f", "--follow", action="store_true", help="follow until the job ends")
    p.add_argument("--rank", type=int, default=None, help="one machine of a multi-machine job")
    p.add_argument("--timestamps", action="store_true", help="prefix each line with its time")
    p.set_defaults(handler=cmd_logs)


def _row(job: Job) -> dict[str, Any]:
    return {
        "name": job.name,
        "status": job.status.value,
        "state": job.state,
        "machine": job.machine or None,
        "id": job.id,
        "created": job.created_at or None,
    }


async def submit_jobs(
    ctx: Context,
    requests: Sequence[JobRequest],
    *,
    concurrency: int = 64,
    journal: str | None = None,
) -> list[Outcome[JobRequest, Job]]:
    """Submit jobs concurrently with a done/failed progress bar; one outcome per request."""
    from ..fanout import Progress as Counts

    client = await ctx.client()
    async with ctx.progress("submitting jobs", len(requests)) as bar:

        def seen(p: Counts) -> None:
            bar.update(done=p.done, failed=p.failed)

        return await client.jobs.submit_many(
            requests, concurrency=concurrency, on_progress=seen, journal=journal
        )


async def watch_jobs(
    ctx: Context,
    jobs: Sequence[Job | str],
    *,
    timeout: float | None = None,  # noqa: ASYNC109
) -> dict[str, Job]:
    """Watch jobs until all are terminal; progress shows finished/failed. ``{id: Job}``."""
    from ..resources.jobs import JobStatus

    client = await ctx.client()
    final: dict[str, Job] = {}
    async with ctx.progress("jobs finished", len(jobs)) as bar:
        async for change in client.jobs.watch(jobs, timeout=timeout):
            if change.status.is_terminal:
                final[change.job.id] = change.job
                failed = sum(1 for j in final.values() if j.status is JobStatus.FAILED)
                bar.update(done=len(final), failed=failed)
    return final


def _summarize(ctx: Context, jobs: Sequence[Job]) -> int:
    from ..resources.jobs import JobStatus

    rows = [_row(j) for j in jobs]
    failed = [j for j in jobs if j.status is JobStatus.FAILED]
    if ctx.json:
        ctx.out.document(rows)
    else:
        counts: dict[str, int] = {}
        for j in jobs:
            counts[j.status.value] = counts.get(j.status.value, 0) + 1
        if len(rows) <= 20:
            ctx.out.table(rows, ["name", "status", "machine", "id"])
        ctx.out.line(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    if failed:
        raise OperationFailed(f"{len(failed)} of {len(jobs)} jobs failed (first: {failed[0]})")
    return 0


async def cmd_submit(ctx: Context) -> int:
    from ..resources.jobs import JobRequest

    args = ctx.args
    machine = check_machine(args.machine)
    if args.image is None and args.studio is None:
        raise UsageError("give --image IMAGE or --studio STUDIO: where the job runs")
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be a positive number")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be a positive number")
    if args.machines < 1:
        raise UsageError("--machines must be a positive number")
    if args.count is None:
        specs = [(args.name, args.job_command)]
    else:
        specs = [
            (f"{args.name}-{i}", args.job_command.replace("{i}", str(i))) for i in range(args.count)
        ]
    requests = [
        JobRequest(
            name=n,
            command=c,
            image=args.image,
            studio=args.studio,
            machine=machine,
            machines=args.machines,
        )
        for n, c in specs
    ]
    outcomes = await submit_jobs(ctx, requests, concurrency=args.concurrency, journal=args.journal)
    submitted = [o.value for o in outcomes if o.ok and o.value is not None]
    errors = [o for o in outcomes if not o.ok]
    if errors and len(errors) == len(outcomes):
        raise_failures(outcomes, "submissions")  # every one failed: the first one's error
    if args.watch and submitted:
        final = await watch_jobs(ctx, submitted, timeout=args.timeout)
        submitted = [final.get(j.id, j) for j in submitted]
        code = _summarize(ctx, submitted)
    else:
        if ctx.json:
            ctx.out.document([_row(j) for j in submitted])
        elif len(submitted) <= 20:
            ctx.out.table([_row(j) for j in submitted], ["name", "status", "machine", "id"])
        else:
            ctx.out.line(f"{len(submitted)} jobs submitted")
        code = 0
    raise_failures(outcomes, "submissions")
    return code


async def cmd_list(ctx: Context) -> int:
    client = await ctx.client()
    jobs = [j async for j in client.jobs.list(state=ctx.args.state)]
    ctx.out.result([_row(j) for j in jobs], ["name", "status", "machine", "id"], empty="no jobs")
    return 0


async def cmd_watch(ctx: Context) -> int:
    client = await ctx.client()
    refs: list[Job | str] = list(ctx.args.name)
    if not refs:
        refs = [j async for j in client.jobs.list() if not j.status.is_terminal]
        if not refs:
            ctx.out.result([], ["name"], empty="no unfinished jobs")
            return 0
    final = await watch_jobs(ctx, refs, timeout=ctx.args.timeout)
    return _summarize(ctx, list(final.values()))


async def cmd_stop(ctx: Context) -> int:
    from ..fanout import Progress as Counts
    from ..fanout import map_outcomes

    client = await ctx.client()
    delete = bool(ctx.args.delete)

    async def one(name: str) -> Job:
        job = await client.jobs.stop(name)
        if delete:
            await client.jobs.delete(job)
        return job

    names: list[str] = list(ctx.args.name)
    async with ctx.progress("stopping jobs", len(names)) as bar:

        def seen(p: Counts) -> None:
            bar.update(done=p.done, failed=p.failed)

        outcomes = await map_outcomes(one, names, concurrency=64, on_progress=seen)
    rows = []
    for o in outcomes:
        if o.ok and o.value is not None:
            row = _row(o.value)
            row["deleted"] = delete
        else:
            row = {"name": o.item, "status": None, "error": one_line(o.error or Exception())}
        rows.append(row)
    ctx.out.result(rows, ["name", "status", "id"] + (["deleted"] if delete else []))
    raise_failures(outcomes, "jobs")
    return 0


async def cmd_logs(ctx: Context) -> int:
    import msgspec

    args = ctx.args
    if args.rank is not None and args.rank < 0:
        raise UsageError("--rank must be 0 or more")
    client = await ctx.client()
    out = ctx.out.stream
    async for ln in client.jobs.logs(args.name, follow=args.follow, rank=args.rank):
        if ctx.json:
            out.write(msgspec.json.encode(ln).decode() + "\n")
        else:
            out.write(f"[{ln.timestamp}] {ln.message}\n" if args.timestamps else ln.message + "\n")
        out.flush()
    return 0
