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
    ResponseDecodeError,
    ServerError,
)
from ._version import __version__

if TYPE_CHECKING:
    from ._auth import Credentials
    from ._client import AsyncLightning
    from ._limiter import Limiter, LimiterConfig, ScopeConfig, ScopeStats
    from ._pagination import AsyncPager
    from ._retry import RetryPolicy
    from ._transport import Timeout, Transport

# public name -> module that defines it (imported lazily)
_LAZY: dict[str, str] = {
    "AsyncLightning": "._client",
    "AsyncPager": "._pagination",
    "Credentials": "._auth",
    "Limiter": "._limiter",
    "LimiterConfig": "._limiter",
    "RetryPolicy": "._retry",
    "ScopeConfig": "._limiter",
    "ScopeStats": "._limiter",
    "Timeout": "._transport",
    "Transport": "._transport",
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
    "ConflictError",
    "Credentials",
    "CredentialsError",
    "InvalidArgumentError",
    "LightningError",
    "Limiter",
    "LimiterConfig",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseDecodeError",
    "RetryPolicy",
    "ScopeConfig",
    "ScopeStats",
    "ServerError",
    "Timeout",
    "Transport",
    "__version__",
]
