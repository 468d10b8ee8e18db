"""Start a fleet of studios, run a command in each, then stop and delete them.

    python examples/fleet_start_stop.py                  # against a built-in emulator
    python examples/fleet_start_stop.py --count 100      # a bigger fleet
    python examples/fleet_start_stop.py --url https://lightning.ai --teamspace my-team
        # the real service; credentials from LIGHTNING_USER_ID / LIGHTNING_API_KEY
        # or ~/.lightning/credentials.json

Every bulk call returns one Outcome per studio (value or error): one studio failing never
stops or loses the others, and the client's limiter keeps the request rate where the
service accepts it (backing off together on HTTP 429).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import AsyncIterator

from aiolightning import AsyncLightning, Studio, map_outcomes
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
    names = [f"{args.prefix}-{i}" for i in range(args.count)]
    async with connect(args.url, args.teamspace) as client:
        t0 = time.perf_counter()

        # 1. create the studios (exist_ok: re-running the script reuses them)
        created = await client.studios.create_many(names, exist_ok=True)
        studios = [o.result() for o in created if o.ok]

        # 2. start them all and wait until each is running; print progress as it goes
        started = await client.studios.start_many(
            studios,
            args.machine,
            on_progress=lambda p: (
                print(f"started {p.done}/{p.total} ({p.failed} failed)")
                if p.done % 10 == 0 or p.done == p.total
                else None
            ),
        )
        running = [o.item for o in started if o.ok]
        for o in started:
            if not o.ok:
                print(f"  {o.item}: {o.error}")

        # 3. run a command in each running studio, 64 at a time
        async def hostname(studio: Studio | str) -> str:
            result = await client.studios.run(studio, "echo $HOSTNAME", check=True)
            return result.output.strip()

        outputs = await map_outcomes(hostname, running, concurrency=64)
        print(f"ran a command in {sum(o.ok for o in outputs)} studios")

        # 4. stop and delete everything we started
        await client.studios.stop_many(running)
        deleted = await client.studios.delete_many(studios)
        print(f"deleted {sum(o.ok for o in deleted)} studios")

        stats = client.limiter.stats()
        requests = sum(s.requests for s in stats.values())
        throttles = sum(s.throttles for s in stats.values())
        print(
            f"{len(running)}/{len(names)} studios ran, in {time.perf_counter() - t0:.1f} s "
            f"({requests} requests, {throttles} throttled)"
        )
        return 0 if len(running) == len(names) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="service URL (default: start a local emulator)")
    parser.add_argument("--teamspace", help="teamspace name (default: LIGHTNING_TEAMSPACE)")
    parser.add_argument("--count", type=int, default=20, help="studios to start")
    parser.add_argument("--prefix", default="fleet", help="studio name prefix")
    parser.add_argument("--machine", default="cpu-4", help="machine slug")
    # like the aiolightning command: a failure is one line (no credentials: exit code 3)
    raise SystemExit(run_script(main(parser.parse_args())))
