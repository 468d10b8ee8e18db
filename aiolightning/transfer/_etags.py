"""ETag rules: when an ETag is the MD5 of the bytes, and whether a multipart ETag fits its parts.

S3 answers 32-hex ETags that are *not* the MD5 of the bytes for objects under SSE-KMS or
SSE-C encryption; the response says so in ``x-amz-server-side-encryption`` (``aws:kms``,
``aws:kms:dsse``) or in the SSE-C headers. Such an ETag is never compared with an MD5. A
store that hides it is caught by :class:`UploadEtagCheck`: the same bytes sent twice that get
the same "wrong" ETag twice cannot be a transfer error, so that upload stops checking.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "EtagNotes",
    "UploadEtagCheck",
    "encryption",
    "etag_md5",
    "plain_md5",
    "same_multipart_etag",
    "warn_not_md5",
]

logger = logging.getLogger("aiolightning.transfer")

_PLAIN_MD5 = re.compile(r'^"?([0-9a-fA-F]{32})"?$')
_MULTIPART_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})-(\d+)"?$')
_SSE = "x-amz-server-side-encryption"
_SSE_C = "x-amz-server-side-encryption-customer-algorithm"


def plain_md5(etag: str) -> str | None:
    m = _PLAIN_MD5.match(etag.strip())
    return m.group(1).lower() if m else None


def encryption(headers: Mapping[str, str]) -> str:
    """The encryption an object-store response declares that keeps its ETag from being an
    MD5 (``"aws:kms"``, ``"aws:kms:dsse"``, ``"SSE-C"``), or ``""``. ``headers`` must be
    case-insensitive (aiohttp's are)."""
    if headers.get(_SSE_C, "").strip():
        return "SSE-C"
    sse = headers.get(_SSE, "").strip().lower()
    return sse if sse.startswith("aws:kms") else ""


def etag_md5(etag: str, encrypted: str) -> str | None:
    """The MD5 an ETag gives: None when it is not a plain MD5 or the object is encrypted."""
    return None if encrypted else plain_md5(etag)


def warn_not_md5(name: str, etag: str, digest: str, rest: str) -> None:
    """The one WARNING when the same bytes got the same "wrong" ETag twice."""
    logger.warning(
        "%s: the object store answered ETag %s twice for the same bytes (MD5 %s): its ETags "
        "are not MD5s, so %s is not checksum-checked",
        name,
        etag,
        digest,
        rest,
    )


class EtagNotes:
    """One client's warnings about ETags it cannot check: one per kind of encryption."""

    def __init__(self) -> None:
        self._told: set[str] = set()

    def encrypted(self, kind: str, name: str) -> None:
        if kind not in self._told:
            self._told.add(kind)
            logger.warning(
                "%s: the object store encrypts with %s, so its ETags are not MD5s: transfers "
                "to and from it are not checksum-checked (said once per client)",
                name,
                kind,
            )


class UploadEtagCheck:
    """Whether the ETags one upload gets back are still compared with its parts' MD5s."""

    __slots__ = ("_name", "_notes", "_wrong", "on")

    def __init__(self, notes: EtagNotes, name: str) -> None:
        self.on = True
        self._notes = notes
        self._name = name
        self._wrong: dict[int, tuple[str, str]] = {}  # offset -> (MD5 sent, ETag got)

    def expected(self, etag: str, encrypted: str) -> str | None:
        """The MD5 the part's ETag says the store got, or None when it says nothing."""
        if not self.on:
            return None
        if encrypted:
            self.on = False
            self._notes.encrypted(encrypted, self._name)
            return None
        return plain_md5(etag)

    def transfer_error(self, offset: int, digest: str, etag: str) -> bool:
        """A part's ETag is not the MD5 sent: True for a transfer error (send it again);
        False when the same bytes got the same ETag before, so the ETags are no MD5s: the
        upload stops checking, with one WARNING."""
        if self._wrong.get(offset) == (digest, etag):
            self.on = False
            warn_not_md5(self._name, etag, digest, "the rest of this upload")
            return False
        self._wrong[offset] = (digest, etag)
        return True


def same_multipart_etag(etag: str, parts: list[dict[str, Any]]) -> bool:
    """False only when ``etag`` is an S3-style multipart ETag (MD5 of the parts' MD5s, "-N")
    that these parts do not produce; True when it matches or nothing can be told."""
    m = _MULTIPART_ETAG.match(etag.strip())
    digests = [plain_md5(str(p.get("etag", ""))) for p in parts]
    if m is None or any(d is None for d in digests):
        return True
    joined = b"".join(bytes.fromhex(d) for d in digests if d is not None)
    return m.group(1).lower() == hashlib.md5(joined).hexdigest() and int(m.group(2)) == len(parts)
