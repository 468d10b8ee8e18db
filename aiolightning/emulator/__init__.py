"""A faithful local emulator of the Lightning AI REST API (aiohttp.web, in memory).

```
async with Emulator(seed=0, config=EmulatorConfig(...)) as emu:
    emu.url, emu.user_id, emu.api_key, emu.teamspace_id
    emu.config.faults.rate_limit = 50          # knobs are live
    emu.counters.snapshot()                    # what happened
with EmulatorThread() as emu: ...      # background thread, for synchronous code
with spawn_emulator() as emu: ...      # subprocess (its own core), for benchmarks
python -m aiolightning.emulator --port 8123 [--seed --latency ... --admin --json --tls]
```

The world it starts with (deterministic under the seed): user `emu-user` (`emu.user_id`,
`emu.api_key`), org `emu-org` owning teamspace `emu-teamspace` (`emu.teamspace_id`), the
user's own teamspace `personal`, another user's teamspace `emu-private` (403 for
`emu-user`), one AWS cloud account `lightning-public-prod` with every machine slug of
`lightning_sdk.Machine`. `emu.sdk_env()` gives the environment for the official SDK
(`LIGHTNING_TEAMSPACE=emu-org/emu-teamspace`).

Behaviour worth knowing:

* Studio commands run in a tiny deterministic shell (`_commands.py`): `echo`, `printf`,
  `true`, `false`, `exit N`, `sleep S` (simulated time), `pwd`, `whoami`, `hostname`,
  `printenv`, joined by `;`, `&&`, `||`; unknown commands print `sh: 1: NAME: not found`
  and exit 127.
* Jobs go pending → creating → running → complete|fail → completed|failed with durations
  from `Timings`; a job's spec env `EMULATOR_OUTCOME=fail|complete` overrides the outcome
  and `EMULATOR_RUNNING_SECONDS=<s>` its running time.
* Operations of the spec that are not emulated answer 501 (grpc code 12); unknown paths
  404; a known path with the wrong method 405. Errors carry `{code, message, details}`.
* Storage (`_storage.py`): presigned URLs expire after `faults.url_ttl`; incomplete
  multipart uploads expire after `faults.upload_ttl` (24 h, like an object store's lifecycle
  rule: the blobs API has no abort); `faults.redirect_downloads` answers blob GET/HEAD with a
  307 to a presigned URL on a second listener (`emu.storage_url`: another origin). Counters
  `storage:*` (`authorization_header_seen`, `uploads_expired`, `downloads_redirected`,
  `presigned_gets`, `urls_expired`, `signature_rejected`, ...).
* `tls=True` / `--tls` (the `tls` extra) serves both listeners over https with a CA made at
  start: `emu.ca_file` is its PEM file (`sdk_env()` sets `REQUESTS_CA_BUNDLE` to it).
* `/_emulator/counters` (GET, DELETE) and `/_emulator/config` (GET, PATCH) exist only with
  `EmulatorConfig(admin=True)` / `--admin`. Counter keys are listed on `Counters`.
"""

from __future__ import annotations

from ._config import Counters, EmulatorConfig, Faults, Timings
from ._server import Emulator, EmulatorThread, spawn_emulator


def main(argv: list[str] | None = None, prog: str = "python -m aiolightning.emulator") -> int:
    """Run the emulator command (`python -m aiolightning.emulator`; ``prog`` names it)."""
    from ._cli import main as _main

    return _main(argv, prog)


__all__ = [
    "Counters",
    "Emulator",
    "EmulatorConfig",
    "EmulatorThread",
    "Faults",
    "Timings",
    "main",
    "spawn_emulator",
]
