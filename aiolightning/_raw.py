"""RawResponse: a response's status, headers and request id beside its decoded value.

``await client.api.auth.with_raw_response.whoami()`` returns a :class:`RawResponse` whose
``value`` is what ``client.api.auth.whoami()`` returns. The generated ``<Group>ApiRaw``
classes are one line per operation (``whoami = raw(AuthApi.whoami)``); the transport hands
the response over through a context variable, so nothing changes for ordinary calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine, Mapping
from contextvars import ContextVar
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

__all__ = ["RAW_CAPTURE", "REQUEST_ID_HEADERS", "RawGroup", "RawResponse", "raw", "request_id"]

A = TypeVar("A")
P = ParamSpec("P")
T = TypeVar("T")

#: headers that carry a request id, in the order they are looked up
REQUEST_ID_HEADERS = ("X-Request-Id", "Request-Id", "X-Amzn-RequestId", "X-Amz-Request-Id")


def request_id(headers: Mapping[str, str]) -> str | None:
    """The request id a server put in ``headers`` (see :data:`REQUEST_ID_HEADERS`), if any."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class RawResponse(Generic[T]):
    """One HTTP response: ``status``, ``headers`` (case-insensitive), ``request_id`` and the
    decoded ``value``. For the last attempt when a call was retried."""

    status: int
    reason: str | None
    headers: Mapping[str, str]
    method: str
    url: str
    value: T

    @property
    def request_id(self) -> str | None:
        return request_id(self.headers)

    def __repr__(self) -> str:
        return f"<RawResponse {self.method} {self.url} -> {self.status}>"


# set around a raw call; Transport.request appends each response it decodes
RAW_CAPTURE: ContextVar[list[RawResponse[Any]] | None] = ContextVar(
    "aiolightning_raw_capture", default=None
)


class RawGroup(Generic[A]):
    """Base of a generated ``<Group>ApiRaw``: the group whose operations it wraps."""

    def __init__(self, aio: A) -> None:
        self.aio = aio


async def _capture(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kw: Any) -> Any:
    sink: list[RawResponse[Any]] = []
    token = RAW_CAPTURE.set(sink)
    try:
        value = await fn(*args, **kw)
    finally:
        RAW_CAPTURE.reset(token)
    if not sink:
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} sent no request to capture")
    last = sink[-1]
    return last if last.value is value else dataclasses.replace(last, value=value)


class raw(Generic[P, T]):
    """``async def op(self, ...) -> T`` becomes ``async def op(...) -> RawResponse[T]``."""

    def __init__(self, fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]) -> None:
        self._fn = fn
        self.__doc__ = fn.__doc__

    @overload
    def __get__(
        self, obj: None, owner: type[Any]
    ) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, RawResponse[T]]]: ...
    @overload
    def __get__(
        self, obj: RawGroup[Any], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, RawResponse[T]]]: ...
    def __get__(self, obj: RawGroup[Any] | None, owner: type[Any]) -> Any:
        fn = self._fn
        if obj is None:

            def unbound(group: RawGroup[Any], /, *args: Any, **kwargs: Any) -> Any:
                return _capture(fn, group.aio, *args, **kwargs)

            unbound.__name__ = fn.__name__
            return unbound
        aio = obj.aio

        def bound(*args: Any, **kwargs: Any) -> Any:
            return _capture(fn, aio, *args, **kwargs)

        bound.__name__ = fn.__name__
        bound.__doc__ = self.__doc__
        return bound
