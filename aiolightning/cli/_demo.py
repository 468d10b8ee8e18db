"""``aiolightning demo``: the README's tour, end to end, against an emulator.

Without ``--url`` the demo starts the emulator in this process (modest latency, realistic
but short state-machine timings and a light rate limit, so that throttling shows), and
drives it with a normal client: nothing here uses emulator internals, so ``--url`` (with
credentials from the environment or the credentials file) runs the same tour against any
Lightning server.

Phases: start N studios, run a command in each, submit M jobs (a learning-rate sweep) and
watch them finish, upload a file of S MiB and download it again (sha256 verified), then stop
and delete everything. The summary has, per phase, items, failures, wall time, requests,
retries, throttles (HTTP 429/503 answers) and throughput.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import LightningError
from ._context import Context
from ._exit import OperationFailed, UsageError, one_line
from ._output import format_duration
from ._parser import subcommand

if TYPE_CHECKING:
    from .._client import AsyncLightning
    from ..emulator import EmulatorConfig

__all__ = ["demo_emulator_config", "register"]

_MiB = 1024 * 1024


def register(commands: Any) -> None:
    p = subcommand(
        commands,
        "demo",
        "start studios, run jobs, move a big file, clean up; print a summary",
        description="Start --studios studios and run a command in each, submit --jobs jobs "
        "and watch them finish, upload and download a --size-mib file and verify its "
        "sha256, then stop and delete everything and print what it took. Without --url it "
        "starts its own emulator in this process, so it needs no account and no network.",
    )
    p.add_argument("--studios", type=int, default=50, help="studios to start (default 50)")
    p.add_argument("--jobs", type=int, default=200, help="jobs to submit (default 200)")
    p.add_argument("--size-mib", type=int, default=256, help="file size in MiB (default 256)")
    p.add_argument("--machine", default="cpu-4", help="machine for studios and jobs (cpu-4)")
    p.add_argument(
        "--image", default="python:3.12-slim", help="job image (default python:3.12-slim)"
    )
    p.add_argument(
        "--rate-limit",
        type=float,
        default=300.0,
        help="built-in emulator only: requests/s it accepts before answering 429 "
        "(default 300; 0 = unlimited)",
    )
    p.add_argument(
        "--latency",
        type=float,
        default=0.005,
        help="built-in emulator only: seconds added to each request (default 0.005)",
    )
    p.set_defaults(handler=cmd_demo)


def demo_emulator_config(*, rate_limit: float | None, latency: float) -> EmulatorConfig:
    """Emulator settings for the demo: a bit of latency, a light rate limit, and
    state machines that take about a second (studios) and two seconds (jobs)."""
    from ..emulator import EmulatorConfig, Faults, Timings

    return EmulatorConfig(
        faults=Faults(
            latency=latency,
            latency_jitter=latency,
            rate_limit=rate_limit or None,
            rate_burst=(rate_limit / 4) if rate_limit else None,
        ),
        timings=Timings(
            studio_start=1.0,
            studio_stop=0.3,
            job_pending=0.3,
            job_creating=0.3,
            job_running=1.0,
            job_finishing=0.2,
            job_stop=0.2,
            command=0.1,
        ),
    )


# --- accounting ---------------------------------------------------------------------------


@dataclass
class PhaseResult:
    phase: str
    items: int = 0
    failed: int = 0
    seconds: float = 0.0
    requests: int = 0
    retries: int = 0
    throttles: int = 0
    megabytes: float = 0.0  # bytes moved / 1e6, for MB/s

    @property
    def mb_per_s(self) -> float | None:
        if not self.megabytes or not self.seconds:
            return None
        return self.megabytes / self.seconds


def _totals(client: AsyncLightning) -> tuple[int, int, int]:
    stats = client.limiter.stats().values()
    return (
        sum(s.requests for s in stats),
        sum(s.retries for s in stats),
        sum(s.throttles for s in stats),
    )


class _Tour:
    def __init__(self, ctx: Context, client: AsyncLightning) -> None:
        self.ctx = ctx
        self.client = client
        self.results: list[PhaseResult] = []
        self.problems: list[str] = []

    @contextlib.asynccontextmanager
    async def phase(self, name: str) -> AsyncIterator[PhaseResult]:
        result = PhaseResult(name)
        req0, ret0, thr0 = _totals(self.client)
        started = time.perf_counter()
        try:
            yield result
        except LightningError as exc:
            # the phase failed as a whole (e.g. the upload): record it, go on to clean up
            result.failed = max(result.failed, result.items, 1)
            self.problems.append(f"{name}: {one_line(exc)}")
        finally:
            result.seconds = time.perf_counter() - started
            req1, ret1, thr1 = _totals(self.client)
            result.requests, result.retries = req1 - req0, ret1 - ret0
            result.throttles = thr1 - thr0
            self.results.append(result)
            if result.failed and not any(p.startswith(f"{name}: ") for p in self.problems):
                self.problems.append(f"{name}: {result.failed} of {result.items} failed")
            if not self.ctx.json:
                mark = "ok " if not result.failed else "ERR"
                self.ctx.err(
                    f"[{mark}] {name}: {result.items - result.failed}/{result.items} in "
                    f"{format_duration(result.seconds)}"
                )

    def fail(self, result: PhaseResult, outcomes: Sequence[Any]) -> None:
        bad = [o for o in outcomes if not o.ok]
        result.failed += len(bad)
        for o in bad[:3]:
            self.ctx.err(f"  {o.item}: {one_line(o.error)}")
        if len(bad) > 3:
            self.ctx.err(f"  ... and {len(bad) - 3} more")


# --- the file ----------------------------------------------------------------------------


def _write_random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes; return their sha256 (runs in a worker thread)."""
    digest = hashlib.sha256()
    chunk = 8 * _MiB
    with path.open("wb") as f:
        left = size
        while left > 0:
            data = os.urandom(min(chunk, left))
            digest.update(data)
            f.write(data)
            left -= len(data)
    return digest.hexdigest()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while data := f.read(8 * _MiB):
            digest.update(data)
    return digest.hexdigest()


# --- the command ----------------------------------------------------------------------------


async def cmd_demo(ctx: Context) -> int:
    args = ctx.args
    for flag in ("studios", "jobs", "size_mib"):
        if getattr(args, flag) < 0:
            raise UsageError(f"--{flag.replace('_', '-')} must not be negative")
    from ._studios import check_machine

    args.machine = check_machine(args.machine)

    async with contextlib.AsyncExitStack() as stack:
        if args.url:
            client = await ctx.client()
            where = client.base_url
        else:
            from ..emulator import Emulator

            config = demo_emulator_config(rate_limit=args.rate_limit, latency=args.latency)
            emu = await stack.enter_async_context(Emulator(seed=0, config=config))
            client = await ctx.client(
                base_url=emu.url,
                user_id=emu.user_id,
                api_key=emu.api_key,
                credentials_path=None,
                teamspace=f"{emu.org_name}/{emu.teamspace_name}",
            )
            where = f"the built-in emulator at {emu.url}"
        ctx.err(
            f"aiolightning demo against {where}: {args.studios} studios, {args.jobs} jobs, "
            f"{args.size_mib} MiB file"
        )
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aiolightning-demo-")))
        tour = _Tour(ctx, client)
        started = time.perf_counter()
        await _run(tour, args, tmp)
        wall = time.perf_counter() - started
    _summary(ctx, tour, wall)
    if tour.problems:
        raise OperationFailed("demo finished with failures: " + "; ".join(tour.problems))
    return 0


async def _run(tour: _Tour, args: Any, tmp: Path) -> None:
    from ..fanout import map_outcomes
    from ..resources.jobs import JobRequest, JobStatus
    from ._jobs import submit_jobs, watch_jobs
    from ._storage import download_file, remove_remote, upload_file
    from ._studios import start_studios, stop_studios

    ctx, client = tour.ctx, tour.client
    run = secrets.token_hex(3)
    studio_names = [f"demo-{run}-studio-{i}" for i in range(args.studios)]
    running: list[str] = []
    jobs: list[Any] = []
    remote = f"lit:///demo-{run}/data.bin"
    uploaded = False
    try:
        # 1. studios
        if studio_names:
            async with tour.phase("start studios") as r:
                r.items = len(studio_names)
                outcomes = await start_studios(ctx, studio_names, args.machine, create=True)
                tour.fail(r, outcomes)
                running = [o.item for o in outcomes if o.ok]

            async with tour.phase("run a command in each") as r:
                r.items = len(running)

                async def say_hello(name: str) -> None:
                    result = await client.studios.run(name, f"echo hello from {name}")
                    if not result.ok or name not in result.output:
                        raise OperationFailed(f"unexpected output {result.output!r}")

                async with ctx.progress("running commands", len(running)) as bar:
                    said = await map_outcomes(
                        say_hello,
                        running,
                        concurrency=64,
                        on_progress=lambda p: bar.update(done=p.done, failed=p.failed),
                    )
                tour.fail(r, said)

        # 2. jobs: a learning-rate sweep
        if args.jobs:
            requests = [
                JobRequest(
                    name=f"demo-{run}-job-{i}",
                    command=f"python train.py --lr {10 ** -(1 + i % 5):g} --seed {i}",
                    image=args.image,
                    machine=args.machine,
                )
                for i in range(args.jobs)
            ]
            async with tour.phase("submit jobs") as r:
                r.items = len(requests)
                submitted = await submit_jobs(ctx, requests)
                tour.fail(r, submitted)
                jobs = [o.value for o in submitted if o.ok]
            async with tour.phase("watch jobs finish") as r:
                r.items = len(jobs)
                final = await watch_jobs(ctx, jobs, timeout=600)
                r.failed = sum(1 for j in final.values() if j.status is not JobStatus.COMPLETED)

        # 3. storage: a big file up and down, verified
        if args.size_mib:
            size = args.size_mib * _MiB
            local = tmp / "data.bin"
            back = tmp / "data.back.bin"
            import anyio

            ctx.err(f"writing {args.size_mib} MiB of random bytes to a temporary file ...")
            digest = await anyio.to_thread.run_sync(_write_random_file, local, size)
            async with tour.phase("upload") as r:
                r.items, r.megabytes = 1, size / 1e6
                await upload_file(ctx, local, remote)
                uploaded = True
        if uploaded:
            async with tour.phase("download + sha256") as r:
                r.items, r.megabytes = 1, size / 1e6
                await download_file(ctx, remote, back)
                if await anyio.to_thread.run_sync(_sha256_of, back) != digest:
                    r.failed = 1
                    tour.problems.append("the downloaded file differs from the uploaded one")
    finally:
        # 4. clean up everything this run made (also after a failure)
        async with tour.phase("stop + delete all") as r:
            r.items = len(running) + len(jobs) + (1 if uploaded else 0)
            if running:
                tour.fail(r, await stop_studios(ctx, running, delete=True))
            leftovers = [n for n in studio_names if n not in set(running)]
            if leftovers:  # studios that did not start may still exist: best effort
                await client.studios.stop_many(leftovers, wait=False)
                await client.studios.delete_many(leftovers, missing_ok=True)
            if jobs:

                async def drop(job: Any) -> None:
                    await client.jobs.delete(job, missing_ok=True)

                async with ctx.progress("deleting jobs", len(jobs)) as bar:
                    dropped = await map_outcomes(
                        drop,
                        jobs,
                        concurrency=64,
                        on_progress=lambda p: bar.update(done=p.done, failed=p.failed),
                    )
                tour.fail(r, dropped)
            if uploaded:
                await remove_remote(ctx, remote)


def _summary(ctx: Context, tour: _Tour, wall: float) -> None:
    rows: list[dict[str, Any]] = []
    for r in tour.results:
        row = asdict(r)
        row["mb_per_s"] = round(r.mb_per_s, 1) if r.mb_per_s is not None else None
        row["seconds"] = round(r.seconds, 2)
        del row["megabytes"]
        rows.append(row)
    totals = {
        "wall_seconds": round(wall, 2),
        "requests": sum(r.requests for r in tour.results),
        "retries": sum(r.retries for r in tour.results),
        "throttles": sum(r.throttles for r in tour.results),
        "failures": sum(r.failed for r in tour.results),
    }
    if ctx.json:
        ctx.out.document({"phases": rows, "totals": totals, "problems": tour.problems})
        return
    for row in rows:
        row["mb/s"] = row.pop("mb_per_s")
    ctx.out.line()
    ctx.out.table(
        rows,
        ["phase", "items", "failed", "seconds", "requests", "retries", "throttles", "mb/s"],
    )
    ctx.out.line()
    ctx.out.line(
        f"total {format_duration(wall)}: {totals['requests']} requests, {totals['retries']} "
        f"retries, {totals['throttles']} throttled (429/503), {totals['failures']} failures"
    )
