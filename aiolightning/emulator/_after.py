"""Faults after the act: a committed request's answer dropped, replaced by a 5xx, cut short.

The handler has run (the studio is started, the job created, the part stored); what the
client gets is what a dying connection or a proxy in front of the service would give it:

* ``drop``: the connection is closed, no byte of the answer sent;
* ``error``: a 500, 502 or 503 instead of the answer (never with ``Retry-After``: these are
  failures, not throttling), half of them an HTML page as nginx writes it;
* ``truncate``: the head and half the body are sent, then the connection is closed; an
  answer without a body is cut in the middle of its head instead.
"""

from __future__ import annotations

import random
from http import HTTPStatus

from aiohttp import web

from ._errors import error_response

__all__ = ["drop", "error_answer", "truncate"]

_HTML = """<html>
<head><title>{status} {phrase}</title></head>
<body>
<center><h1>{status} {phrase}</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""

_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message></Error>"
)


def drop(request: web.Request) -> web.Response:
    """Close the connection; the returned response is never sent (aiohttp sees the closed
    transport and gives up on it quietly)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=503)


def error_answer(rng: random.Random, storage: bool) -> web.Response:
    """A 5xx in place of the answer: a proxy's HTML page (502, 503) or the service's own
    error body (500, 503; S3-like XML on the presigned ``/_storage`` URLs)."""
    kind = rng.randrange(4)
    if kind < 2:
        status = 502 if kind == 0 else 503
        phrase = HTTPStatus(status).phrase
        return web.Response(
            status=status,
            reason=phrase,
            text=_HTML.format(status=status, phrase=phrase),
            content_type="text/html",
        )
    status = 500 if kind == 2 else 503
    if storage:
        code = "InternalError" if status == 500 else "ServiceUnavailable"
        message = "We encountered an internal error. Please try again."
        return web.Response(
            status=status,
            text=_XML.format(code=code, message=message),
            content_type="application/xml",
        )
    return error_response(status, "injected fault after the request was handled")


async def truncate(request: web.Request, resp: web.Response) -> web.StreamResponse:
    """Send the head and half the body of ``resp`` (its full length announced), then close
    the connection. Without a body (or for a HEAD), half of the head is written instead."""
    transport = request.transport
    body = resp.body
    if not isinstance(body, bytes | bytearray) or not body or request.method == "HEAD":
        if transport is not None:
            head = _head(request, resp)
            transport.write(head[: len(head) // 2])
            transport.close()
        return web.Response(status=resp.status)
    out = web.StreamResponse(status=resp.status, reason=resp.reason, headers=resp.headers)
    out.content_length = len(body)
    await out.prepare(request)
    await out.write(bytes(body[: len(body) // 2]))
    if request.transport is not None:
        request.transport.close()  # flushes what was written, then closes
    return out


def _head(request: web.Request, resp: web.Response) -> bytes:
    version = request.version
    lines = [f"HTTP/{version.major}.{version.minor} {resp.status} {resp.reason}"]
    lines += [f"{k}: {v}" for k, v in resp.headers.items() if k.lower() != "content-length"]
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
