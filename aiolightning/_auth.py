"""Credentials: where they come from, the Authorization header, JWT login and refresh.

Precedence (the official SDK's, wire-flows §2.1):

1. explicit arguments (``api_key=`` / ``auth_token=``, with ``user_id=``);
2. the environment: ``LIGHTNING_API_KEY`` or ``LIGHTNING_AUTH_TOKEN`` (with
   ``LIGHTNING_USER_ID``); a ``user_id=`` argument still wins over the variable;
3. the credentials file: ``LIGHTNING_CREDENTIAL_PATH`` or ``~/.lightning/credentials.json``,
   a JSON object with ``user_id``, ``api_key``, ``auth_token`` ("" counts as absent).

Header: an auth token gives ``Bearer <token>``; an API key with a user id gives
``Basic base64(user_id:api_key)``; an API key alone gives ``Bearer <api_key>``.

JWT mode (``auth="jwt"``) exchanges the user id/username and API key for a token with
``POST /v1/auth/login`` and, on a 401, logs in again **once** for all concurrent callers
(single flight), after which each caller replays its request.

No secret ever appears in a repr, a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from ._errors import CredentialsError, LightningError

__all__ = [
    "DEFAULT_CREDENTIALS_PATH",
    "Auth",
    "AuthMode",
    "Credentials",
    "JwtAuth",
    "StaticAuth",
    "basic_header",
    "default_credentials_path",
    "make_auth",
    "resolve_credentials",
]

logger = logging.getLogger("aiolightning")

AuthMode = Literal["auto", "basic", "bearer", "jwt", "none"]

ENV_USER_ID = "LIGHTNING_USER_ID"
ENV_API_KEY = "LIGHTNING_API_KEY"
ENV_AUTH_TOKEN = "LIGHTNING_AUTH_TOKEN"
ENV_CREDENTIAL_PATH = "LIGHTNING_CREDENTIAL_PATH"
DEFAULT_CREDENTIALS_PATH = "~/.lightning/credentials.json"

#: JWT lifetime requested at login, seconds as a string (the service allows 900..129600)
DEFAULT_JWT_DURATION = "43200"


def default_credentials_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(ENV_CREDENTIAL_PATH) or DEFAULT_CREDENTIALS_PATH).expanduser()


class Credentials:
    """User id, API key and/or auth token, with where they came from. Secrets never print."""

    __slots__ = ("api_key", "auth_token", "source", "user_id", "username")

    def __init__(
        self,
        *,
        user_id: str | None = None,
        api_key: str | None = None,
        auth_token: str | None = None,
        username: str | None = None,
        source: str = "arguments",
    ) -> None:
        self.user_id = user_id or None
        self.api_key = api_key or None
        self.auth_token = auth_token or None
        self.username = username or None
        self.source = source

    def __repr__(self) -> str:
        parts = [f"user_id={self.user_id!r}"]
        if self.username:
            parts.append(f"username={self.username!r}")
        parts.append(f"api_key={'<hidden>' if self.api_key else None}")
        parts.append(f"auth_token={'<hidden>' if self.auth_token else None}")
        parts.append(f"source={self.source!r}")
        return f"Credentials({', '.join(parts)})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickle secrets by accident
        raise TypeError("Credentials cannot be pickled")

    @property
    def has_secret(self) -> bool:
        return bool(self.api_key or self.auth_token)


def resolve_credentials(
    *,
    user_id: str | None = None,
    api_key: str | None = None,
    auth_token: str | None = None,
    username: str | None = None,
    credentials_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Credentials:
    """Find credentials (arguments, then environment, then file); raise CredentialsError."""
    env = os.environ if env is None else env
    if api_key or auth_token:
        return Credentials(
            user_id=user_id or env.get(ENV_USER_ID),
            api_key=api_key,
            auth_token=auth_token,
            username=username,
            source="arguments",
        )
    env_key = env.get(ENV_API_KEY)
    env_token = env.get(ENV_AUTH_TOKEN)
    if env_key or env_token:
        names = [n for n, v in ((ENV_API_KEY, env_key), (ENV_AUTH_TOKEN, env_token)) if v]
        return Credentials(
            user_id=user_id or env.get(ENV_USER_ID),
            api_key=env_key,
            auth_token=env_token,
            username=username,
            source="environment " + "+".join(names),
        )
    path = (
        Path(credentials_path).expanduser()
        if credentials_path is not None
        else default_credentials_path(env)
    )

    def about(problem: str) -> dict[str, Any]:
        return {"path": str(path), "problem": problem, "path_given": credentials_path is not None}

    looked = (
        f"looked for the api_key=/auth_token= arguments, the environment variables "
        f"{ENV_API_KEY} (with {ENV_USER_ID}) and {ENV_AUTH_TOKEN}, and the credentials file "
        f"{path} (set {ENV_CREDENTIAL_PATH} to use another file)"
    )
    try:
        raw = path.read_bytes()
        _warn_if_others_can_read(path)
    except FileNotFoundError:
        raise CredentialsError(
            f"No Lightning credentials found: {looked}; the file does not exist. "
            f"Set {ENV_USER_ID} and {ENV_API_KEY}, or run `lightning login`.",
            **about(problem="does not exist"),
        ) from None
    except OSError as exc:
        raise CredentialsError(
            f"No Lightning credentials found: {looked}; the file could not be read "
            f"({type(exc).__name__}: {exc.strerror}).",
            **about(problem=f"could not be read ({exc.strerror})"),
        ) from None
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise CredentialsError(
            f"The credentials file {path} is not valid JSON ({looked}).",
            **about(problem="is not valid JSON"),
        ) from None
    if not isinstance(data, dict):
        raise CredentialsError(
            f"The credentials file {path} does not hold a JSON object.",
            **about(problem="does not hold a JSON object"),
        )

    def field(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) and value else None

    creds = Credentials(
        user_id=user_id or field("user_id"),
        api_key=field("api_key"),
        auth_token=field("auth_token"),
        username=username,
        source=f"file {path}",
    )
    if not creds.has_secret:
        raise CredentialsError(
            f"The credentials file {path} holds neither an api_key nor an auth_token ({looked}).",
            **about(problem="holds neither an api_key nor an auth_token"),
        )
    return creds


_warned_paths: set[str] = set()


def _warn_if_others_can_read(path: Path) -> None:
    """A WARNING (once per file and process) when the credentials file is readable by its
    group or by others, as ssh does for keys (``netrc`` refuses such a file)."""
    if os.name != "posix" or str(path) in _warned_paths:
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o044:
        _warned_paths.add(str(path))
        logger.warning(
            "the credentials file %s can be read by %s (mode %s): anyone who can read it can "
            "use your API key; run: chmod 600 %s",
            path, "others" if mode & 0o004 else "its group", oct(mode & 0o777), path,
        )  # fmt: skip


def basic_header(user_id: str, api_key: str) -> str:
    """``Basic base64(user_id:api_key)``."""
    token = base64.b64encode(f"{user_id}:{api_key}".encode()).decode("ascii")
    return f"Basic {token}"


class Auth:
    """The Authorization strategy of a transport. ``header`` is the current value or None."""

    header: str | None = None
    #: True when the first request must log in first (JWT mode)
    needs_login: bool = False
    #: True when a 401 may be fixed by :meth:`refresh`
    refreshable: bool = False

    async def refresh(self, used: str | None) -> bool:
        """Get a new header after a 401 on a request sent with ``used``; True if it changed."""
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class StaticAuth(Auth):
    """A fixed Authorization header (Basic or Bearer), or none at all."""

    __slots__ = ("_kind",)

    def __init__(self, header: str | None, kind: str) -> None:
        self.header = header
        self._kind = kind

    def __repr__(self) -> str:
        return f"<StaticAuth {self._kind}>"


LoginFn = Callable[[dict[str, str]], Awaitable[Any]]


class JwtAuth(Auth):
    """JWT from ``POST /v1/auth/login``; single-flight re-login on 401."""

    refreshable = True

    def __init__(
        self,
        credentials: Credentials,
        login: LoginFn,
        *,
        duration: str = DEFAULT_JWT_DURATION,
    ) -> None:
        self._credentials = credentials
        self._login = login
        self._duration = duration
        self._lock: asyncio.Lock | None = None
        self.logins = 0
        if credentials.auth_token:
            self.header = f"Bearer {credentials.auth_token}"
        self.needs_login = self.header is None
        if self.needs_login and not (credentials.api_key and self._username):
            raise CredentialsError(
                "JWT mode needs a user id (or username) and an API key to log in with "
                f"(credentials from {credentials.source}: user_id="
                f"{'set' if credentials.user_id else 'missing'}, api_key="
                f"{'set' if credentials.api_key else 'missing'})."
            )

    @property
    def _username(self) -> str | None:
        return self._credentials.username or self._credentials.user_id

    async def refresh(self, used: str | None) -> bool:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.header is not None and self.header != used:
                return True  # someone else already refreshed while we waited
            if not (self._credentials.api_key and self._username):
                return False  # a bare token cannot be renewed
            body = {
                "username": self._username or "",
                "apiKey": self._credentials.api_key,
                "duration": self._duration,
            }
            result = await self._login(body)
            token = result.get("token") if isinstance(result, dict) else None
            if not isinstance(token, str) or not token:
                raise LightningError("POST /v1/auth/login returned no token")
            self.logins += 1
            self.header = f"Bearer {token}"
            self.needs_login = False
            return True

    def __repr__(self) -> str:
        state = "logged in" if self.header else "not logged in"
        return f"<JwtAuth {state}, logins={self.logins}>"


def make_auth(mode: AuthMode, credentials: Credentials | None, login: LoginFn) -> Auth:
    """The Auth strategy for ``mode`` ("auto"/"basic" pick Basic or Bearer like the SDK)."""
    if mode == "none" or credentials is None:
        return StaticAuth(None, "none")
    if mode == "jwt":
        return JwtAuth(credentials, login)
    if mode == "bearer":
        token = credentials.auth_token or credentials.api_key
        return StaticAuth(f"Bearer {token}", "bearer")
    if credentials.auth_token:
        return StaticAuth(f"Bearer {credentials.auth_token}", "bearer")
    if credentials.api_key and credentials.user_id:
        return StaticAuth(basic_header(credentials.user_id, credentials.api_key), "basic")
    if credentials.api_key:
        return StaticAuth(f"Bearer {credentials.api_key}", "bearer")
    raise CredentialsError(f"Credentials from {credentials.source} hold no API key or token.")
