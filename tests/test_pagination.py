"""AsyncPager over a token-paged endpoint of a real server."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from _servers import json_response, serve
from aiohttp import web

from aiolightning import AsyncLightning, AsyncPager, PaginationError

pytestmark = pytest.mark.anyio

CREDS: dict[str, Any] = {"user_id": "user-123", "api_key": "key-abc"}


class Item(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    id: str | None = None


class ListResponse(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    items: list[Item] | None = None
    next_page_token: str | None = msgspec.field(default=None, name="nextPageToken")


PAGES = {
    "": (["a", "b"], "t1"),
    "t1": (["c", "d"], "t2"),
    "t2": (["e"], ""),
}


async def list_items(request: web.Request) -> web.Response:
    token = request.query.get("pageToken", "")
    if token == "loop":
        return json_response({"items": [{"id": "z"}], "nextPageToken": "loop"})
    ids, nxt = PAGES[token]
    body: dict[str, Any] = {"items": [{"id": i} for i in ids]}
    if nxt or token == "t1":
        body["nextPageToken"] = nxt
    return json_response(body)


def make_pager(c: AsyncLightning, start: str | None = None) -> AsyncPager[Item]:
    async def fetch(token: str | None) -> ListResponse:
        return await c.transport.request(
            "GET", "/v1/items", params={"pageToken": token or start}, response_type=ListResponse
        )

    return AsyncPager(fetch, lambda p: p.items, lambda p: p.next_page_token)


async def test_walks_three_pages_and_stops_on_empty_token() -> None:
    async with serve({("GET", "/v1/items"): list_items}) as (url, rec):
        async with AsyncLightning(url, **CREDS) as c:
            ids = [item.id async for item in make_pager(c)]
            assert ids == ["a", "b", "c", "d", "e"]
            assert rec.count() == 3
            assert [r["query"] for r in rec.requests] == [
                [],
                [("pageToken", "t1")],
                [("pageToken", "t2")],
            ]

            pages = [p async for p in make_pager(c).pages()]
            assert [len(p.items) for p in pages] == [2, 2, 1]

            first = await make_pager(c)
            assert [i.id for i in first.items] == ["a", "b"]
            assert [i.id for i in await make_pager(c).collect(limit=3)] == ["a", "b", "c"]


async def test_a_repeated_token_is_an_error_after_the_pages_before_it() -> None:
    ids: list[str | None] = []
    async with serve({("GET", "/v1/items"): list_items}) as (url, rec):
        async with AsyncLightning(url, **CREDS) as c:
            with pytest.raises(PaginationError, match="'loop' again"):
                async for item in make_pager(c, start="loop"):
                    ids.append(item.id)
    assert ids == ["z", "z"]  # first page (token None->"loop"), then "loop" again -> error
    assert rec.count() == 2


async def test_absent_items_and_absent_token() -> None:
    calls: list[str | None] = []

    async def fetch(token: str | None) -> dict[str, Any]:
        calls.append(token)
        return {}

    pager: AsyncPager[int] = AsyncPager(fetch, lambda p: p.get("items"), lambda p: p.get("next"))
    assert [x async for x in pager] == []
    assert calls == [None]
