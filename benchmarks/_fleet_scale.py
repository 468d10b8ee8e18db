"""The scale table of bench_fleet.py: studio and job fleets as their users grow them.

Each (fleet, size) runs in a fresh client process (this module as a script), so its peak RSS
is its own; the emulator runs in yet another process (``spawn_emulator``) with 20 ms of
latency per request and 2 s studio boots. Request counts come from the emulator's counters;
CPU seconds are the client process's own (``time.process_time``); the emulator's CPU
seconds (from /proc) show where the rest of the time goes.

Studios (500, 5,000): create_many, start_many (wall also as x the floor of boot + two round
trips), stop_many, delete_many, all at default settings.
Studios created and deleted only (``--scale-create-delete``, e.g. 20,000): delete_many's
CPU per studio as the fleet grows.
Jobs (10,000, 100,000; 1 % run for an hour, the rest finish at once): submit_many; one
refresh (``poll`` of every job: a full walk); one watch round once 99 % are finished (what
a round of ``watch`` sends then); a whole ``watch`` over the fleet (its first round is a full
walk; the unfinished 1 % are stopped before it starts and take 5 s to stop).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import subprocess
import sys
import time
from typing import Any

import aiohttp

from aiolightning.emulator import spawn_emulator
from aiolightning.emulator._config import EmulatorConfig, Faults, Timings
from aiolightning.fanout import map_outcomes
from aiolightning.resources.jobs import Job, JobRequest

LATENCY = 0.02
BOOT = 2.0
FLOOR = BOOT + 2 * LATENCY


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) the process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def counters(url: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/_emulator/counters") as r:
        data: dict[str, int] = await r.json()
        return data


class Meter:
    """Measures one phase: wall, requests, client CPU, RSS growth per item, peak RSS."""

    def __init__(self, emu: Any, fleet: str, n: int, rows: list[dict[str, Any]]) -> None:
        self.url, self.pid, self.fleet, self.n, self.rows = emu.url, emu.proc.pid, fleet, n, rows
        self.base_rss = rss_kib()

    async def __call__(self, phase: str, coro: Any, **extra: Any) -> Any:
        before = await counters(self.url)
        cpu0, emu0, t0 = time.process_time(), cpu_of(self.pid), time.perf_counter()
        result = await coro
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        emu_cpu = cpu_of(self.pid) - emu0
        after = await counters(self.url)
        reqs = after.get("requests", 0) - before.get("requests", 0)
        self.rows.append(
            {
                "fleet": self.fleet, "n": self.n, "phase": phase, "wall": wall,
                "requests": reqs, "cpu": cpu, "emu_cpu": emu_cpu, "rss_per_item": (rss_kib() - self.base_rss) / self.n,
                "peak_mib": peak_kib() / 1024, **extra,
            }
        )  # fmt: skip
        return result


async def studios(n: int, *, lifecycle: bool = True) -> list[dict[str, Any]]:
    """Create, start, stop and delete n studios (``lifecycle=False``: create and delete)."""
    config = EmulatorConfig(
        faults=Faults(latency=LATENCY), timings=Timings(studio_start=BOOT), admin=True
    )
    rows: list[dict[str, Any]] = []
    with spawn_emulator(config=config) as emu:
        async with emu.client() as client:
            await client.teamspaces.resolve(None)
            meter = Meter(emu, "studios", n, rows)
            names = [f"s-{i}" for i in range(n)]
            outs = await meter("create", client.studios.create_many(names))
            assert all(o.ok for o in outs), [o.error for o in outs if not o.ok][:3]
            if lifecycle:
                outs = await meter("start", client.studios.start_many(names))
                assert all(o.ok for o in outs), [o.error for o in outs if not o.ok][:3]
                rows[-1]["floor"] = FLOOR
                outs = await meter("stop", client.studios.stop_many(names))
                assert all(o.ok for o in outs), [o.error for o in outs if not o.ok][:3]
            outs = await meter("delete", client.studios.delete_many(names))
            assert all(o.ok for o in outs), [o.error for o in outs if not o.ok][:3]
    return rows


async def jobs(n: int) -> list[dict[str, Any]]:
    timings = Timings(
        job_pending=0.2, job_creating=0.2, job_finishing=0.2, job_running=0.0, job_stop=5.0
    )
    config = EmulatorConfig(faults=Faults(latency=LATENCY), timings=timings, admin=True)
    rows: list[dict[str, Any]] = []
    with spawn_emulator(config=config) as emu:
        async with emu.client() as client:
            await client.teamspaces.resolve(None)
            meter = Meter(emu, "jobs", n, rows)
            reqs = (
                JobRequest(
                    name=f"j-{i}", command="true", image="busybox",
                    env={"EMULATOR_RUNNING_SECONDS": "3600" if i % 100 == 0 else "0"},
                )
                for i in range(n)
            )  # fmt: skip
            outs = await meter("submit", client.jobs.submit_many(reqs))
            fleet: list[Job] = [o.result() for o in outs]
            del outs
            polled = await meter("refresh", client.jobs.poll(fleet))
            while sum(j.status.is_terminal for j in polled.values()) < n - n // 100:
                await asyncio.sleep(0.5)
                polled = await client.jobs.poll(fleet)
            active = [j for j in polled.values() if not j.status.is_terminal]
            del polled
            full_walk = rows[-1]["requests"]
            await meter(
                "watch round (1 % active)",
                client.jobs._poll_many(active, None, 64, active=True),
                full_walk=full_walk,
            )
            stops = await map_outcomes(
                lambda j: client.jobs.stop(j, wait=False), active, concurrency=64
            )
            assert all(o.ok for o in stops)

            async def watch() -> int:
                changes = 0
                async for _ in client.jobs.watch(fleet, timeout=600):
                    changes += 1
                return changes

            await meter("watch (to the end)", watch())
    return rows


def run_one(fleet: str, n: int) -> list[dict[str, Any]]:
    """Run one (fleet, size) in a fresh client process; its rows."""
    out = subprocess.run(
        [sys.executable, __file__, fleet, str(n)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{fleet} {n} failed:\n{out.stderr[-3000:]}")
    rows: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return rows


def table(runs: list[list[dict[str, Any]]]) -> None:
    """Print the table: per row, the median of the runs and the range of wall times."""
    print(
        f"{'fleet':<8}{'items':>8}  {'phase':<26}{'wall s':>8}{'x floor':>9}{'req/item':>10}"
        f"{'CPU-s/1k':>10}{'emu CPU-s':>10}{'KiB/item':>10}{'peak MiB':>10}  walls of the runs"
    )
    for i, row in enumerate(runs[0]):
        same = [r[i] for r in runs]

        def med(key: str, same: list[dict[str, Any]] = same) -> float:
            values = sorted(float(r[key]) for r in same)
            return values[len(values) // 2]

        floor = f"{med('wall') / row['floor']:.2f}" if "floor" in row else ""
        walls = " ".join(f"{r['wall']:.2f}" for r in same)
        note = ""
        if "full_walk" in row:
            note = f"  ({med('requests'):.0f} pages vs {row['full_walk']} of a full walk)"
        print(
            f"{row['fleet']:<8}{row['n']:>8}  {row['phase']:<26}{med('wall'):>8.2f}{floor:>9}"
            f"{med('requests') / row['n']:>10.3f}{1000 * med('cpu') / row['n']:>10.4f}"
            f"{med('emu_cpu'):>10.2f}"
            f"{med('rss_per_item'):>10.2f}{med('peak_mib'):>10.0f}  {walls}{note}"
        )


def main(sizes: dict[str, list[int]], runs: int) -> None:
    print(
        f"scale table: emulator in its own process, {LATENCY * 1000:g} ms latency, {BOOT:g} s "
        f"boots (start floor {FLOOR:.2f} s); {runs} run(s) per size; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    for fleet, ns in sizes.items():
        for n in ns:
            results = [run_one(fleet, n) for _ in range(runs)]
            table(results)
            print(f"  load average now {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    logging.getLogger("aiolightning").setLevel(logging.ERROR)
    kind, size = sys.argv[1], int(sys.argv[2])
    runs = {
        "studios": lambda: studios(size),
        "studios-create-delete": lambda: studios(size, lifecycle=False),
        "jobs": lambda: jobs(size),
    }
    result = asyncio.run(runs[kind]())
    print(json.dumps(result))
