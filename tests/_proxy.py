"""A small forward proxy of the suite's own on 127.0.0.1: CONNECT tunnels (https), absolute-URI
requests (http), optional Basic proxy authentication, optional TLS inspection, and a log of
everything it was asked.

```
async with ForwardProxy() as proxy:                       # or ForwardProxy(credentials=(u, p))
    await session.get(url, proxy=proxy.url)
    proxy.log  # [ProxyEntry(method="GET", host="127.0.0.1", port=..., path="/v1/...", status=200)]
    proxy.log[0].header("Range")  # what was forwarded (hop-by-hop headers dropped)
```

An http request is forwarded on a fresh upstream connection and answered with ``Connection:
close``: one request per client connection, so each one is logged. A tunnel is logged once,
when it is set up: what travels inside it (TLS) the proxy cannot see -- unless it inspects
TLS, as corporate proxies do: with ``inspect=True`` it ends the client's TLS with a
certificate of its own CA (``proxy.ca_file``; clients must trust it, ``bundle_with`` writes a
bundle of it and other CAs), reads the one request inside, logs it (``inspected=True``) and
forwards it over a new TLS connection to the origin, verified against ``upstream_ca``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import shutil
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from aiolightning.emulator._tls import TLSFiles, make_tls_files

__all__ = ["ForwardProxy", "ProxyEntry"]

# headers for this hop only: never forwarded upstream (RFC 9110 §7.6.1, and the proxy's own)
_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "upgrade"}
)
_CHUNK = 256 * 1024
Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class ProxyEntry:
    """One request the proxy was asked to carry (a tunnel is one entry)."""

    method: str  # "CONNECT" for a tunnel
    host: str
    port: int
    path: str | None  # http: path and query; a tunnel: None
    status: int  # the proxy's answer: 200 tunnel up, 407, 502, or the origin's status
    user: str | None = None  # the authenticated proxy user (never the password)
    inspected: bool = False  # read inside a tunnel whose TLS the proxy ended (inspect=True)
    # the request's headers as forwarded (hop-by-hop ones, Proxy-Authorization included,
    # dropped); kept out of reprs: an origin's Authorization can be among them
    headers: Headers = field(default_factory=list, repr=False, compare=False)

    def header(self, name: str) -> str | None:
        """The forwarded header ``name`` (any case), or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class ForwardProxy:
    """The proxy; ``url`` (and with ``inspect``, ``ca_file``) are set once started."""

    credentials: tuple[str, str] | None = field(default=None, repr=False)
    inspect: bool = False
    upstream_ca: str | None = None  # with inspect: the CA file origins are verified against
    host: str = "127.0.0.1"
    log: list[ProxyEntry] = field(default_factory=list)
    url: str = ""
    ca_file: str | None = None
    _heads: list[str] = field(default_factory=list, repr=False)  # sent to the proxy, verbatim
    _server: asyncio.Server | None = field(default=None, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _dir: Path | None = field(default=None, repr=False)
    _tls: TLSFiles | None = field(default=None, repr=False)

    def url_with_credentials(self, user: str | None = None, password: str | None = None) -> str:
        """``url`` with userinfo (the configured credentials unless others are given)."""
        u, p = self.credentials or ("", "")
        return self.url.replace("://", f"://{user or u}:{password or p}@", 1)

    def bundle_with(self, *ca_files: str) -> str:
        """A PEM bundle of this proxy's CA and ``ca_files``: what an inspected client trusts."""
        assert self._dir is not None and self.ca_file is not None, "an inspecting proxy, started"
        path = self._dir / "bundle.pem"
        path.write_bytes(b"".join(Path(f).read_bytes() for f in (self.ca_file, *ca_files)))
        return str(path)

    def saw(self, secret: str) -> bool:
        """Whether ``secret`` reached the proxy in any request head addressed to it (plain, or
        inside a Basic ``Proxy-Authorization``/``Authorization`` token): for "credentials never
        leak" tests. Requests read by TLS inspection are not counted."""
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
        if self.inspect:
            self._dir = Path(tempfile.mkdtemp(prefix="suite-proxy-"))
            self._tls = make_tls_files(self._dir)
            self.ca_file = str(self._tls.ca_file)
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

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
            with contextlib.suppress(OSError, asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        method, target, headers = await _read_head(reader, self._heads)
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
            self.log.append(ProxyEntry(method, host, port, path, 407, headers=_end_to_end(headers)))
            await _answer(writer, 407, "proxy credentials required", _PROXY_AUTHENTICATE)
            return
        inspecting = method == "CONNECT" and self._tls is not None
        upstream_tls = ssl.create_default_context(cafile=self.upstream_ca) if inspecting else None
        try:
            up_reader, up_writer = await asyncio.open_connection(
                host, port, ssl=upstream_tls, server_hostname=host if inspecting else None
            )
        except OSError:  # refused, or (inspecting) the origin's certificate did not verify
            self.log.append(
                ProxyEntry(method, host, port, path, 502, user, headers=_end_to_end(headers))
            )
            await _answer(writer, 502, f"cannot connect to {host}:{port}")
            return
        try:
            if method == "CONNECT":
                self.log.append(ProxyEntry(method, host, port, None, 200, user))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                if self._tls is None:
                    await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
                    return
                await writer.start_tls(self._tls.server_context())
                method, path, headers = await _read_head(reader, None)  # origin-form
            assert path is not None
            forwarded = _end_to_end(headers)

            def logged(status: int, m: str = method, p: str = path) -> None:
                self.log.append(ProxyEntry(m, host, port, p, status, user, inspecting, forwarded))

            kept = "".join(f"{k}: {v}\r\n" for k, v in forwarded)
            up_writer.write(
                f"{method} {path} HTTP/1.1\r\n{kept}Connection: close\r\n\r\n".encode("latin-1")
            )
            body = asyncio.create_task(_copy(reader, up_writer))
            try:
                await _relay_response(up_reader, writer, logged)
            finally:
                body.cancel()
        finally:
            up_writer.close()

    def _user(self, headers: Headers) -> str | None:
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


def _end_to_end(headers: Headers) -> Headers:
    """``headers`` without the hop-by-hop ones (what goes on to the origin)."""
    return [(k, v) for k, v in headers if k.lower() not in _HOP]


_PROXY_AUTHENTICATE = 'Proxy-Authenticate: Basic realm="suite proxy"\r\n'


async def _read_head(
    reader: asyncio.StreamReader, record: list[str] | None
) -> tuple[str, str, Headers]:
    """Method, target and headers of the next request head (kept verbatim in ``record``)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    if record is not None:
        record.append(head)
    request_line, *lines = head.split("\r\n")[:-2]
    method, target, _version = request_line.split(" ", 2)
    return method, target, [(k.strip(), v.strip()) for k, v in (h.split(":", 1) for h in lines)]


async def _relay_response(
    up_reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    logged: Callable[[int], None],
) -> None:
    """The origin's response to the client, with ``Connection: close``; its status logged."""
    head = (await up_reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head.split("\r\n")[:-2]
    logged(int(status_line.split(" ")[1]))
    kept = "".join(f"{h}\r\n" for h in lines if h.split(":", 1)[0].strip().lower() not in _HOP)
    writer.write(f"{status_line}\r\n{kept}Connection: close\r\n\r\n".encode("latin-1"))
    await _copy(up_reader, writer)


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str, extra: str = "") -> None:
    body = reason.encode()
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode("latin-1")
        + body
    )
    await writer.drain()


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Bytes from ``src`` to ``dst`` until EOF, then half-close ``dst`` (where it can)."""
    try:
        while chunk := await src.read(_CHUNK):
            dst.write(chunk)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except OSError:
        pass
