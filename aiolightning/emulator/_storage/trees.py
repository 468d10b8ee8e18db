"""Listing and deleting: tree pages of a folder, blob deletes and folder deletes."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from aiohttp import web

from .core import StoreCore
from .objects import StoredObject, remove_files
from .wire import BadRequest, bool_param, clean_path, int_param, json_error, rfc3339

__all__ = ["BlobTrees"]

_DEFAULT_AT_MOST = 1000
_MAX_AT_MOST = 5000


class BlobTrees(StoreCore):
    """``GET <base>/trees/<path>``, ``DELETE <base>/blobs/<path>``, ``DELETE <base>/trees/<path>``."""

    async def _tree(self, request: web.Request) -> web.StreamResponse:
        try:
            path = clean_path(request.match_info["path"], allow_root=True)
            at_most = int_param(request.query.get("atMost") or _DEFAULT_AT_MOST, "atMost")
        except BadRequest as e:
            return json_error(400, 3, str(e))
        at_most = max(1, min(at_most, _MAX_AT_MOST))
        recursive = bool_param(request.query.get("recursive"))
        cursor = request.query.get("cursor") or ""
        try:
            after = base64.urlsafe_b64decode(cursor.encode()).decode() if cursor else ""
        except (ValueError, UnicodeDecodeError):
            return json_error(400, 3, "invalid cursor")
        pid, scope, path = self._scope(request, path)
        ns = self._ns(pid, scope)
        prefix = f"{path}/" if path else ""
        tree: list[dict[str, Any]] = []
        next_cursor = ""
        last_key = ""  # the cursor is the last key consumed; a folder's keys are contiguous
        current: dict[str, Any] | None = None
        for key in ns.under(prefix, after):
            rest = key[len(prefix) :]
            obj = ns.objects[key]
            name, slash, _ = rest.partition("/")
            if (
                not recursive
                and slash
                and current is not None
                and current["type"] == "tree"
                and current["path"] == name
            ):
                current["_mtime"] = max(current["_mtime"], obj.last_modified)
                last_key = key
                continue
            if len(tree) == at_most:
                next_cursor = base64.urlsafe_b64encode(last_key.encode()).decode()
                break
            if recursive or not slash:
                current = self._blob_entry(rest if recursive else name, obj)
            else:
                current = {
                    "path": name,
                    "type": "tree",
                    "size": 0,
                    "clusterId": "",
                    "_mtime": obj.last_modified,
                }
            tree.append(current)
            last_key = key
        for entry in tree:
            mtime = entry.pop("_mtime", None)
            if mtime is not None:
                entry["lastModified"] = rfc3339(mtime)
        self.counters.incr("storage:tree_pages")
        return web.json_response({"tree": tree, "nextCursor": next_cursor})

    @staticmethod
    def _blob_entry(rel: str, obj: StoredObject) -> dict[str, Any]:
        return {
            "path": rel,
            "type": "blob",
            "size": obj.size,
            "clusterId": obj.cluster_id,
            "lastModified": rfc3339(obj.last_modified),
        }

    async def _delete_blob(self, request: web.Request) -> web.StreamResponse:
        try:
            path = clean_path(request.match_info["path"], allow_root=False)
        except BadRequest as e:
            return json_error(400, 3, str(e))
        pid, scope, path = self._scope(request, path)
        obj = self._ns(pid, scope).pop(path)
        if obj is None:
            return json_error(404, 5, f"blob {path!r} not found")
        await asyncio.to_thread(remove_files, obj)
        self.counters.incr("storage:blobs_deleted")
        self.counters.effect("blob_deleted", self.effect_key(scope, path))
        return web.Response(status=204)

    async def _delete_tree(self, request: web.Request) -> web.StreamResponse:
        try:
            path = clean_path(request.match_info["path"], allow_root=True)
        except BadRequest as e:
            return json_error(400, 3, str(e))
        pid, scope, path = self._scope(request, path)
        if not path:
            return json_error(400, 3, "refusing to delete the root folder")
        ns = self._ns(pid, scope)
        keys = list(ns.under(path + "/"))
        doomed = [ns.pop(k) for k in keys]
        if not doomed:
            return json_error(404, 5, f"folder {path!r} not found")

        def remove_all() -> None:
            for obj in doomed:
                if obj is not None:
                    remove_files(obj)

        await asyncio.to_thread(remove_all)
        self.counters.incr("storage:blobs_deleted", len(doomed))
        for k in keys:
            self.counters.effect("blob_deleted", self.effect_key(scope, k))
        return web.Response(status=204)
