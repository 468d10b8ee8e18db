"""Credentials: Basic `base64(user_id:api_key)`, `Bearer <jwt>` minted by the login routes,
and `Bearer <api_key>` (the SDK's api-key-only branch).

Tokens are HS256 JWTs signed with a per-seed secret, carrying `sub` (user id), `iat`, `exp`
(integer seconds, as clients read it) and `emu_exp` (the exact float expiry the emulator
enforces, so sub-second lifetimes work in tests).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import time
from typing import TYPE_CHECKING, Any

import msgspec

from ._call import Call, RouteTable
from ._errors import ApiError

if TYPE_CHECKING:
    from ._state import State, User

__all__ = ["authenticate", "mint_token", "routes"]

routes = RouteTable()

_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def mint_token(state: State, user: User, duration: float | None) -> str:
    ttl = state.config.token_ttl
    if duration is not None and duration > 0:
        ttl = min(ttl, duration)
    now = time.time()
    payload = {
        "sub": user.id,
        "username": user.username,
        "iat": int(now),
        "exp": math.ceil(now + ttl),
        "emu_exp": now + ttl,
    }
    signing_input = _HEADER + b"." + _b64(msgspec.json.encode(payload))
    sig = hmac.new(state.token_secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + _b64(sig)).decode()


def _user_from_jwt(state: State, token: str) -> User:
    parts = token.split(".")
    if len(parts) != 3:
        raise ApiError(401, "invalid bearer token")
    signing_input = (parts[0] + "." + parts[1]).encode()
    expected = hmac.new(state.token_secret, signing_input, hashlib.sha256).digest()
    try:
        sig = _unb64(parts[2])
        payload: dict[str, Any] = msgspec.json.decode(_unb64(parts[1]))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise ApiError(401, "invalid bearer token") from None
    if not hmac.compare_digest(sig, expected):
        raise ApiError(401, "invalid bearer token signature")
    if float(payload.get("emu_exp", payload.get("exp", 0))) <= time.time():
        raise ApiError(401, "token expired")
    user = state.users.get(str(payload.get("sub", "")))
    if user is None:
        raise ApiError(401, "unknown user")
    return user


def authenticate(state: State, header: str | None) -> User:
    """The user the Authorization header names, or ApiError(401)."""
    if not header:
        raise ApiError(401, "missing Authorization header")
    scheme, _, cred = header.partition(" ")
    scheme = scheme.lower()
    cred = cred.strip()
    if scheme == "basic":
        cached = state.basic_cache.get(cred)
        if cached is not None and cached.api_key == state.basic_cache_keys.get(cred):
            return cached
        try:
            user_id, sep, key = base64.b64decode(cred, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "malformed Basic credentials") from None
        user = state.users.get(user_id)
        if not sep or user is None or not _same(user.api_key, key):
            raise ApiError(401, "invalid user id or API key")
        if len(state.basic_cache) >= 1024:
            state.basic_cache.clear()
            state.basic_cache_keys.clear()
        state.basic_cache[cred] = user
        state.basic_cache_keys[cred] = key
        return user
    if scheme == "bearer":
        if cred.count(".") == 2:
            return _user_from_jwt(state, cred)
        for user in state.users.values():
            if _same(user.api_key, cred):
                return user
        raise ApiError(401, "invalid bearer token")
    raise ApiError(401, f"unsupported authorization scheme {scheme!r}")


def _duration(body: dict[str, Any]) -> float | None:
    d = body.get("duration")
    if d in (None, ""):
        return None
    try:
        return float(d)
    except (TypeError, ValueError):
        raise ApiError(400, f"invalid duration: {d!r}") from None


def _same(a: str, b: str) -> bool:
    """A constant-time comparison of two strings, any characters (compare_digest refuses
    non-ASCII str: a fuzzed key would make it raise)."""
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def _find_by_key(state: State, key: str, name: str = "") -> User | None:
    for user in state.users.values():
        if _same(user.api_key, key) and (not name or name in (user.username, user.id, user.email)):
            return user
    return None


@routes.route("POST", "/v1/auth/login", body="V1LoginRequest", auth=False)
async def login(call: Call) -> Any:
    key = str(call.body.get("apiKey") or "")
    name = str(call.body.get("username") or "")
    user = _find_by_key(call.state, key, name) if key else None
    if user is None:
        raise ApiError(401, "invalid username or API key")
    return {"token": mint_token(call.state, user, _duration(call.body))}


@routes.route("POST", "/v1/auth/token-login", body="V1TokenLoginRequest", auth=False)
async def token_login(call: Call) -> Any:
    key = str(call.body.get("tokenKey") or "")
    user = _find_by_key(call.state, key) if key else None
    if user is None:
        raise ApiError(401, "invalid token key")
    return {"token": mint_token(call.state, user, None)}


@routes.route("POST", "/v1/auth/refresh", body="V1RefreshRequest")
async def refresh(call: Call) -> Any:
    return {"token": mint_token(call.state, call.user, _duration(call.body))}
