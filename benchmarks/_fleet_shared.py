"""bench_fleet.py scenario (d): N processes sharing one server quota, shared vs independent.

N worker processes (4 and 16) each make ``--fleet-calls`` GETs against one emulator that
allows R requests/s per credential (all workers use the same credential):

* "shared": ``LimiterConfig(shared=<redis>, rate=R)``: one token bucket and one pause gate
  in a ``redis-server`` this script starts on a free loopback port;
* "independent": each process's own default (adaptive) limiter, as today.

Each worker makes one call before the common start (session, imports, Redis connection),
so that the runs time the fleet, not the start of a Python process.

Steady runs measure the aggregate rate achieved (ok calls / wall, against R) and the share
of all requests answered 429 (the emulator's counters). Probe runs (about 8 s each) route
worker 0 through a small proxy that answers one of its requests ``429`` with
``Retry-After: 2`` after 4 s; the other workers' requests sent in the 2 s that follow are
compared with their rate in the 3 s before. Targets for "shared": >= 95 % of R, <= 0.5 %
answered 429, others' rate during the pause <= 10 % of before. Also printed: Redis round
trips per request (grant batches + pauses + the first PING, over requests sent).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import ClientSession, web

WORKER = r"""
import asyncio, json, logging, sys, time
import aiohttp
from aiolightning import AsyncLightning, LimiterConfig
from aiolightning.fanout import map_outcomes

spec = json.loads(sys.argv[1])
logging.getLogger("aiolightning").setLevel(logging.ERROR)  # retries are expected here
events = []  # (sent, answered, status), wall-clock seconds

async def on_end(session, ctx, params):
    events.append((ctx.t0, time.time(), params.response.status))

async def on_start(session, ctx, params):
    ctx.t0 = time.time()

async def main():
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    if spec["mode"] == "shared":
        limits = LimiterConfig(shared=spec["redis"], shared_key=spec["key"], rate=spec["rate"])
    else:
        limits = None
    client = AsyncLightning(spec["url"], user_id=spec["user_id"], api_key=spec["api_key"],
                            limits=limits, trace_configs=[trace])
    async with client:
        await client.api.auth.get_user()  # warm up: session, imports, the Redis connection
        events.clear()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        outs = await map_outcomes(lambda _: client.api.auth.get_user(), range(spec["calls"]),
                                  concurrency=64)
        shared = client.limiter.shared
        print(json.dumps({
            "ok": sum(o.ok for o in outs),
            "events": events,
            "round_trips": shared.round_trips if shared else 0,
        }), flush=True)

asyncio.run(main())
"""


@contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away ``redis-server`` on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("(d) needs redis-server on PATH (Debian: apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = secrets.token_hex(8)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", tmp, "--requirepass", password],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(500):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.02)
            yield f"redis://:{password}@127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait()


class Injector:
    """A pass-through proxy to the emulator that answers one request 429 when armed."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.armed = False
        self.fired_at: float | None = None
        self.session: ClientSession | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.armed:
            self.armed = False
            self.fired_at = time.time()
            return web.Response(status=429, headers={"Retry-After": "2"}, text="{}")
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with self.session.request(
            request.method, self.upstream + request.path_qs, headers=headers,
            data=await request.read(), allow_redirects=False,
        ) as r:  # fmt: skip
            body = await r.read()
            keep = {"Content-Type", "Retry-After"}
            return web.Response(
                status=r.status,
                body=body,
                headers={k: v for k, v in r.headers.items() if k in keep},
            )

    async def __aenter__(self) -> Injector:
        self.session = ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None and self.session is not None
        await self.runner.cleanup()
        await self.session.close()


async def run_fleet(
    emu: Any, admin: Any, spec: dict[str, Any], n: int, calls: int, injector: Injector | None
) -> dict[str, Any]:
    """Start n workers, let them go together, (arm the injector after 4 s); their reports."""
    procs = []
    for i in range(n):
        url = injector.url if (injector is not None and i == 0) else emu.url
        worker = {**spec, "url": url, "calls": calls, "user_id": emu.user_id,
                  "api_key": emu.api_key}  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            json.dumps(worker),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        procs.append(proc)
    for p in procs:
        assert p.stdout is not None
        line = await p.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"fleet worker failed to start: {line!r}")
    await asyncio.sleep(2.0)  # the server's bucket refills after the start-up requests
    before = await admin.counters()
    go = time.time()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        await p.stdin.drain()
    if injector is not None:
        await asyncio.sleep(4.0)
        injector.armed = True
    outs = [await p.communicate() for p in procs]
    after = await admin.counters()
    reports = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    return {"reports": reports, "go": go, "before": before, "after": after}


def steady_summary(res: dict[str, Any], rate: float) -> dict[str, Any]:
    events = [e for r in res["reports"] for e in r["events"]]
    ok = sum(r["ok"] for r in res["reports"])
    wall = max(e[1] for e in events) - res["go"]
    sent = res["after"].get("requests", 0) - res["before"].get("requests", 0)
    throttled = res["after"].get("responses:429", 0) - res["before"].get("responses:429", 0)
    trips = sum(r["round_trips"] for r in res["reports"])
    per_s = [0] * (int(wall) + 1)
    for e in events:
        per_s[min(int(e[0] - res["go"]), len(per_s) - 1)] += 1
    print("requests sent per second:", " ".join(map(str, per_s)))
    return {
        "ok": ok, "wall": wall, "sent": sent, "throttled": throttled,
        "pct_rate": 100.0 * ok / wall / rate, "pct_429": 100.0 * throttled / max(1, sent),
        "trips_per_request": trips / max(1, len(events)),
    }  # fmt: skip


def probe_summary(res: dict[str, Any], fired: float) -> dict[str, Any]:
    others = [e[0] for r in res["reports"][1:] for e in r["events"]]
    before = sum(1 for t in others if fired - 3.0 <= t < fired) / 3.0
    during = sum(1 for t in others if fired <= t < fired + 2.0) / 2.0
    return {"before": before, "during": during, "pct": 100.0 * during / max(before, 1e-9)}


async def scenario_d(emu: Any, admin: Any, args: Any, rows: list[Any], row: Any) -> None:
    """Append the (d) rows; print the target checks."""
    rate, calls = args.rate, args.fleet_calls
    await admin.patch({"faults": {"rate_limit": rate}})
    checks: list[str] = []
    with redis_server() as redis_url:
        for n in args.fleet_procs:
            for mode in ("shared", "independent"):
                spec = {"mode": mode, "redis": redis_url, "rate": rate,
                        "key": f"bench-{n}-{mode}-{time.time()}"}  # fmt: skip
                s = steady_summary(await run_fleet(emu, admin, spec, n, calls, None), rate)
                probe_calls = max(1, int(rate * 8 / n))
                spec["key"] += "-probe"
                async with Injector(emu.url) as inj:
                    res = await run_fleet(emu, admin, spec, n, probe_calls, inj)
                assert inj.fired_at is not None, "the injected 429 never fired"
                p = probe_summary(res, inj.fired_at)
                label = "shared Redis limiter" if mode == "shared" else "independent (adaptive)"
                trips = (
                    f"; {s['trips_per_request']:.2f} Redis round trips/request"
                    if mode == "shared"
                    else ""
                )
                rows.append(row(
                    f"(d) {n} procs x {calls} @ {rate:g}/s", label, n * calls, s["wall"], s["sent"],
                    f"{s['pct_rate']:.1f}% of quota; 429s: {s['throttled']} = {s['pct_429']:.2f}% "
                    f"of requests; others during a Retry-After: 2 -> {p['during']:.1f} req/s = "
                    f"{p['pct']:.0f}% of before ({p['before']:.1f}){trips}",
                ))  # fmt: skip
                if mode == "shared":
                    ok = s["pct_rate"] >= 95 and s["pct_429"] <= 0.5 and p["pct"] <= 10
                    checks.append(
                        f"(d) {n} processes, shared: {s['pct_rate']:.1f}% of quota (>= 95), "
                        f"{s['pct_429']:.2f}% 429 (<= 0.5), others at {p['pct']:.0f}% during the "
                        f"pause (<= 10) -> {'meets' if ok else 'misses'} the targets"
                    )
    await admin.patch({"faults": {"rate_limit": None}})
    print("\n".join(checks))
