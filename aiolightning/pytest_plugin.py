"""The pytest plugin (entry point ``pytest11``): the emulator and clients as fixtures.

Installed with aiolightning and active in every pytest run (``-p no:aiolightning`` turns it
off). Fixtures:

* ``lightning_emulator`` -- a fresh emulator per test, on its own thread (an
  :class:`~aiolightning.emulator.EmulatorThread`, so sync and async tests can both use it),
  with fast state machines; ``lightning_emulator_session`` -- one for the whole session;
* ``lightning_client`` -- an :class:`~aiolightning.AsyncLightning` connected to it (an async
  fixture: mark the test ``@pytest.mark.anyio``, or use pytest-asyncio);
* ``lightning_sync_client`` -- a :class:`~aiolightning.Lightning` connected to it.

Knobs, per test: ``@pytest.mark.lightning_emulator(rate_limit=5, error_rate=0.2,
drop_rate=0.1, job_outcome="fail", latency=0.02, seed=1, page_size=3)`` -- any field of
``Faults``, ``Timings`` or ``EmulatorConfig`` -- or live, on the fixture object:
``lightning_emulator.config.faults.rate_limit = 5``. What happened:
``lightning_emulator.counters.get("throttled")``, ``.counters.snapshot()``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when a fixture is used: loading the plugin stays cheap
    from ._client import AsyncLightning
    from ._sync._client import Lightning
    from .emulator import EmulatorConfig, EmulatorThread

__all__ = [
    "emulator_config",
    "lightning_client",
    "lightning_emulator",
    "lightning_emulator_session",
    "lightning_sync_client",
]

MARKER = "lightning_emulator"
POLL_INITIAL = 0.02  # the emulator's state machines are fast: poll them often
FAST_TIMINGS = {
    "studio_start": 0.2,
    "studio_stop": 0.05,
    "studio_switch": 0.2,
    "job_pending": 0.02,
    "job_creating": 0.02,
    "job_running": 0.1,
    "job_finishing": 0.02,
    "job_stop": 0.05,
    "command": 0.02,
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**knobs): settings of the lightning_emulator fixture (any field of the"
        " emulator's Faults, Timings or EmulatorConfig, and seed=)",
    )


def emulator_config(**knobs: Any) -> tuple[int, EmulatorConfig]:
    """``(seed, EmulatorConfig)`` from marker keywords, fast timings unless overridden."""
    from .emulator import EmulatorConfig, Faults, Timings

    fields = {
        "faults": {f.name for f in dataclasses.fields(Faults)},
        "timings": {f.name for f in dataclasses.fields(Timings)},
        "config": {f.name for f in dataclasses.fields(EmulatorConfig)} - {"faults", "timings"},
    }
    seed = knobs.pop("seed", 0)
    faults: dict[str, Any] = {}
    timings: dict[str, Any] = dict(FAST_TIMINGS)
    config: dict[str, Any] = {}
    for key, value in knobs.items():
        if key in fields["faults"]:
            faults[key] = value
        elif key in fields["timings"]:
            timings[key] = value
        elif key in fields["config"]:
            config[key] = value
        else:
            known = sorted(fields["faults"] | fields["timings"] | fields["config"])
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER}: unknown knob {key!r}; known: seed, {', '.join(known)}"
            )
    if timings.get("job_outcome", "complete") not in ("complete", "fail"):
        raise pytest.UsageError(f"@pytest.mark.{MARKER}: job_outcome must be 'complete' or 'fail'")
    return seed, EmulatorConfig(faults=Faults(**faults), timings=Timings(**timings), **config)


def _fast_polls(client: AsyncLightning) -> None:
    client.jobs.poll_initial = client.studios.poll_initial = POLL_INITIAL


@pytest.fixture
def lightning_emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorThread]:
    """A fresh emulator for this test (knobs: ``@pytest.mark.lightning_emulator(...)``)."""
    knobs: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):  # closest marker wins
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes keywords only")
        knobs.update(marker.kwargs)
    seed, config = emulator_config(**knobs)
    from .emulator import EmulatorThread

    with EmulatorThread(seed=seed, config=config) as emu:
        yield emu


@pytest.fixture(scope="session")
def lightning_emulator_session() -> Iterator[EmulatorThread]:
    """One emulator for the whole session (fast timings; state and knobs are shared)."""
    seed, config = emulator_config()
    from .emulator import EmulatorThread

    with EmulatorThread(seed=seed, config=config) as emu:
        yield emu


@pytest.fixture
async def lightning_client(lightning_emulator: EmulatorThread) -> AsyncIterator[AsyncLightning]:
    """An :class:`~aiolightning.AsyncLightning` on ``lightning_emulator`` (its teamspace)."""
    async with lightning_emulator.client() as client:
        _fast_polls(client)
        yield client


@pytest.fixture
def lightning_sync_client(lightning_emulator: EmulatorThread) -> Iterator[Lightning]:
    """A :class:`~aiolightning.Lightning` on ``lightning_emulator`` (its teamspace)."""
    with lightning_emulator.sync_client() as client:
        _fast_polls(client.aio)
        yield client
