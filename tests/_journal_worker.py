"""A bulk run with a journal, in a process of its own (the crash tests kill it).

    python tests/_journal_worker.py URL USER KEY TEAMSPACE JOURNAL WHAT N [DIR]

WHAT: ``jobs`` (submit_many of job-0..N-1), ``studios`` (start_many of studio-0..N-1) or
``upload`` (upload_many of DIR/f<i>.bin to up/f<i>.bin). Prints one JSON line: how many
outcomes, how many ok, and the errors' texts."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aiolightning import AsyncLightning, JobRequest, RetryPolicy


async def main(argv: list[str]) -> None:
    url, user, key, teamspace, journal, what, n_text = argv[:7]
    n = int(n_text)
    retry = RetryPolicy(max_attempts=4, base=0.02, max_wait=0.2)
    async with AsyncLightning(
        url, user_id=user, api_key=key, teamspace=teamspace, retry=retry
    ) as client:
        if what == "jobs":
            reqs = [JobRequest(f"job-{i}", f"echo {i}", image="python:3.11") for i in range(n)]
            outs = await client.jobs.submit_many(reqs, journal=journal, concurrency=16)
        elif what == "studios":
            names = [f"studio-{i}" for i in range(n)]
            outs = await client.studios.start_many(
                names, journal=journal, concurrency=32, wait=False
            )
        else:
            folder = Path(argv[7])
            pairs = [(folder / f"f{i}.bin", f"up/f{i}.bin") for i in range(n)]
            outs = await client.storage.upload_many(pairs, journal=journal, concurrency=8)
    errors = [repr(o.error) for o in outs if not o.ok]
    print(json.dumps({"outcomes": len(outs), "ok": len(outs) - len(errors), "errors": errors[:5]}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
