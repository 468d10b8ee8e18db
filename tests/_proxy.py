"""A small forward proxy of the suite's own on 127.0.0.1: CONNECT tunnels (https), absolute-URI
requests (http), optional Basic proxy authentication, and a log of everything it was asked.

```
async with ForwardProxy() as proxy:                       # or ForwardProxy(credentials=(u, p))
    await session.get(url, proxy=proxy.url)
    proxy.log  # [ProxyEntry(method="GET", host="127.0.0.1", port=..., path="/v1/...", status=200)]
```

An http request is forwarded on a fresh upstream connection and answered with ``Connection:
close``: one request per client connection, so each one is logged. A tunnel is logged once,
when it is set up; what travels inside it (TLS) the proxy cannot see.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["ForwardProxy", "ProxyEntry"]

# headers for this hop only: never forwarded upstream (RFC 9110 §7.6.1, and the proxy's own)
_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "upgrade"}
)
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ProxyEntry:
    """One request the proxy was asked to carry (a tunnel is one entry)."""

    method: str  # "CONNECT" for a tunnel
    host: str
    port: int
    path: str | None  # http: path and query; a tunnel: None
    status: int  # the proxy's answer: 200 tunnel up, 407, 502, or the origin's status
    user: str | None = None  # the authenticated proxy user (never the password)

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class ForwardProxy:
    """The proxy; ``url`` is set once started (``async with``)."""

    credentials: tuple[str, str] | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    log: list[ProxyEntry] = field(default_factory=list)
    url: str = ""
    _heads: list[str] = field(default_factory=list, repr=False)  # what clients sent, verbatim
    _server: asyncio.Server | None = field(default=None, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    def url_with_credentials(self, user: str | None = None, password: str | None = None) -> str:
        """``url`` with userinfo (the configured credentials unless others are given)."""
        u, p = self.credentials or ("", "")
        return self.url.replace("://", f"://{user or u}:{password or p}@", 1)

    def saw(self, secret: str) -> bool:
        """Whether ``secret`` reached the proxy in any request head (plain, or inside a Basic
        ``Proxy-Authorization``/``Authorization`` token): for "credentials never leak" tests."""
        for head in self._heads:
            if secret in head:
                return True
            for line in head.split("\r\n"):
                scheme, _, token = line.partition(":")[2].strip().partition(" ")
                if scheme.lower() == "basic":
                    with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                        if secret in base64.b64decode(token, validate=True).decode():
                            return True
        return False

    def targets(self, method: str | None = None) -> set[str]:
        """``host:port`` of every logged entry (only ``method``'s, if given)."""
        return {e.target for e in self.log if method is None or e.method == method}

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{port}"

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> ForwardProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._one_request(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # a client or an origin that went away, or a request the proxy cannot read
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        self._heads.append(head)
        request_line, *lines = head.split("\r\n")[:-2]
        method, target, _version = request_line.split(" ", 2)
        headers = [(k.strip(), v.strip()) for k, v in (h.split(":", 1) for h in lines)]
        if method == "CONNECT":
            host, _, port_text = target.rpartition(":")
            host, port, path = host.strip("[]"), int(port_text), None
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                await _answer(writer, 400, "absolute http URI expected")
                return
            host, port = url.hostname, url.port or 80
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")

        user = self._user(headers)
        if self.credentials is not None and user is None:
            self.log.append(ProxyEntry(method, host, port, path, 407))
            await _answer(writer, 407, "proxy credentials required", _PROXY_AUTHENTICATE)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            self.log.append(ProxyEntry(method, host, port, path, 502, user))
            await _answer(writer, 502, f"cannot connect to {host}:{port}")
            return
        try:
            if method == "CONNECT":
                self.log.append(ProxyEntry(method, host, port, None, 200, user))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
            else:
                assert path is not None
                kept = "".join(f"{k}: {v}\r\n" for k, v in headers if k.lower() not in _HOP)
                up_writer.write(
                    f"{method} {path} HTTP/1.1\r\n{kept}Connection: close\r\n\r\n".encode("latin-1")
                )
                body = asyncio.create_task(_copy(reader, up_writer))
                try:
                    await self._relay_response(up_reader, writer, method, host, port, path, user)
                finally:
                    body.cancel()
        finally:
            up_writer.close()

    async def _relay_response(
        self,
        up_reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        host: str,
        port: int,
        path: str,
        user: str | None,
    ) -> None:
        status_line, *lines = (
            (await up_reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]
        )
        self.log.append(ProxyEntry(method, host, port, path, int(status_line.split(" ")[1]), user))
        kept = "".join(f"{h}\r\n" for h in lines if h.split(":", 1)[0].strip().lower() not in _HOP)
        writer.write(f"{status_line}\r\n{kept}Connection: close\r\n\r\n".encode("latin-1"))
        await _copy(up_reader, writer)

    def _user(self, headers: list[tuple[str, str]]) -> str | None:
        """The user named by a valid ``Proxy-Authorization: Basic ...``, else None."""
        if self.credentials is None:
            return None
        for k, v in headers:
            scheme, _, token = v.partition(" ")
            if k.lower() != "proxy-authorization" or scheme.lower() != "basic":
                continue
            try:
                user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return user if (user, password) == self.credentials else None
        return None


_PROXY_AUTHENTICATE = 'Proxy-Authenticate: Basic realm="suite proxy"\r\n'


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str, extra: str = "") -> None:
    body = reason.encode()
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode("latin-1")
        + body
    )
    await writer.drain()


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Bytes from ``src`` to ``dst`` until EOF, then half-close ``dst``."""
    try:
        while chunk := await src.read(_CHUNK):
            dst.write(chunk)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except OSError:
        pass
