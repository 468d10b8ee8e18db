"""ETag rules: the MD5 in a plain ETag, and whether a multipart ETag fits its parts."""

from __future__ import annotations

import hashlib
import re
from typing import Any

__all__ = ["plain_md5", "same_multipart_etag"]

_PLAIN_MD5 = re.compile(r'^"?([0-9a-fA-F]{32})"?$')
_MULTIPART_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})-(\d+)"?$')


def plain_md5(etag: str) -> str | None:
    m = _PLAIN_MD5.match(etag.strip())
    return m.group(1).lower() if m else None


def same_multipart_etag(etag: str, parts: list[dict[str, Any]]) -> bool:
    """False only when ``etag`` is an S3-style multipart ETag (MD5 of the parts' MD5s, "-N")
    that these parts do not produce; True when it matches or nothing can be told."""
    m = _MULTIPART_ETAG.match(etag.strip())
    digests = [plain_md5(str(p.get("etag", ""))) for p in parts]
    if m is None or any(d is None for d in digests):
        return True
    joined = b"".join(bytes.fromhex(d) for d in digests if d is not None)
    return m.group(1).lower() == hashlib.md5(joined).hexdigest() and int(m.group(2)) == len(parts)
