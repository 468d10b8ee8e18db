"""aiolightning: the asyncio client for the Lightning AI REST API.

``import aiolightning`` stays light: the client, the transport and friends (which pull in
aiohttp) are imported on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    CredentialsError,
    InvalidArgumentError,
    LightningError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RedirectRefusedError,
    ResponseDecodeError,
    ServerError,
    TLSVerificationError,
)
from ._version import __version__

if TYPE_CHECKING:
    from ._auth import Credentials
    from ._client import AsyncLightning
    from ._limiter import Limiter, LimiterConfig, ScopeConfig, ScopeStats
    from ._pagination import AsyncPager
    from ._retry import RetryPolicy
    from ._transport import Timeout, Transport
    from .fanout import Outcome, OutcomeStream, Progress, map_outcomes, stream_outcomes
    from .resources._polling import WaitTimeoutError
    from .resources.jobs import Job, JobChange, JobRequest, JobStatus
    from .resources.machines import Machine
    from .resources.storage import FileInfo
    from .resources.studios import CommandResult, CommandTimeoutError, Studio, StudioStatus
    from .resources.teamspaces import Teamspace
    from .transfer import (
        BulkTransferError,
        StorageError,
        StoragePathError,
        TransferConfig,
        TransferError,
        TransferProgress,
    )

# public name -> module that defines it (imported lazily)
_LAZY: dict[str, str] = {
    "AsyncLightning": "._client",
    "AsyncPager": "._pagination",
    "BulkTransferError": ".transfer",
    "CommandResult": ".resources.studios",
    "CommandTimeoutError": ".resources.studios",
    "Credentials": "._auth",
    "FileInfo": ".resources.storage",
    "Job": ".resources.jobs",
    "JobChange": ".resources.jobs",
    "JobRequest": ".resources.jobs",
    "JobStatus": ".resources.jobs",
    "Limiter": "._limiter",
    "LimiterConfig": "._limiter",
    "Machine": ".resources.machines",
    "Outcome": ".fanout",
    "OutcomeStream": ".fanout",
    "Progress": ".fanout",
    "RetryPolicy": "._retry",
    "ScopeConfig": "._limiter",
    "ScopeStats": "._limiter",
    "StorageError": ".transfer",
    "StoragePathError": ".transfer",
    "Studio": ".resources.studios",
    "StudioStatus": ".resources.studios",
    "Teamspace": ".resources.teamspaces",
    "Timeout": "._transport",
    "TransferConfig": ".transfer",
    "TransferError": ".transfer",
    "TransferProgress": ".transfer",
    "Transport": "._transport",
    "WaitTimeoutError": ".resources._polling",
    "map_outcomes": ".fanout",
    "stream_outcomes": ".fanout",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiolightning' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncLightning",
    "AsyncPager",
    "AuthenticationError",
    "BadRequestError",
    "BulkTransferError",
    "CommandResult",
    "CommandTimeoutError",
    "ConflictError",
    "Credentials",
    "CredentialsError",
    "FileInfo",
    "InvalidArgumentError",
    "Job",
    "JobChange",
    "JobRequest",
    "JobStatus",
    "LightningError",
    "Limiter",
    "LimiterConfig",
    "Machine",
    "NotFoundError",
    "Outcome",
    "OutcomeStream",
    "PermissionDeniedError",
    "Progress",
    "RateLimitError",
    "RedirectRefusedError",
    "ResponseDecodeError",
    "RetryPolicy",
    "ScopeConfig",
    "ScopeStats",
    "ServerError",
    "StorageError",
    "StoragePathError",
    "Studio",
    "StudioStatus",
    "TLSVerificationError",
    "Teamspace",
    "Timeout",
    "TransferConfig",
    "TransferError",
    "TransferProgress",
    "Transport",
    "WaitTimeoutError",
    "__version__",
    "map_outcomes",
    "stream_outcomes",
]
