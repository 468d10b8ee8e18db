"""bench_fleet (f): what the run journal costs a bulk call.

``submit_many`` of N jobs (default 1,000) at the emulator's latency (20 ms), without and with
``journal=`` (a fresh SQLite file per run), alternated over a few rounds; the median of each
is compared (the order alternates between rounds: the machine's load drifts). Target: with the journal <= 5 % slower.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiolightning.resources.jobs import JobRequest

ROUNDS = 5


async def scenario_f(emu: Any, admin: Any, args: Any, rows: list[Any], row: Any) -> None:
    n = args.journal_jobs
    walls: dict[str, list[float]] = {"without journal": [], "with journal": []}
    cpus: dict[str, list[float]] = {label: [] for label in walls}
    requests: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with emu.client(teamspace=f"{emu.org_name}/{emu.teamspace_name}") as client:
            for r in range(ROUNDS):
                order = list(walls) if r % 2 == 0 else list(reversed(walls))
                for label in order:
                    journal = Path(tmp) / f"run-{r}.db" if label == "with journal" else None
                    reqs = [
                        JobRequest(f"e{r}-{label[:4]}-{i}", "echo", image="x") for i in range(n)
                    ]
                    before = await admin.counters()
                    t0, c0 = time.perf_counter(), time.process_time()
                    outs = await client.jobs.submit_many(reqs, journal=journal)
                    walls[label].append(time.perf_counter() - t0)
                    cpus[label].append(time.process_time() - c0)
                    after = await admin.counters()
                    requests[label] = after.get("requests", 0) - before.get("requests", 0)
                    assert all(o.ok for o in outs), [o.error for o in outs if not o.ok][:3]
    median = {label: statistics.median(w) for label, w in walls.items()}
    for label, wall in median.items():
        spread = ", ".join(f"{w:.2f}" for w in walls[label])
        rows.append(
            row(f"(f) submit_many {label}", "aiolightning", n, wall, requests[label],
                note=f"median of {ROUNDS}: {spread}; client CPU "
                f"{statistics.median(cpus[label]) / n * 1e6:.0f} us/job")
        )  # fmt: skip
    cost = median["with journal"] / median["without journal"] - 1
    print(
        f"(f) journal cost: {cost * 100:+.1f} % wall time for submit_many of {n} jobs "
        f"(target <= 5 %) -> {'meets' if cost <= 0.05 else 'misses'} the target"
    )
