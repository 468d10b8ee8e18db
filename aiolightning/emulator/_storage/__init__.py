"""The artifacts blobs/trees storage API of the emulator, with its own presigned URLs.

Wire shape (docs wire-flows §6.3-6.6), for ``<base>`` = ``/v1/projects/{pid}/artifacts`` (the
teamspace drive) or ``/v1/projects/{pid}/artifacts/cloudspaces/{studioId}`` (a studio):

* ``POST <base>/blobs`` -- snake_case (camelCase accepted too). One result per requested blob:
  single part (``{"path"}``): one presigned PUT URL, ``complete_required`` false;
  multipart (``{"path", "parts", "part_size"}``): an ``upload_id`` and one URL per part;
  re-sign (``{"path", "upload_id", "part_numbers"}``): fresh URLs for those parts.
* ``PUT /_storage/...?Expires=..&Signature=..`` -- the presigned URLs. HMAC-SHA256 signed,
  expiring after ``config.faults.url_ttl`` seconds; a bad or expired signature answers 403
  with an S3-like XML body. Never needs (and never accepts instead of a signature) the
  Lightning ``Authorization`` header; seeing one is counted as
  ``storage:authorization_header_seen``. The ETag is the quoted MD5 of the bytes received.
* ``POST <base>/blobs/complete`` -- assembles the object from its parts after checking
  every part number and ETag (a wrong one answers 400).
* ``GET <base>/trees/<path>`` -- ``recursive``, ``atMost``, ``cursor`` -> ``{"tree",
  "nextCursor"}``; a recursive listing holds only blobs, paths relative to the folder.
* ``GET|HEAD <base>/blobs/<path>`` -- the bytes, streamed from disk, with ``Range`` (206/416).
  With ``config.faults.redirect_downloads`` it answers ``307`` instead, ``Location`` a
  presigned URL (``/_storage/blobs/<token>?Expires=..&Signature=..``, signed for the
  request's method) on the emulator's second listener: another origin, as an object store's
  URL would be, so a client following the redirect must drop ``Authorization``. An expired
  URL answers 403; a new GET of the blob URL gives a new one.
* ``DELETE <base>/blobs/<path>`` and ``DELETE <base>/trees/<path>`` -- 204.

Bytes live on disk under ``root``: every part (or single-part body) is a file, streamed to
disk while its MD5 is computed; an object is the ordered list of its part files and is read
back part by part, so no object is ever held in memory whatever its size.

The blobs API has no abort call. An open multipart upload stays until it is completed,
until a new multipart upload of the same path replaces it (counted as
``storage:uploads_aborted``), or until it is older than ``config.faults.upload_ttl`` seconds
(default 24 h): then it is expired like an object store's lifecycle rule does it, its part
files deleted (``storage:uploads_expired``), and its upload id answers 404 ``NoSuchUpload``
from then on. ``ArtifactStore.open_uploads()`` lists the open ones.
"""

from .objects import OpenUpload, StoredObject
from .store import ArtifactStore

__all__ = ["ArtifactStore", "OpenUpload", "StoredObject"]
