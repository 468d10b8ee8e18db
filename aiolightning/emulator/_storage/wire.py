"""Parsing storage requests and building their JSON and S3-like XML error answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

__all__ = [
    "BadRequest",
    "bool_param",
    "clean_path",
    "int_param",
    "json_error",
    "read_blobs",
    "read_json",
    "rfc3339",
    "snake_or_camel",
    "xml_error",
]


class BadRequest(Exception):
    pass


def json_error(status: int, code: int, message: str) -> web.Response:
    body = msgspec.json.encode({"code": code, "message": message, "details": []})
    return web.Response(status=status, body=body, content_type="application/json")


def xml_error(status: int, code: str, message: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def int_param(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise BadRequest(f"{what} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{what} must be an integer, got {value!r}") from None


def snake_or_camel(d: dict[str, Any], snake: str, camel: str) -> Any:
    v = d.get(snake)
    return d.get(camel) if v is None else v


def clean_path(raw: str, *, allow_root: bool) -> str:
    path = raw.strip("/")
    if path == "":
        if allow_root:
            return ""
        raise BadRequest("path must not be empty")
    segments = path.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise BadRequest(f"invalid path {path!r}: empty, '.' or '..' segment")
    return path


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def bool_param(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes")


async def read_json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as e:
        raise BadRequest(f"invalid JSON body: {e}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


async def read_blobs(request: web.Request) -> tuple[dict[str, Any], list[Any]]:
    """The JSON body of a ``POST blobs`` call and its non-empty ``blobs`` list."""
    body = await read_json(request)
    blobs = body.get("blobs")
    if not isinstance(blobs, list) or not blobs:
        raise BadRequest("blobs must be a non-empty list")
    return body, blobs
