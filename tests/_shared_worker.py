"""A worker process of the shared-limiter tests: N GETs against the emulator, then a report.

``python _shared_worker.py '<json spec>'``: prints "ready", waits for a line on stdin, makes
``calls`` calls of ``GET /v1/auth/user`` (64 at a time) with ``LimiterConfig(shared=...)``,
prints one JSON line: calls ok, requests sent, Redis grants and round trips.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from aiolightning import AsyncLightning, LimiterConfig
from aiolightning.fanout import map_outcomes


async def main(spec: dict[str, str | int | float]) -> None:
    limits = LimiterConfig(shared=str(spec["redis"]), shared_key=str(spec["key"]),
                           rate=float(spec["rate"]))  # fmt: skip
    async with AsyncLightning(
        str(spec["url"]), user_id=str(spec["user_id"]), api_key=str(spec["api_key"]),
        limits=limits,
    ) as client:  # fmt: skip
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        calls = int(spec["calls"])
        outs = await map_outcomes(
            lambda _: client.api.auth.get_user(), range(calls), concurrency=64
        )
        shared = client.limiter.shared
        assert shared is not None
        report = {
            "ok": sum(o.ok for o in outs),
            "sent": client.limiter.stats("read").requests,
            "grants": shared.grants,
            "round_trips": shared.round_trips,
        }
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    logging.getLogger("aiolightning").setLevel(logging.ERROR)
    asyncio.run(main(json.loads(sys.argv[1])))
