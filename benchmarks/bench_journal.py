"""Crash sweep of the run journal: a bulk submit killed at each named boundary, then rerun.

For each boundary of the test-only crash switch (``AIOLIGHTNING_TEST_CRASH_AT``, see
``aiolightning/_crash.py``) and for a plain ``kill -9`` at half-way, a worker process runs
``client.jobs.submit_many`` of N jobs (default 10,000) with ``journal=`` against a fresh
emulator and dies there; a second worker reruns the same call with the same journal. The
table counts the jobs the emulator holds afterwards: duplicates (a name more than once) and
lost (a name missing) must both be 0.

    python benchmarks/bench_journal.py             # 10,000 items per boundary (~3 min)
    python benchmarks/bench_journal.py --items 2000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from aiolightning import AsyncLightning, JobRequest
from aiolightning._crash import BOUNDARIES, CRASH_ENV
from aiolightning.emulator import spawn_emulator
from aiolightning.emulator._config import EmulatorConfig, Faults

CREATE = "requests:POST /v1/projects/{projectId}/jobs"


async def worker(url: str, user: str, key: str, teamspace: str, journal: str, n: int) -> None:
    reqs = [JobRequest(f"job-{i}", "echo", image="x") for i in range(n)]
    async with AsyncLightning(url, user_id=user, api_key=key, teamspace=teamspace) as client:
        outs = await client.jobs.submit_many(reqs, journal=journal)
    print(json.dumps({"ok": sum(o.ok for o in outs), "outcomes": len(outs)}))


def spawn(emu: Any, journal: str, n: int, crash: str | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash:
        env[CRASH_ENV] = crash
    args = [emu.url, emu.user_id, emu.api_key, emu.teamspace_name, journal, str(n)]
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


async def counters(url: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/_emulator/counters") as r:
        data: dict[str, int] = await r.json()
        return data


async def one_boundary(boundary: str, n: int, tmp: str) -> dict[str, Any]:
    config = EmulatorConfig(admin=True, faults=Faults(latency=0.002))
    with spawn_emulator(config=config) as emu:
        journal = str(Path(tmp) / f"{boundary}.db")
        if boundary == "kill -9":
            proc = spawn(emu, journal, n, None)
            while (await counters(emu.url)).get(CREATE, 0) < n // 2 and proc.poll() is None:  # noqa: ASYNC110 (polling another process)
                await asyncio.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
        else:
            at = 20 if boundary == "in-commit" else n // 2
            proc = spawn(emu, journal, n, f"{boundary}:{at}")
        proc.communicate()
        crashed_code = proc.returncode
        seen = (await counters(emu.url)).get(CREATE, 0)
        t0 = time.perf_counter()
        out, err = spawn(emu, journal, n, None).communicate()
        rerun = time.perf_counter() - t0
        result = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"error": err}
        async with AsyncLightning(
            emu.url, user_id=emu.user_id, api_key=emu.api_key, teamspace=emu.teamspace_name
        ) as client:
            names = collections.Counter([j.name async for j in client.jobs.list(page_size=1000)])
    expected = {f"job-{i}" for i in range(n)}
    return {
        "boundary": boundary,
        "items": n,
        "exit": crashed_code,
        "before": seen,
        "duplicates": sum(c - 1 for c in names.values() if c > 1),
        "lost": len(expected - set(names)),
        "extra": len(set(names) - expected),
        "rerun_ok": result.get("ok"),
        "rerun_s": rerun,
    }


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--items", type=int, default=10_000)
    args = p.parse_args()
    rows = []
    header = (
        f"{'boundary':<14} {'items':>6} {'exit':>5} {'created before':>15} "
        f"{'duplicates':>10} {'lost':>5} {'rerun ok':>9} {'rerun s':>8}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for boundary in (*BOUNDARIES, "kill -9"):
            r = await one_boundary(boundary, args.items, tmp)
            rows.append(r)
            print(
                f"{r['boundary']:<14} {r['items']:>6} {r['exit']:>5} {r['before']:>15} "
                f"{r['duplicates']:>10} {r['lost']:>5} {r['rerun_ok']!s:>9} {r['rerun_s']:>8.1f}",
                flush=True,
            )
    bad = [r for r in rows if r["duplicates"] or r["lost"] or r["extra"]]
    print(f"\nevery item exactly once after a rerun: {'yes' if not bad else 'NO: ' + str(bad)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        a = sys.argv[2:]
        asyncio.run(worker(a[0], a[1], a[2], a[3], a[4], int(a[5])))
    else:
        asyncio.run(main())
