"""A hyper-parameter sweep: one job per (learning rate, batch size), watched until all finish.

    python examples/job_sweep.py                   # against a built-in emulator
    python examples/job_sweep.py --url https://lightning.ai --teamspace my-team \\
        --image ghcr.io/me/train:latest           # the real service (credentials from env)

``submit_many`` sends the submissions concurrently (a retried submission never creates a
second job); ``watch`` polls every job with as few requests as possible (one paged list call
instead of one GET per job when that is cheaper) and yields each status change.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
from collections.abc import AsyncIterator

from aiolightning import AsyncLightning, JobRequest, JobStatus
from aiolightning.cli import run_script


@contextlib.asynccontextmanager
async def connect(url: str | None, teamspace: str | None) -> AsyncIterator[AsyncLightning]:
    """A client for ``url``; without one, for an emulator started just for this script."""
    if url:
        async with AsyncLightning(url, teamspace=teamspace) as client:
            yield client
        return
    from aiolightning.emulator import Emulator

    async with Emulator() as emu:
        async with AsyncLightning(
            emu.url, user_id=emu.user_id, api_key=emu.api_key, teamspace=emu.teamspace_name
        ) as client:
            yield client


async def main(args: argparse.Namespace) -> int:
    grid = list(itertools.product([1e-2, 3e-3, 1e-3, 3e-4], [32, 64, 128]))
    requests = [
        JobRequest(
            name=f"{args.prefix}-lr{lr:g}-bs{bs}",
            command=f"python train.py --lr {lr:g} --batch-size {bs}",
            image=args.image,
            machine=args.machine,
            env={"WANDB_MODE": "offline"},
        )
        for lr, bs in grid
    ]
    async with connect(args.url, args.teamspace) as client:
        # 1. submit the whole grid; each Outcome holds the Job or the error of that request
        outcomes = await client.jobs.submit_many(requests)
        jobs = [o.result() for o in outcomes if o.ok]
        for o in outcomes:
            if not o.ok:
                print(f"could not submit {o.item.name}: {o.error}")
        print(f"submitted {len(jobs)} jobs")

        # 2. watch them: one JobChange per status change, until every job is terminal
        final = {}
        async for change in client.jobs.watch(jobs, timeout=args.timeout):
            print(f"  {change.job.name:<24} {change.status.value}")
            if change.status.is_terminal:
                final[change.job.id] = change.job

        # 3. summary, and the last log lines of one job
        failed = [j for j in final.values() if j.status is not JobStatus.COMPLETED]
        print(f"{len(final) - len(failed)} completed, {len(failed)} not completed")
        if jobs:
            lines = [line.message async for line in client.jobs.logs(jobs[0])]
            print(f"last log lines of {jobs[0].name}: {lines[-2:]}")
        return 0 if not failed and len(jobs) == len(requests) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="service URL (default: start a local emulator)")
    parser.add_argument("--teamspace", help="teamspace name (default: LIGHTNING_TEAMSPACE)")
    parser.add_argument("--image", default="python:3.12-slim", help="container image")
    parser.add_argument("--machine", default="cpu-4", help="machine slug")
    parser.add_argument("--prefix", default="sweep", help="job name prefix")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait")
    # like the aiolightning command: a failure is one line (no credentials: exit code 3)
    raise SystemExit(run_script(main(parser.parse_args())))
