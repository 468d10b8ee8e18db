"""A small forward proxy on 127.0.0.1 for the proxy tests: CONNECT tunnels (https targets)
and absolute-URI requests (http targets), optional Basic proxy credentials, and a log of
every request it saw. One request per connection for http targets (it sends them upstream
with ``Connection: close``), so the log has one line per request."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class ProxyLog:
    """(method, target) per request: target is ``host:port`` for CONNECT, else the URL."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    refused: int = 0  # requests answered 407

    def methods(self, method: str) -> list[str]:
        return [t for m, t in self.requests if m == method]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@asynccontextmanager
async def forward_proxy(
    *,
    user: str | None = None,
    password: str | None = None,
    hosts: dict[str, str] | None = None,
) -> AsyncIterator[tuple[str, ProxyLog]]:
    """Serve a proxy on 127.0.0.1; yields (``http://127.0.0.1:port``, log). ``hosts`` maps
    names only the proxy can resolve (a client that went around it could not connect)."""
    names = hosts or {}
    log = ProxyLog()
    expected = None
    if user is not None:
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if expected is not None and headers.get("proxy-authorization") != expected:
            log.refused += 1
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n'
                b"Connection: close\r\n\r\n"
            )
            await writer.drain()
            writer.close()
            return
        log.requests.append((method, target))
        log.headers.append(headers)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            host = names.get(host, host.strip("[]"))
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            url = urlsplit(target)
            host = names.get(url.hostname or "", url.hostname or "")
            up_reader, up_writer = await asyncio.open_connection(host, url.port or 80)
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            kept = [
                line
                for line in lines[1:]
                if line
                and line.split(":", 1)[0].strip().lower()
                not in ("proxy-authorization", "connection", "proxy-connection", "keep-alive")
            ]
            up_writer.write(
                "\r\n".join(
                    [f"{method} {path} {version}", *kept, "Connection: close", "", ""]
                ).encode("latin-1")
            )
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
