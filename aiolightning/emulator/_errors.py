"""The grpc-gateway error body and the exception handlers raise to produce it."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
from aiohttp import web

__all__ = ["GRPC_CODE_FOR_STATUS", "ApiError", "error_response"]

# grpc status codes (google.rpc.Code) by the HTTP status grpc-gateway maps them to.
GRPC_CODE_FOR_STATUS = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    405: 12,  # UNIMPLEMENTED (grpc-gateway answers 405 for a known path, wrong method)
    409: 6,  # ALREADY_EXISTS
    429: 8,  # RESOURCE_EXHAUSTED
    500: 13,  # INTERNAL
    501: 12,  # UNIMPLEMENTED
    503: 14,  # UNAVAILABLE
    504: 4,  # DEADLINE_EXCEEDED
}


class ApiError(Exception):
    """Raised by a handler; turned into the `{code, message, details}` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = GRPC_CODE_FOR_STATUS.get(status, 2) if code is None else code
        self.headers = headers

    def response(self) -> web.Response:
        return error_response(self.status, self.message, code=self.code, headers=self.headers)


def error_response(
    status: int,
    message: str,
    *,
    code: int | None = None,
    headers: dict[str, str] | None = None,
    details: list[Any] | None = None,
) -> web.Response:
    body = {
        "code": GRPC_CODE_FOR_STATUS.get(status, 2) if code is None else code,
        "message": message,
        "details": details or [],
    }
    return web.Response(
        status=status,
        reason=HTTPStatus(status).phrase,
        body=msgspec.json.encode(body),
        content_type="application/json",
        headers=headers,
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)
