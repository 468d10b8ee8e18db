"""The scale table of bench_fleet.py: studio and job fleets as their users grow them.

Each (fleet, size) runs in a fresh client process (this module as a script), so its peak RSS
is its own; the emulator runs in yet another process (``spawn_emulator``) with 20 ms of
latency per request and 2 s studio boots. Request counts come from the emulator's counters;
CPU seconds are the client process's own (``time.process_time``); the emulator's CPU
seconds (from /proc) show where the rest of the time goes.

Studios (500, 5,000): create_many, start_many (wall also as x the floor of boot + two round
trips), stop_many, delete_many, all at default settings. Under the start row, where its time
went (from an aiohttp ``TraceConfig`` on the client's session, ~10 us a request): the listing
walk before the first start, the starts' send window (first to last sent, their rate and
round trips: a round trip far above the 20 ms latency means queueing at the client's
limiter or pool, or a busy emulator), the limiter's write cap against its max (the pool),
the status board's list calls, and the time from the last start's answer to the last
studio seen running (the 2 s boot plus the board's detection lag); CPU of both processes
against the wall says whether two cores were the limit.
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


class Timeline:
    """When each request began and ended (``trace_configs=[timeline.config]``)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.calls: list[tuple[float, float, str, str]] = []  # begin, end, method, path
        self.config = aiohttp.TraceConfig()
        self.config.on_request_start.append(self._start)
        self.config.on_request_end.append(self._end)

    async def _start(self, _s: Any, ctx: Any, params: Any) -> None:
        ctx.begin = time.perf_counter()

    async def _end(self, _s: Any, ctx: Any, params: Any) -> None:
        self.calls.append((ctx.begin, time.perf_counter(), params.method, params.url.path))

    def start_breakdown(self, t0: float, t1: float, client: Any) -> dict[str, float]:
        """Where the time of the start_many that ran from t0 to t1 went."""
        calls = [c for c in self.calls if c[0] >= t0 and c[1] <= t1]
        starts = [c for c in calls if c[2] == "POST" and c[3].endswith("/start")]
        lists = [c for c in calls if c[2] == "GET" and c[3].endswith("/cloudspaces")]
        first = min(c[0] for c in starts)
        trips = sorted(c[1] - c[0] for c in starts)
        walk = [c for c in lists if c[0] < first]
        board = [c for c in lists if c[0] >= first]
        st = client.limiter.stats("write")
        return {
            "first_sent": first - t0, "last_sent": max(c[0] for c in starts) - t0,
            "last_answered": max(c[1] for c in starts) - t0, "trip_p50": trips[len(trips) // 2],
            "trip_max": trips[-1], "walk_pages": len(walk), "board_pages": len(board),
            "last_board_begin": max((c[0] for c in board), default=t1) - t0,
            "cap": st.cap, "cap_max": st.max, "end": t1 - t0,
        }  # fmt: skip


def print_breakdown(b: dict[str, float], cpu: float, emu_cpu: float) -> None:
    n_sent = b["last_sent"] - b["first_sent"]
    print(
        f"    where the start's {b['end']:.2f} s went: {b['first_sent']:.2f} s to the first "
        f"start (a walk of {b['walk_pages']:.0f} listing pages); starts sent over "
        f"{n_sent:.2f} s (to {b['last_sent']:.2f} s), round trip p50 "
        f"{1000 * b['trip_p50']:.0f} ms, max {1000 * b['trip_max']:.0f} ms; write cap "
        f"{b['cap']:.0f} of max {b['cap_max']:.0f}\n"
        f"    last start answered at {b['last_answered']:.2f} s, last studio seen running "
        f"{b['end'] - b['last_answered']:.2f} s later (boot {BOOT:g} s + board lag "
        f"{b['end'] - b['last_answered'] - BOOT:.2f} s); board: {b['board_pages']:.0f} list "
        f"calls, the last begun at {b['last_board_begin']:.2f} s; CPU: client {cpu:.2f} s, "
        f"emulator {emu_cpu:.2f} s over {b['end']:.2f} s of wall on 2 shared cores"
    )


async def studios(n: int, *, lifecycle: bool = True) -> list[dict[str, Any]]:
    """Create, start, stop and delete n studios (``lifecycle=False``: create and delete)."""
    config = EmulatorConfig(
        faults=Faults(latency=LATENCY), timings=Timings(studio_start=BOOT), admin=True
    )
    rows: list[dict[str, Any]] = []
    timeline = Timeline()
    with spawn_emulator(config=config) as emu:
        async with emu.client(trace_configs=[timeline.config]) as client:
            await client.teamspaces.resolve(None)
            meter = Meter(emu, "studios", n, rows)
            names = [f"s-{i}" for i in range(n)]
            outs = await meter("create", client.studios.create_many(names))
            assert all(o.ok for o in outs), [o.error for o in outs if not o.ok][:3]
            if lifecycle:
                t0 = time.perf_counter()
                outs = await meter("start", client.studios.start_many(names))
                t1 = time.perf_counter()
                assert all(o.ok for o in outs), [o.error for o in outs if not o.ok][:3]
                rows[-1]["floor"] = FLOOR
                rows[-1]["breakdown"] = timeline.start_breakdown(t0, t1, client)
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
        if "breakdown" in row:  # of the run whose wall is the median
            run = sorted(same, key=lambda r: float(r["wall"]))[len(same) // 2]
            print_breakdown(run["breakdown"], run["cpu"], run["emu_cpu"])


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
