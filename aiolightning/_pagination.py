"""AsyncPager: walk a token-paged list operation item by item or page by page.

    pager = client.api.cloud_space.list_cloud_spaces_iter(project_id=pid)
    async for studio in pager: ...              # every item of every page
    async for page in pager.pages(): ...        # every page (the decoded response)
    first = await pager                          # just the first page
    everything = await pager.collect()           # all items in a list

Pages are fetched one at a time, on demand, each at most once. The walk stops when the next
token is empty or absent (an empty page with a next token is followed). A next token that was
already used (the page's own, or an earlier one) is a loop: the pages before it have been
yielded, then :class:`PaginationError` is raised -- stopping quietly would hand back a list
that looks complete and is not, and following the token would never end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

from ._errors import LightningError

__all__ = ["AsyncPager", "PaginationError"]

T = TypeVar("T")


class PaginationError(LightningError):
    """The server's page tokens loop: a next token was one already followed."""


class AsyncPager(Generic[T]):
    """Async iterator over the items of a token-paged operation.

    Parametrised by the item type only (``AsyncPager[V1CloudSpace]``); pages are ``Any``
    to the type checker (they are the decoded response Structs).

    Args:
        fetch: ``await fetch(token)`` returns one page; ``token`` is None for the first page.
        items: the list of items on a page (None is treated as empty).
        next_token: the token of the next page ("" or None on the last page); one already
            followed raises :class:`PaginationError` (after the pages before it).
        max_pages: optional bound on the number of pages fetched.
    """

    __slots__ = ("_fetch", "_items", "_max_pages", "_next_token")

    def __init__(
        self,
        fetch: Callable[[str | None], Awaitable[Any]],
        items: Callable[[Any], list[T] | None],
        next_token: Callable[[Any], str | None],
        *,
        max_pages: int | None = None,
    ) -> None:
        self._fetch = fetch
        self._items = items
        self._next_token = next_token
        self._max_pages = max_pages

    async def pages(self) -> AsyncIterator[Any]:
        """Yield each page in order, fetching the next one only when asked."""
        token: str | None = None
        seen: set[str] = set()
        count = 0
        while True:
            page = await self._fetch(token)
            count += 1
            yield page
            nxt = self._next_token(page)
            if not nxt:
                return
            if nxt in seen or nxt == token:
                raise PaginationError(
                    f"the server's page tokens loop: after {count} page(s) it returned page "
                    f"token {nxt[:32]!r} again (the listing would never end)"
                )
            if self._max_pages is not None and count >= self._max_pages:
                return
            seen.add(nxt)
            token = nxt

    async def _iter_items(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in self._items(page) or ():
                yield item

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iter_items()

    async def first_page(self) -> Any:
        """Only the first page."""
        return await self._fetch(None)

    def __await__(self) -> Generator[Any, None, Any]:
        return self.first_page().__await__()

    async def collect(self, limit: int | None = None) -> list[T]:
        """All items (at most ``limit``) in a list."""
        out: list[T] = []
        async for item in self:
            out.append(item)
            if limit is not None and len(out) >= limit:
                break
        return out

    def __repr__(self) -> str:
        return f"<AsyncPager {getattr(self._fetch, '__qualname__', self._fetch)!r}>"
