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
    from ._hooks import Hooks, RetryEvent, ThrottleEvent
    from ._limiter import (
        Limiter,
        LimiterConfig,
        ScopeConfig,
        ScopeStats,
        SharedLimiterError,
        SharedStats,
    )
    from ._pagination import AsyncPager, PaginationError
    from ._raw import RawResponse
    from ._retry import RetryPolicy
    from ._sync._client import Lightning
    from ._sync._portal import BulkInterrupted
    from ._sync._wrap import Pager
    from ._transport import Timeout, Transport
    from .fanout import Outcome, OutcomeStream, Progress, map_outcomes, stream_outcomes
    from .resources._polling import WaitTimeoutError
    from .resources.deployments import (
        AutoScale,
        Deployment,
        DeploymentRequest,
        DeploymentStatus,
    )
    from .resources.jobs import Job, JobChange, JobRequest, JobStatus
    from .resources.machines import Machine
    from .resources.storage import FileInfo
    from .resources.studios import (
        CommandResult,
        CommandTimeoutError,
        Studio,
        StudioState,
        StudioStatus,
    )
    from .resources.teamspaces import Teamspace
    from .runs import Journal, JournalBusyError, JournalCorruptError, JournalError
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
    "AutoScale": ".resources.deployments",
    "BulkInterrupted": "._sync._portal",
    "BulkTransferError": ".transfer",
    "CommandResult": ".resources.studios",
    "CommandTimeoutError": ".resources.studios",
    "Credentials": "._auth",
    "Deployment": ".resources.deployments",
    "DeploymentRequest": ".resources.deployments",
    "DeploymentStatus": ".resources.deployments",
    "FileInfo": ".resources.storage",
    "Hooks": "._hooks",
    "Job": ".resources.jobs",
    "Journal": ".runs",
    "JournalBusyError": ".runs",
    "JournalCorruptError": ".runs",
    "JournalError": ".runs",
    "JobChange": ".resources.jobs",
    "JobRequest": ".resources.jobs",
    "JobStatus": ".resources.jobs",
    "Lightning": "._sync._client",
    "Limiter": "._limiter",
    "LimiterConfig": "._limiter",
    "Machine": ".resources.machines",
    "Outcome": ".fanout",
    "OutcomeStream": ".fanout",
    "Pager": "._sync._wrap",
    "PaginationError": "._pagination",
    "Progress": ".fanout",
    "RawResponse": "._raw",
    "RetryEvent": "._hooks",
    "RetryPolicy": "._retry",
    "ScopeConfig": "._limiter",
    "ScopeStats": "._limiter",
    "SharedLimiterError": "._limiter",
    "SharedStats": "._limiter",
    "StorageError": ".transfer",
    "StoragePathError": ".transfer",
    "Studio": ".resources.studios",
    "StudioState": ".resources.studios",
    "StudioStatus": ".resources.studios",
    "Teamspace": ".resources.teamspaces",
    "Timeout": "._transport",
    "ThrottleEvent": "._hooks",
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
    "AutoScale",
    "BadRequestError",
    "BulkInterrupted",
    "BulkTransferError",
    "CommandResult",
    "CommandTimeoutError",
    "ConflictError",
    "Credentials",
    "CredentialsError",
    "Deployment",
    "DeploymentRequest",
    "DeploymentStatus",
    "FileInfo",
    "Hooks",
    "InvalidArgumentError",
    "Job",
    "JobChange",
    "JobRequest",
    "JobStatus",
    "Journal",
    "JournalBusyError",
    "JournalCorruptError",
    "JournalError",
    "Lightning",
    "LightningError",
    "Limiter",
    "LimiterConfig",
    "Machine",
    "NotFoundError",
    "Outcome",
    "OutcomeStream",
    "Pager",
    "PaginationError",
    "PermissionDeniedError",
    "Progress",
    "RateLimitError",
    "RawResponse",
    "RedirectRefusedError",
    "ResponseDecodeError",
    "RetryEvent",
    "RetryPolicy",
    "ScopeConfig",
    "ScopeStats",
    "ServerError",
    "SharedLimiterError",
    "SharedStats",
    "StorageError",
    "StoragePathError",
    "Studio",
    "StudioState",
    "StudioStatus",
    "TLSVerificationError",
    "Teamspace",
    "ThrottleEvent",
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
