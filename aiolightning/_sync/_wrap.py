"""The pieces generated sync wrappers are made of: blocking methods, iterators and pagers.

A generated wrapper class lists one line per async method, e.g. ``get = blocking(Studios.get)``;
the descriptor turns ``Studios.get``'s type ``(self, name: str, ...) -> Coroutine[.., Studio]``
into ``(name: str, ...) -> Studio`` for the type checker, and at run time into a function that
runs the coroutine on the client's loop thread and waits for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

if TYPE_CHECKING:
    from .._pagination import AsyncPager
    from ._portal import LoopThread

__all__ = ["Pager", "Synced", "blocking", "blocking_iter", "blocking_pager", "on_loop"]

A = TypeVar("A")
P = ParamSpec("P")
T = TypeVar("T")


class Synced(Generic[A]):
    """Base of a generated wrapper: ``aio`` is the async object, its methods run on ``portal``."""

    def __init__(self, portal: LoopThread, aio: A) -> None:
        self._portal = portal
        self.aio = aio

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self.aio!r}>"


class _Descriptor(Generic[P, T]):
    """A method of a wrapper: built once per wrapper instance, then cached on it."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn
        self._name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Synced[Any], owner: type[Any]) -> Callable[P, T]: ...
    def __get__(self, obj: Synced[Any] | None, owner: type[Any]) -> Self | Callable[P, T]:
        if obj is None:
            return self
        method = self._bind(self._fn, obj.aio, obj._portal)
        method.__name__ = self._name
        method.__qualname__ = f"{type(obj).__name__}.{self._name}"
        method.__doc__ = self.__doc__
        obj.__dict__[self._name] = method  # later lookups find it without the descriptor
        return method

    def _bind(self, fn: Callable[..., Any], aio: Any, portal: LoopThread) -> Callable[P, T]:
        raise NotImplementedError


class blocking(_Descriptor[P, T]):
    """``async def m(self, ...) -> T`` becomes ``def m(...) -> T``."""

    def __init__(self, fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]) -> None:
        super().__init__(fn)

    def _bind(self, fn: Callable[..., Any], aio: Any, portal: LoopThread) -> Callable[P, T]:
        run = portal.run

        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            result: T = run(fn(aio, *args, **kwargs))
            return result

        return method


class blocking_iter(_Descriptor[P, Iterator[T]]):
    """A method returning an async iterator becomes one returning a plain iterator."""

    def __init__(self, fn: Callable[Concatenate[Any, P], AsyncIterator[T]]) -> None:
        super().__init__(fn)

    def _bind(
        self, fn: Callable[..., Any], aio: Any, portal: LoopThread
    ) -> Callable[P, Iterator[T]]:
        def method(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
            return portal.iterate(fn(aio, *args, **kwargs))

        return method


class blocking_pager(_Descriptor[P, "Pager[T]"]):
    """A method returning an :class:`AsyncPager` becomes one returning a :class:`Pager`."""

    def __init__(self, fn: Callable[Concatenate[Any, P], AsyncPager[T]]) -> None:
        super().__init__(fn)

    def _bind(self, fn: Callable[..., Any], aio: Any, portal: LoopThread) -> Callable[P, Pager[T]]:
        def method(*args: P.args, **kwargs: P.kwargs) -> Pager[T]:
            return Pager(portal, fn(aio, *args, **kwargs))

        return method


class on_loop(_Descriptor[P, T]):
    """A plain method of the async object, called on the loop's thread (its state lives there)."""

    def __init__(self, fn: Callable[Concatenate[Any, P], T]) -> None:
        super().__init__(fn)

    def _bind(self, fn: Callable[..., Any], aio: Any, portal: LoopThread) -> Callable[P, T]:
        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            result: T = portal.call(fn, aio, *args, **kwargs)
            return result

        return method


class Pager(Generic[T]):
    """The blocking face of an :class:`~aiolightning.AsyncPager`.

    ``for item in pager`` walks every page; ``pager.pages()``, ``pager.first_page()`` and
    ``pager.collect(limit)`` as on the async pager."""

    __slots__ = ("_pager", "_portal")

    def __init__(self, portal: LoopThread, pager: AsyncPager[T]) -> None:
        self._portal = portal
        self._pager = pager

    def __iter__(self) -> Iterator[T]:
        return self._portal.iterate(aiter(self._pager))

    def pages(self) -> Iterator[Any]:
        return self._portal.iterate(self._pager.pages())

    def first_page(self) -> Any:
        return self._portal.run(self._pager.first_page())

    def collect(self, limit: int | None = None) -> list[T]:
        return self._portal.run(self._pager.collect(limit))

    def __repr__(self) -> str:
        return f"<Pager over {self._pager!r}>"
