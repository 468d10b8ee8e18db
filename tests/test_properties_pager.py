"""Property tests of :class:`AsyncPager` against a small loopback server of the test's own
serving generated page sequences: loops, empty pages with a next token, repeated tokens,
missing tokens. Every page is fetched once, every item yielded once, the walk ends, and a
loop is a :class:`PaginationError` raised after the pages before it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _servers import json_response, serve
from aiohttp import web
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aiolightning import AsyncLightning, AsyncPager, PaginationError

CREDS: dict[str, Any] = {"user_id": "user-123", "api_key": "key-abc"}

tokens = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=6)


@st.composite
def page_graphs(draw: st.DrawFn) -> tuple[list[str], list[list[str]], list[int | str | None]]:
    """Pages 0..n-1 reached by distinct tokens (page 0 by none); each page's next is another
    page (a later one, an earlier one: a loop, itself: a repeated token), or the end as
    "" or as no field at all."""
    n = draw(st.integers(1, 6))
    toks = ["", *draw(st.lists(tokens, min_size=n - 1, max_size=n - 1, unique=True))]
    items = [[f"p{i}-{j}" for j in range(draw(st.integers(0, 3)))] for i in range(n)]
    nexts: list[int | str | None] = [
        draw(st.one_of(st.integers(0, n - 1), st.none(), st.just(""))) for _ in range(n)
    ]
    return toks, items, nexts


def expected_walk(nexts: list[int | str | None]) -> tuple[list[int], bool]:
    """The pages a correct pager visits, and whether it must end with a loop error.

    A pager knows tokens, not pages: the first page is fetched with no token, so a token
    leading back to it ("@first-page@") is new the first time it is handed out."""
    order, followed, page = [0], {-1}, 0  # -1: "no token"
    while isinstance(nxt := nexts[page], int):
        if nxt in followed:
            return order, True
        followed.add(nxt)
        order.append(nxt)
        page = nxt
    return order, False


async def walk(
    graph: tuple[list[str], list[list[str]], list[int | str | None]],
) -> tuple[list[str], list[str | None], PaginationError | None]:
    toks, items, nexts = graph
    # page 0 is the first page (no token) but, as the target of a next, it is reached by
    # its own token: "@first-page@" (a server handing back a token that leads to page 0 again)
    by_token = {(t or "@first-page@"): i for i, t in enumerate(toks)}

    async def handler(request: web.Request) -> web.Response:
        page = by_token[request.query.get("pageToken", "@first-page@")]
        body: dict[str, Any] = {"items": [{"id": x} for x in items[page]]}
        nxt = nexts[page]
        if isinstance(nxt, int):
            body["nextPageToken"] = toks[nxt] or "@first-page@"
        elif nxt == "":
            body["nextPageToken"] = ""
        return json_response(body)

    got: list[str] = []
    error: PaginationError | None = None
    async with serve(catch_all=handler) as (url, rec):
        async with AsyncLightning(url, **CREDS) as c:

            async def fetch(token: str | None) -> Any:
                params = {"pageToken": token} if token is not None else {}
                return await c.transport.request("GET", "/v1/items", params=params)

            pager: AsyncPager[dict[str, str]] = AsyncPager(
                fetch, lambda p: p.get("items"), lambda p: p.get("nextPageToken")
            )
            try:
                async for item in pager:
                    got.append(item["id"])
            except PaginationError as e:
                error = e
        asked = [dict(r["query"]).get("pageToken") for r in rec.requests]
    return got, asked, error


@settings(max_examples=60, deadline=None)
@given(page_graphs())
@example(([""], [["a"]], [0]))  # a token back to the first page, then that token again
@example(([""], [[]], [None]))  # one empty page, no token field
@example((["", *list("abc")], [[], [], ["x"], []], [1, 2, 3, ""]))  # empty pages with tokens
@example((["", *list("ab")], [["x"], ["y"], ["z"]], [1, 2, 1]))  # a token repeated later
@example((["", *list("ab")], [["x"], ["y"], ["z"]], [1, 1, None]))  # a page names itself
def test_every_page_once_then_the_end_or_a_loop_error(
    graph: tuple[list[str], list[list[str]], list[int | str | None]],
) -> None:
    toks, items, nexts = graph
    order, loops = expected_walk(nexts)
    got, asked, error = asyncio.run(walk(graph))
    assert got == [x for page in order for x in items[page]]  # each item once, in order
    assert asked == [None] + [toks[p] or "@first-page@" for p in order[1:]]  # each token once
    assert (error is not None) == loops
    if error is not None:
        assert "again" in str(error)


@pytest.mark.anyio
async def test_max_pages_stops_quietly() -> None:
    calls: list[str | None] = []

    async def fetch(token: str | None) -> dict[str, Any]:
        calls.append(token)
        return {"items": [len(calls)], "next": f"t{len(calls)}"}

    pager: AsyncPager[int] = AsyncPager(
        fetch, lambda p: p["items"], lambda p: p["next"], max_pages=3
    )
    assert await pager.collect() == [1, 2, 3]
    assert calls == [None, "t1", "t2"]
