"""Presigned storage URLs: their HMAC signature, its check, and the object tokens they carry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from .._config import Counters, EmulatorConfig
from .wire import xml_error

__all__ = ["Presigner", "decode_token", "encode_token"]


def encode_token(fields: dict[str, Any]) -> str:
    """The object token of a presigned URL: the fields as unpadded URL-safe base64 JSON."""
    return base64.urlsafe_b64encode(msgspec.json.encode(fields)).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, str, str, dict[str, Any]] | None:
    """(project id, scope, path, all fields) from the object token of a presigned URL;
    None if it is malformed."""
    try:
        info = msgspec.json.decode(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(info["p"]), str(info["s"]), str(info["k"]), info
    except (ValueError, KeyError, TypeError, AttributeError, msgspec.DecodeError):
        return None


class Presigner:
    """Signs URLs for ``config.faults.url_ttl`` seconds and checks the signed requests."""

    def __init__(
        self,
        secret: bytes,
        config: EmulatorConfig,
        counters: Counters,
        base_url: Callable[[], str],
    ) -> None:
        self.secret = secret
        self.config = config
        self.counters = counters
        self.base_url = base_url

    def sign(self, method: str, resource: str, expires: int) -> str:
        msg = f"{method}\n{resource}\n{expires}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    def url(self, method: str, resource: str, origin: str = "") -> str:
        expires = int(time.time() + self.config.faults.url_ttl + 0.999)
        sig = self.sign(method, resource, expires)
        base = (origin or self.base_url()).rstrip("/")
        return f"{base}{resource}?Expires={expires}&Signature={sig}"

    def check(self, request: web.Request, resource: str) -> web.Response | None:
        if "Authorization" in request.headers:
            self.counters.incr("storage:authorization_header_seen")
        expires_s = request.query.get("Expires", "")
        sig = request.query.get("Signature", "")
        try:
            expires = int(expires_s)
        except ValueError:
            self.counters.incr("storage:signature_rejected")
            return xml_error(403, "AccessDenied", "Query-string authentication required")
        good = self.sign(request.method, resource, expires)
        if not hmac.compare_digest(good, sig):
            self.counters.incr("storage:signature_rejected")
            return xml_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided",
            )
        if time.time() > expires:
            self.counters.incr("storage:urls_expired")
            return xml_error(403, "AccessDenied", "Request has expired")
        return None
