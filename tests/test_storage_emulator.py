"""The emulator's artifacts storage API, exercised over HTTP on a bare aiohttp app."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aiolightning.emulator._config import Counters, EmulatorConfig
from aiolightning.emulator._storage import ArtifactStore

pytestmark = pytest.mark.anyio

PID = "proj-1"
BASE = f"/v1/projects/{PID}/artifacts"
STUDIO_BASE = f"/v1/projects/{PID}/artifacts/cloudspaces/studio-1"


class Server:
    def __init__(self, store: ArtifactStore, url: str, session: aiohttp.ClientSession) -> None:
        self.store = store
        self.url = url
        self.http = session

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.http.post(self.url + path, json=body) as r:
            return r.status, await r.json(content_type=None)

    async def put(self, url: str, data: bytes, **kw: Any) -> aiohttp.ClientResponse:
        async with self.http.put(url, data=data, **kw) as r:
            await r.read()
            return r

    async def upload(self, path: str, data: bytes, part_size: int, base: str = BASE) -> str:
        n = max(1, -(-len(data) // part_size))
        if n == 1:
            status, body = await self.post(
                base + "/blobs", {"blobs": [{"path": path}], "cluster_id": "c"}
            )
            assert status == 200, body
            r = await self.put(body["results"][0]["urls"][0]["url"], data)
            assert r.status == 200
            return str(r.headers["ETag"])
        status, body = await self.post(
            base + "/blobs",
            {"blobs": [{"path": path, "parts": n, "part_size": part_size}], "cluster_id": "c"},
        )
        assert status == 200, body
        res = body["results"][0]
        parts = []
        for u in res["urls"]:
            k = u["part_number"]
            chunk = data[(k - 1) * part_size : k * part_size]
            r = await self.put(u["url"], chunk)
            assert r.status == 200
            assert r.headers["ETag"] == f'"{hashlib.md5(chunk).hexdigest()}"'
            parts.append({"part_number": k, "etag": r.headers["ETag"]})
        status, body = await self.post(
            base + "/blobs/complete",
            {
                "blobs": [{"path": path, "upload_id": res["upload_id"], "parts": parts}],
                "cluster_id": "c",
            },
        )
        assert status == 200, body
        return ""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    config = EmulatorConfig()
    counters = Counters()
    url = ""
    store = ArtifactStore(tmp_path / "store", b"secret", config, counters, lambda: url)
    app = web.Application()

    for method, path, handler in store.routes():
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        yield Server(store, url, session)
    await store.close()
    await runner.cleanup()


async def test_single_part_round_trip_head_and_ranges(server: Server) -> None:
    data = bytes(range(256)) * 40
    etag = await server.upload("dir/a.bin", data, part_size=1 << 20)
    assert etag == f'"{hashlib.md5(data).hexdigest()}"'
    async with server.http.get(server.url + BASE + "/blobs/dir/a.bin") as r:
        assert r.status == 200
        assert await r.read() == data
    async with server.http.head(server.url + BASE + "/blobs/dir/a.bin") as r:
        assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)
    async with server.http.get(
        server.url + BASE + "/blobs/dir/a.bin", headers={"Range": "bytes=10-19"}
    ) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
        assert await r.read() == data[10:20]
    async with server.http.get(
        server.url + BASE + "/blobs/dir/a.bin", headers={"Range": "bytes=-5"}
    ) as r:
        assert r.status == 206 and await r.read() == data[-5:]
    async with server.http.get(
        server.url + BASE + "/blobs/dir/a.bin", headers={"Range": f"bytes={len(data)}-"}
    ) as r:
        assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"
    async with server.http.get(server.url + BASE + "/blobs/nope") as r:
        assert r.status == 404
        assert (await r.json())["code"] == 5


async def test_empty_file(server: Server) -> None:
    await server.upload("empty", b"", part_size=10)
    async with server.http.get(server.url + BASE + "/blobs/empty") as r:
        assert r.status == 200 and await r.read() == b""


async def test_multipart_round_trip_and_range_across_parts(server: Server) -> None:
    data = hashlib.sha256(b"x").digest() * 1000  # 32,000 bytes
    await server.upload("big.bin", data, part_size=7000)
    assert server.store.counters.get("storage:parts_put") == 5
    assert server.store.counters.get("storage:uploads_completed") == 1
    assert server.store.open_uploads() == []
    async with server.http.get(server.url + BASE + "/blobs/big.bin") as r:
        assert await r.read() == data
        assert r.headers["ETag"].endswith('-5"')
    async with server.http.get(
        server.url + BASE + "/blobs/big.bin", headers={"Range": "bytes=6990-14010"}
    ) as r:
        assert r.status == 206 and await r.read() == data[6990:14011]


async def test_complete_rejects_wrong_etag_and_missing_parts(server: Server) -> None:
    status, body = await server.post(
        BASE + "/blobs", {"blobs": [{"path": "x", "parts": 2, "part_size": 4}], "cluster_id": "c"}
    )
    res = body["results"][0]
    r1 = await server.put(res["urls"][0]["url"], b"abcd")
    blob = {"path": "x", "upload_id": res["upload_id"]}
    status, body = await server.post(
        BASE + "/blobs/complete",
        {"blobs": [{**blob, "parts": [{"part_number": 1, "etag": '"0000"'}]}]},
    )
    assert status == 400 and "etag" in body["message"]
    status, body = await server.post(
        BASE + "/blobs/complete",
        {"blobs": [{**blob, "parts": [{"part_number": 1, "etag": r1.headers["ETag"]}]}]},
    )
    assert status == 400
    assert len(server.store.open_uploads()) == 1
    # part 2 listed but never PUT (its answer "lost" by a client that assumed it): S3's
    # InvalidPart naming it, and nothing committed; the upload stays open for a retry
    part2 = {"part_number": 2, "etag": f'"{hashlib.md5(b"efgh").hexdigest()}"'}
    both = [{"part_number": 1, "etag": r1.headers["ETag"]}, part2]
    status, body = await server.post(BASE + "/blobs/complete", {"blobs": [{**blob, "parts": both}]})
    assert status == 400 and body["message"].startswith("InvalidPart: part 2 ")
    assert server.store.counters.get("storage:completes_refused") == 2
    assert server.store.counters.get("storage:uploads_completed") == 0
    async with server.http.head(server.url + BASE + "/blobs/x") as r:
        assert r.status == 404
    await server.put(res["urls"][1]["url"], b"efgh")
    status, body = await server.post(BASE + "/blobs/complete", {"blobs": [{**blob, "parts": both}]})
    assert status == 200, body
    assert server.store.open_uploads() == []


async def test_presigned_url_signature_expiry_and_no_auth_needed(server: Server) -> None:
    server.store.config.faults.url_ttl = 0.0
    status, body = await server.post(
        BASE + "/blobs", {"blobs": [{"path": "x", "parts": 2, "part_size": 4}], "cluster_id": "c"}
    )
    res = body["results"][0]
    url = res["urls"][0]["url"]
    import anyio

    await anyio.sleep(1.1)
    r = await server.put(url, b"abcd")
    assert r.status == 403 and "expired" in (await _text(server, url, b"abcd")).lower()
    # re-sign just that part
    server.store.config.faults.url_ttl = 60
    status, body = await server.post(
        BASE + "/blobs",
        {
            "blobs": [{"path": "x", "upload_id": res["upload_id"], "part_numbers": [1]}],
            "cluster_id": "c",
        },
    )
    assert status == 200 and len(body["results"][0]["urls"]) == 1
    fresh = body["results"][0]["urls"][0]["url"]
    tampered = fresh.replace(
        "/parts/" + res["upload_id"] + "/1", "/parts/" + res["upload_id"] + "/2"
    )
    assert (
        await server.put(tampered, b"abcd", headers={"Authorization": "Basic eDp5"})
    ).status == 403
    assert server.store.counters.get("storage:authorization_header_seen") == 1
    assert (await server.put(fresh, b"abcd")).status == 200
    assert server.store.counters.get("storage:authorization_header_seen") == 1


async def _text(server: Server, url: str, data: bytes) -> str:
    async with server.http.put(url, data=data) as r:
        return await r.text()


async def test_new_upload_replaces_stale_one(server: Server) -> None:
    for _ in range(2):
        status, _body = await server.post(
            BASE + "/blobs",
            {"blobs": [{"path": "x", "parts": 2, "part_size": 4}], "cluster_id": "c"},
        )
        assert status == 200
    assert len(server.store.open_uploads()) == 1
    assert server.store.counters.get("storage:uploads_aborted") == 1


async def test_part_failure_injection(server: Server) -> None:
    server.store.config.faults.part_failure_rate = 1.0
    _status, body = await server.post(
        BASE + "/blobs", {"blobs": [{"path": "x", "parts": 2, "part_size": 4}], "cluster_id": "c"}
    )
    r = await server.put(body["results"][0]["urls"][0]["url"], b"abcd")
    assert r.status == 500
    assert server.store.counters.get("storage:parts_failed") == 1


async def test_cluster_id_required_on_drive_but_not_studio(server: Server) -> None:
    status, body = await server.post(BASE + "/blobs", {"blobs": [{"path": "uploads/x"}]})
    assert status == 400 and "ClusterID" in body["message"]
    status, body = await server.post(STUDIO_BASE + "/blobs", {"blobs": [{"path": "x"}]})
    assert status == 200


async def test_trees_listing_pagination_and_delete(server: Server) -> None:
    names = [f"d/f{i:02}" for i in range(7)] + ["d/sub/a", "d/sub/b", "d/sub2/c", "d/z", "top"]
    for n in names:
        await server.upload(n, n.encode(), part_size=100)

    async def listing(path: str, recursive: bool, at_most: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = ""
        while True:
            q = f"?atMost={at_most}&recursive={'true' if recursive else 'false'}"
            if cursor:
                q += f"&cursor={cursor}"
            async with server.http.get(server.url + BASE + "/trees/" + path + q) as r:
                page = await r.json()
            assert len(page["tree"]) <= at_most
            out += page["tree"]
            cursor = page["nextCursor"]
            if not cursor:
                return out

    flat = await listing("d", False, 3)
    assert [(e["path"], e["type"]) for e in flat] == [(f"f{i:02}", "blob") for i in range(7)] + [
        ("sub", "tree"),
        ("sub2", "tree"),
        ("z", "blob"),
    ]
    assert all(isinstance(e["size"], int) for e in flat)
    deep = await listing("d", True, 2)
    assert [e["path"] for e in deep] == [n[2:] for n in names if n.startswith("d/")]
    assert all(e["type"] == "blob" and e["lastModified"].endswith("Z") for e in deep)
    root = await listing("", False, 100)
    assert [e["path"] for e in root] == ["d", "top"]

    async with server.http.delete(server.url + BASE + "/trees/d/sub") as r:
        assert r.status == 204
    async with server.http.delete(server.url + BASE + "/blobs/top") as r:
        assert r.status == 204
    async with server.http.delete(server.url + BASE + "/blobs/top") as r:
        assert r.status == 404
    assert [e["path"] for e in await listing("", True, 100)] == [
        n for n in names if not n.startswith("d/sub/") and n != "top"
    ]


async def test_incomplete_uploads_expire_with_their_parts(server: Server) -> None:
    import time

    status, body = await server.post(
        BASE + "/blobs", {"blobs": [{"path": "x", "parts": 2, "part_size": 4}], "cluster_id": "c"}
    )
    res = body["results"][0]
    upload_id = res["upload_id"]
    assert (await server.put(res["urls"][0]["url"], b"abcd")).status == 200
    (up,) = server.store.open_uploads()
    assert (up.directory / "1").exists()
    # not yet: the default TTL is a day
    assert server.store.expire_uploads(now=time.time() + 3600) == 0
    assert server.store.expire_uploads(now=time.time() + 86401) == 1
    assert server.store.open_uploads() == []
    assert not up.directory.exists()
    assert server.store.counters.get("storage:uploads_expired") == 1
    # the upload id is gone everywhere: part PUT, re-sign, complete
    r = await server.put(res["urls"][1]["url"], b"efgh")
    assert r.status == 404 and not up.directory.exists()
    status, body = await server.post(
        BASE + "/blobs",
        {"blobs": [{"path": "x", "upload_id": upload_id, "part_numbers": [2]}], "cluster_id": "c"},
    )
    assert status == 404
    status, body = await server.post(
        BASE + "/blobs/complete",
        {"blobs": [{"path": "x", "upload_id": upload_id, "parts": [{"part_number": 1}]}]},
    )
    assert status == 404


async def test_tiny_upload_ttl_expires_on_the_next_request(server: Server) -> None:
    import anyio

    server.store.config.faults.upload_ttl = 0.05
    for path in ("a", "b"):
        status, _body = await server.post(
            BASE + "/blobs",
            {"blobs": [{"path": path, "parts": 2, "part_size": 4}], "cluster_id": "c"},
        )
        assert status == 200
    await anyio.sleep(0.2)
    # the next upload request sweeps the old ones; the new one is kept
    status, _body = await server.post(
        BASE + "/blobs", {"blobs": [{"path": "c", "parts": 2, "part_size": 4}], "cluster_id": "c"}
    )
    assert server.store.counters.get("storage:uploads_expired") == 2
    server.store.config.faults.upload_ttl = 0  # never
    assert [u.path for u in server.store.open_uploads()] == ["c"]
    assert len(list((server.store.root / "uploads").iterdir())) == 1


async def test_redirected_downloads(server: Server) -> None:
    import anyio

    data = bytes(range(256)) * 10
    await server.upload("r/a.bin", data, part_size=1 << 20)
    server.store.config.faults.redirect_downloads = True
    blob = server.url + BASE + "/blobs/r/a.bin"
    async with server.http.get(blob, allow_redirects=False) as r:
        assert r.status == 307
        location = r.headers["Location"]
    assert "/_storage/blobs/" in location and "Signature=" in location
    async with server.http.get(location, headers={"Range": "bytes=5-9"}) as r:
        assert r.status == 206 and await r.read() == data[5:10]
    async with server.http.get(blob) as r:  # followed
        assert r.status == 200 and await r.read() == data and r.history[0].status == 307
    async with server.http.head(blob, allow_redirects=True) as r:  # to a HEAD-signed URL
        assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)
    async with server.http.head(location) as r:  # a GET URL does not sign a HEAD
        assert r.status == 403
    async with server.http.get(location, headers={"Authorization": "Basic eDp5"}) as r:
        assert r.status == 200
    assert server.store.counters.get("storage:authorization_header_seen") == 1
    async with server.http.get(server.url + BASE + "/blobs/r/nope", allow_redirects=False) as r:
        assert r.status == 404  # a missing blob is not redirected
    # an expired URL is refused; asking the API again gives a fresh one
    server.store.config.faults.url_ttl = 0.0
    async with server.http.get(blob, allow_redirects=False) as r:
        short = r.headers["Location"]
    await anyio.sleep(1.1)
    async with server.http.get(short) as r:
        assert r.status == 403 and "expired" in (await r.text()).lower()
    server.store.config.faults.url_ttl = 60
    async with server.http.get(blob, allow_redirects=False) as r:
        fresh = r.headers["Location"]
    assert fresh != short
    async with server.http.get(fresh) as r:
        assert r.status == 200 and await r.read() == data
    assert server.store.counters.get("storage:downloads_redirected") == 5
