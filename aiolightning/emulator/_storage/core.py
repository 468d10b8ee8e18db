"""The artifact store's state: namespaces of objects, open uploads and their expiry, addressing."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from .._config import Counters, EmulatorConfig
from .faults import PutFaults
from .objects import DRIVE, Namespace, OpenUpload, StoredObject, remove_files
from .presign import Presigner

__all__ = ["StoreCore"]


class StoreCore:
    """What every storage handler group shares: the objects by scope, the open uploads,
    the URL signer and the fault draws; bytes on disk under ``root``."""

    def __init__(
        self,
        root: Path,
        secret: bytes,
        config: EmulatorConfig,
        counters: Counters,
        base_url: Callable[[], str],
        storage_url: Callable[[], str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.config = config
        self.counters = counters
        self.signer = Presigner(secret, config, counters, base_url)
        # origin of redirected download URLs (another listener); the API's when unset
        self.storage_url = storage_url
        # Optional hook the emulator core may set: (project id, studio name) -> studio id.
        # When set, drive paths ``studios/<name>/...`` address that studio's files.
        self.studio_resolver: Callable[[str, str], str | None] | None = None
        self._namespaces: dict[tuple[str, str], Namespace] = {}
        self._uploads: dict[str, OpenUpload] = {}
        self._faults = PutFaults(config, counters, secret)
        (self.root / "uploads").mkdir(parents=True, exist_ok=True)
        (self.root / "objects").mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        self._uploads.clear()
        self._namespaces.clear()
        await asyncio.to_thread(shutil.rmtree, self.root / "uploads", True)
        await asyncio.to_thread(shutil.rmtree, self.root / "objects", True)

    def open_uploads(self) -> list[OpenUpload]:
        """Multipart uploads started and neither completed, replaced nor expired."""
        self.expire_uploads()
        return list(self._uploads.values())

    def expire_uploads(self, now: float | None = None) -> int:
        """Drop the open uploads older than ``config.faults.upload_ttl`` and their part files
        (what an object store's lifecycle rule for incomplete multipart uploads does). Runs
        before every storage request that touches uploads; returns how many expired."""
        ttl = self.config.faults.upload_ttl
        if ttl <= 0 or not self._uploads:
            return 0
        cutoff = (time.time() if now is None else now) - ttl
        expired = []
        for up in self._uploads.values():  # in start order: the oldest first
            if up.started > cutoff:
                break
            expired.append(up)
        for up in expired:
            self._drop_upload(up)
        if expired:
            self.counters.incr("storage:uploads_expired", len(expired))
        return len(expired)

    def get_object(self, project_id: str, path: str, studio_id: str = "") -> StoredObject | None:
        scope = f"cloudspaces/{studio_id}" if studio_id else DRIVE
        ns = self._namespaces.get((project_id, scope))
        return None if ns is None else ns.objects.get(path.strip("/"))

    # ------------------------------------------------------------------ addressing

    def _scope(self, request: web.Request, path: str) -> tuple[str, str, str]:
        """(project id, scope, path) after mapping ``studios/<name>/`` drive paths."""
        pid = request.match_info["pid"]
        studio = request.match_info.get("studio")
        if studio:
            return pid, f"cloudspaces/{studio}", path
        if self.studio_resolver is not None and path.startswith("studios/"):
            _, name, *rest = path.split("/", 2)
            studio_id = self.studio_resolver(pid, name) if name else None
            if studio_id:
                return pid, f"cloudspaces/{studio_id}", rest[0] if rest else ""
        return pid, DRIVE, path

    @staticmethod
    def effect_key(scope: str, path: str) -> str:
        """How the effect counters name a file: its path in the drive, or
        ``cloudspaces/<studio id>/<path>`` for a studio's files."""
        return path if scope == DRIVE else f"{scope}/{path}"

    def _ns(self, pid: str, scope: str) -> Namespace:
        ns = self._namespaces.get((pid, scope))
        if ns is None:
            ns = self._namespaces[(pid, scope)] = Namespace()
        return ns

    # ------------------------------------------------------------------ dropping and replacing

    def _drop_upload(self, up: OpenUpload) -> None:
        self._uploads.pop(up.upload_id, None)
        shutil.rmtree(up.directory, ignore_errors=True)

    def _replace(self, pid: str, scope: str, path: str, obj: StoredObject) -> None:
        old = self._ns(pid, scope).put(path, obj)
        if old is not None:
            remove_files(old)
