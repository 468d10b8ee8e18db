"""The exception hierarchy. Every error raised by aiolightning derives from LightningError.

No exception ever carries a credential: messages are built from status, grpc code, the
server's message, the method and the templated or concrete path, never from headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._raw import request_id

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "CredentialsError",
    "InvalidArgumentError",
    "LightningError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RedirectRefusedError",
    "ResponseDecodeError",
    "ServerError",
    "TLSVerificationError",
    "error_for_status",
]


class LightningError(Exception):
    """Root of every error aiolightning raises."""


class CredentialsError(LightningError):
    """No usable credentials were found; the message says what was looked for and where.

    When the credentials file was the problem: ``path`` is that file, ``problem`` what is
    wrong with it ("does not exist", ...), ``path_given`` whether the caller named it
    (``credentials_path=``, CLI ``--credentials``) rather than the default or
    ``LIGHTNING_CREDENTIAL_PATH``. A command line builds its own short line from them."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        problem: str | None = None,
        path_given: bool = False,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.problem = problem
        self.path_given = path_given


class InvalidArgumentError(LightningError, ValueError):
    """An argument was rejected before any request was sent (unknown machine, empty name,
    negative timeout ...). Also a ``ValueError``."""


class APIConnectionError(LightningError):
    """The request could not be sent or its answer could not be read (DNS, refused, reset)."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class APITimeoutError(APIConnectionError):
    """The request did not complete within its timeout."""


class TLSVerificationError(APIConnectionError):
    """The server's TLS certificate could not be verified (untrusted chain, expired, wrong
    host name). Never retried: the message says what failed and which settings fix it."""


class RedirectRefusedError(LightningError):
    """The service redirected an API call where the client will not follow: from https to
    http, or with credentials or a request body to another origin. ``from_url`` and
    ``to_url`` are shown without user info or query string."""

    def __init__(
        self, message: str, *, from_url: str = "", to_url: str = "", method: str = ""
    ) -> None:
        super().__init__(message)
        self.from_url = from_url
        self.to_url = to_url
        self.method = method


class APIStatusError(LightningError):
    """The server answered with a non-2xx status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: int | None = None,
        details: list[Any] | None = None,
        method: str = "",
        path: str = "",
        body: bytes | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details: list[Any] = details or []
        self.method = method
        self.path = path
        self.body = body
        #: the response headers (case-insensitive; set by the transport)
        self.headers: Mapping[str, str] = {}
        where = f"{method} {path}: " if method else ""
        grpc = f", grpc code {code}" if code is not None else ""
        super().__init__(f"{where}HTTP {status}{grpc}: {message}")

    @property
    def request_id(self) -> str | None:
        """The request id the server sent back (``X-Request-Id`` and kin), if any."""
        return request_id(self.headers)


class BadRequestError(APIStatusError):
    """HTTP 400: the request was malformed or a field was invalid."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the credentials were missing, wrong or expired."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: the credentials are valid but not allowed to do this."""


class NotFoundError(APIStatusError):
    """HTTP 404: the resource does not exist."""


class ConflictError(APIStatusError):
    """HTTP 409: the resource already exists or changed underneath the request."""


class RateLimitError(APIStatusError):
    """HTTP 429: the service throttled the request. ``retry_after`` is in seconds, if given."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """HTTP 5xx: the service failed."""


class ResponseDecodeError(LightningError):
    """A 2xx response body was not valid JSON or did not match the expected model."""

    def __init__(self, message: str, *, method: str = "", path: str = "", status: int = 0):
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def error_for_status(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP status (APIStatusError for unlisted 4xx)."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIStatusError)
