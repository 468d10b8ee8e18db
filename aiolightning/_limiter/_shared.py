"""The shared limiter's Redis side: connection, the two scripts, pause news, and outages.

``LimiterConfig(shared="redis://host:6379/0")`` gives the :class:`Limiter` one
:class:`SharedBackend`; each scope (a :class:`SharedScopeLimiter`) asks it for send times
(:data:`GRANT`, one round trip for a batch of queued callers) and tells it of a
``Retry-After`` (:data:`PAUSE`). A listener task receives the pauses other processes publish
and closes the matching local gates. redis-py (``aiolightning[redis]``) is imported on first
use; the connection is made then too, on the running loop.

When Redis cannot be reached (at first use or later): with ``on_unavailable="error"`` the
waiting callers get a :class:`SharedLimiterError` (the next call tries again); with
``"local"`` a WARNING is logged, the scopes go on with this process's own limiter, and
Redis is tried again after :data:`_RETRY_DOWN` seconds. Neither the URL's password nor a
Redis error carrying it ever reaches a log line or an exception.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .._errors import InvalidArgumentError, LightningError
from ._redis_scripts import GRANT, PAUSE
from ._shared_url import SharedURL

if TYPE_CHECKING:
    from ._config import LimiterConfig
    from ._shared_scope import SharedScopeLimiter

__all__ = ["SharedBackend", "SharedLimiterError", "SharedStats"]

logger = logging.getLogger("aiolightning")

#: seconds to connect to Redis / to wait for one answer; a URL's own
#: ``socket_connect_timeout`` / ``socket_timeout`` parameters take precedence
_CONNECT_TIMEOUT: Final = 2.0
_ANSWER_TIMEOUT: Final = 2.0
#: with ``on_unavailable="local"``: seconds on the local limiter before Redis is tried again
_RETRY_DOWN: Final = 10.0
#: the pause listener: seconds per wait for a message, and before resubscribing after a loss
_LISTEN_POLL: Final = 1.0
_LISTEN_RETRY: Final = 1.0


class SharedLimiterError(LightningError):
    """The shared limiter's Redis could not be reached (``on_unavailable="error"``)."""


@dataclass(frozen=True, slots=True)
class SharedStats:
    """Counters of a process's shared limiter."""

    url: str
    """the Redis URL, password hidden"""
    key: str
    state: str
    """"idle" (not connected yet), "shared", or "local" (Redis unreachable, local fallback)"""
    round_trips: int
    """Redis commands sent: grant batches plus pauses"""
    grants: int
    """send times granted by Redis"""
    pauses_sent: int
    pauses_received: int


class SharedBackend:
    """One process's link to the shared limiter state in Redis (one per :class:`Limiter`)."""

    def __init__(self, config: LimiterConfig) -> None:
        assert config.shared is not None
        if importlib.util.find_spec("redis") is None:
            raise InvalidArgumentError(
                "LimiterConfig(shared=...) needs redis-py: pip install 'aiolightning[redis]'"
            )
        self.url = SharedURL(config.shared)
        self.key = config.shared_key
        self.fallback = config.on_unavailable == "local"
        self.origin = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.channel = f"{self.key}:pauses"
        self.round_trips = 0
        self.grants = 0
        self.pauses_sent = 0
        self.pauses_received = 0
        self._scopes: dict[str, SharedScopeLimiter] = {}
        self._client: Any = None
        self._grant: Any = None
        self._pause: Any = None
        self._connect_lock: asyncio.Lock | None = None
        self._listener: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._down_until = 0.0  # monotonic; > now while on the local fallback
        self._closed = False

    def attach(self, scope: SharedScopeLimiter) -> None:
        self._scopes[scope.name] = scope

    def keys(self, scope: str) -> list[str]:
        tag = f"{{{self.key}:{scope}}}"
        return [f"{tag}:tat", f"{tag}:pause"]

    def active(self) -> bool:
        """False while on the local fallback (Redis found unreachable a moment ago)."""
        return not self._down_until or time.monotonic() >= self._down_until

    # the two scripts ------------------------------------------------------------------------

    async def grant(
        self, scope: str, n: int, interval_us: int, tolerance_us: int, horizon_us: int
    ) -> tuple[float, list[float]] | None:
        """Reserve up to ``n`` send times: (pause left, [offsets]) in seconds from now.

        None: Redis is unreachable and this process falls back to its local limiter.
        """
        try:
            await self._connect()
            self.round_trips += 1
            reply = await self._grant(
                keys=self.keys(scope), args=[n, interval_us, tolerance_us, horizon_us]
            )
        except Exception as exc:
            self._unreachable(exc)
            return None
        self._reachable()
        offsets = [int(v) / 1e6 for v in reply[1:]]
        self.grants += len(offsets)
        return int(reply[0]) / 1e6, offsets

    async def join(self, scope: str) -> float | None:
        """Connect if not yet; the pause (s) still running on ``scope``, per Redis's clock.

        None: Redis is unreachable and this process falls back to its local limiter.
        """
        try:
            await self._connect()
            self.round_trips += 1
            pipe = self._client.pipeline(transaction=False)
            pipe.time()
            pipe.get(self.keys(scope)[1])
            (seconds, micros), until = await pipe.execute()
        except Exception as exc:
            self._unreachable(exc)
            return None
        self._reachable()
        left = int(until) - (int(seconds) * 1_000_000 + int(micros)) if until else 0
        return max(0, left) / 1e6

    def publish_pause(self, scope: str, seconds: float, tolerance_us: int) -> None:
        """Close the scope's gate in Redis and tell the other processes (in the background)."""
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._publish(scope, seconds, tolerance_us))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, scope: str, seconds: float, tolerance_us: int) -> None:
        try:
            await self._connect()
            self.round_trips += 1
            self.pauses_sent += 1
            await self._pause(
                keys=self.keys(scope),
                args=[round(seconds * 1e6), tolerance_us, self.channel, self.origin, scope],
            )
        except Exception as exc:
            # nobody awaits this: a caller can't be failed for it; the pause stays local
            self._down(exc, "its pause stays in this process")
        else:
            self._reachable()

    # connection, outages --------------------------------------------------------------------

    async def _connect(self) -> None:
        if self._client is not None:
            return
        if self._closed:
            raise SharedLimiterError("the shared limiter is closed (its client was closed)")
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._client is not None:
                return
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = aioredis.Redis.from_url(
                str(self.url),
                socket_connect_timeout=_CONNECT_TIMEOUT,
                socket_timeout=_ANSWER_TIMEOUT,
                retry=Retry(NoBackoff(), 1),  # once, for a pooled connection gone stale
            )
            try:
                self.round_trips += 1
                await client.ping()
            except BaseException:
                await client.aclose()
                raise
            self._client = client
            self._grant = client.register_script(GRANT)
            self._pause = client.register_script(PAUSE)
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    def _unreachable(self, exc: Exception) -> None:
        """A grant failed: raise :class:`SharedLimiterError`, or log and fall back."""
        if isinstance(exc, SharedLimiterError):
            raise exc
        message = self._describe(exc)
        if not self.fallback:
            raise SharedLimiterError(message) from None
        self._down(exc, "this process goes on with its own limiter")

    def _down(self, exc: Exception, consequence: str) -> None:
        if self.fallback:
            if self.active():
                logger.warning(
                    "%s; %s, trying Redis again in %g s",
                    self._describe(exc),
                    consequence,
                    _RETRY_DOWN,
                )
            self._down_until = time.monotonic() + _RETRY_DOWN
        else:
            logger.warning("%s; %s", self._describe(exc), consequence)

    def _reachable(self) -> None:
        if self._down_until:
            self._down_until = 0.0
            logger.info("shared limiter: Redis at %s is reachable again", self.url.redacted)

    def _describe(self, exc: BaseException) -> str:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        for secret in _secrets(self.url):
            detail = detail.replace(secret, "***")
        return f"shared limiter: Redis at {self.url.redacted} is unreachable ({detail})"

    # pauses published by other processes ----------------------------------------------------

    async def _listen(self) -> None:
        while not self._closed:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=_LISTEN_POLL)
                    if message is not None and message.get("type") == "message":
                        self._on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection went: subscribe again in a moment
                logger.debug("shared limiter: pause listener lost Redis (%s)", type(exc).__name__)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # a dead connection: nothing left to close
                    pass
            await asyncio.sleep(_LISTEN_RETRY)

    def _on_message(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        origin, _, rest = text.partition(" ")
        micros, _, scope_name = rest.partition(" ")
        if origin == self.origin:
            return
        scope = self._scopes.get(scope_name)
        if scope is None or not micros.isdigit():
            return
        self.pauses_received += 1
        scope.remote_pause(int(micros) / 1e6)

    # lifecycle ------------------------------------------------------------------------------

    def stats(self) -> SharedStats:
        if not self.active():
            state = "local"
        else:
            state = "idle" if self._client is None else "shared"
        return SharedStats(
            self.url.redacted,
            self.key,
            state,
            self.round_trips,
            self.grants,
            self.pauses_sent,
            self.pauses_received,
        )

    async def aclose(self) -> None:
        """Stop the listener and the scopes' grant tasks; close the connections."""
        self._closed = True
        tasks: list[asyncio.Task[Any] | None] = [self._listener, *self._tasks]
        for scope in self._scopes.values():
            tasks += scope.tasks()
        pending = [t for t in tasks if t is not None and not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"<SharedBackend {self.url.redacted} key={self.key!r} origin={self.origin}>"


def _secrets(url: str) -> list[str]:
    """The URL's password, as written and decoded (to scrub from a Redis error's text)."""
    from urllib.parse import parse_qs, unquote, urlsplit

    try:
        parts = urlsplit(url)
        found = [parts.password or "", *parse_qs(parts.query).get("password", [])]
    except ValueError:
        return []
    return [s for p in found if p for s in {p, unquote(p)}]
