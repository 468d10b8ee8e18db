"""Studios ("cloudspaces" on the wire): create, find, start, stop, switch machines, run
commands, and the same for whole fleets (``start_many`` / ``stop_many`` / ``delete_many``).

Wire facts are in wire-flows §4. The rooms: ``_models`` (the value types and errors),
``_lookup`` (name cache, get, list), ``_status`` (state and waits, the shared status board),
``_lifecycle`` (create/delete/start/stop/switch), ``_commands`` (``run`` and its stream
parser), ``_fleet`` (the ``*_many`` helpers), and ``_resource`` (:class:`Studios`, made of them).
"""

from ._commands import CommandError, CommandResult, CommandTimeoutError
from ._models import (
    Studio,
    StudioError,
    StudioNotFoundError,
    StudioRef,
    StudioState,
    StudioStatus,
)
from ._resource import Studios

__all__ = [
    "CommandError",
    "CommandResult",
    "CommandTimeoutError",
    "Studio",
    "StudioError",
    "StudioNotFoundError",
    "StudioRef",
    "StudioState",
    "StudioStatus",
    "Studios",
]
