"""The README's retry table says what the code does: every status row of it is replayed
against a real server, for every method it names, and the attempts counted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from _servers import json_response, serve
from aiohttp import web

from aiolightning import AsyncLightning, LightningError, RetryPolicy
from aiolightning._limiter import LimiterConfig

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parent.parent / "README.md"
CREDS: dict[str, Any] = {"user_id": "user-123", "api_key": "key-abc"}


def status_rows() -> list[tuple[list[int], bool, dict[str, str]]]:
    """(statuses, with Retry-After, {method: "retried" | "raised"}) of each status row."""
    text = README.read_text()
    start = text.index("| answer | GET, HEAD, OPTIONS, PUT, DELETE | POST, PATCH |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        answer, idem, other = (c.strip().strip("*") for c in line.strip("|").split("|"))
        head = answer.split("(")[0]  # "408, 429, 503 with Retry-After (the server did not act)"
        codes = re.findall(r"\b([1-5]\d\d)\b", head) or re.findall(r"\b([1-5]\d\d)\b", answer)
        statuses = [int(s) for s in codes]
        if not statuses or "auth=" in answer:
            continue  # timeouts and connections: tests/test_retry.py; 401 renewal: test_auth
        outcome = {m: idem for m in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")}
        outcome |= {m: other.strip("*") for m in ("POST", "PATCH")}
        rows.append((statuses, "**with** `Retry-After`" in answer, outcome))
    return rows


def test_the_table_has_the_rows_this_test_replays() -> None:
    rows = status_rows()
    assert [r[0] for r in rows] == [
        [408, 429, 503],
        [500, 502, 504, 503],
        [400, 401, 403, 404, 409, 501],
    ]
    assert {v for _, _, o in rows for v in o.values()} == {"retried", "raised"}


CASES = [
    (status, with_ra, method, outcome[method])
    for statuses, with_ra, outcome in status_rows()
    for status in statuses
    for method in outcome
]


@pytest.mark.parametrize(("status", "with_ra", "method", "said"), CASES)
async def test_the_readme_retry_table_is_what_the_code_does(
    status: int, with_ra: bool, method: str, said: str
) -> None:
    seen = {"n": 0}

    async def once(request: web.Request) -> web.Response:
        seen["n"] += 1
        if seen["n"] == 1:
            headers = {"Retry-After": "0"} if with_ra else {}
            if method == "HEAD":
                return web.Response(status=status, headers=headers)
            return json_response({"code": 2, "message": "from the table"}, status, headers)
        return json_response({"ok": True})

    policy = RetryPolicy(base=0.001, jitter=False)
    async with serve(catch_all=once) as (url, rec):
        async with AsyncLightning(
            url, retry=policy, limits=LimiterConfig(pause_jitter=0.0), **CREDS
        ) as c:
            try:
                await c.transport.request(method, "/v1/table")
                got = "retried"
            except LightningError:
                got = "raised"
    assert got == said, f"{method} answered {status} (Retry-After: {with_ra})"
    assert rec.count() == (2 if said == "retried" else 1)
