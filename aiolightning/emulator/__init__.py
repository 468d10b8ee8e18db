"""A faithful local emulator of the Lightning AI REST API (aiohttp.web, in memory).

```
async with Emulator(seed=0, config=EmulatorConfig(...)) as emu:
    emu.url, emu.user_id, emu.api_key, emu.teamspace_id
with EmulatorThread() as emu: ...      # background thread, for synchronous code
with spawn_emulator() as emu: ...      # subprocess, for benchmarks
python -m aiolightning.emulator --port 8123
```
"""

from __future__ import annotations

from ._config import Counters, EmulatorConfig, Faults, Timings
from ._server import Emulator, EmulatorThread, spawn_emulator


def main(argv: list[str] | None = None) -> int:
    """Run the emulator command (`python -m aiolightning.emulator`)."""
    from ._cli import main as _main

    return _main(argv)


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
