"""What every part of ``client.storage`` shares: transfer settings, the engine, and the
resolution of a remote path or ``lit://`` URL to a :class:`RemoteTarget`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...fanout import Outcome
from ...transfer import (
    BulkTransferError,
    RemoteTarget,
    StoragePathError,
    TransferConfig,
    TransferEngine,
    clean_remote_path,
    is_lit_url,
    parse_lit_url,
)
from ..studios._models import check_studio_name

if TYPE_CHECKING:
    from ..._client import AsyncLightning
    from ..teamspaces import Teamspace

LocalPath = str | os.PathLike[str]
#: what upload_many / download_many take (checked by resources._bulk)
PAIRS = "pairs of paths, (local, remote) to upload and (remote, local) to download"


def _studio_of(path: str) -> str | None:
    """The studio whose files a drive path names (``studios/<name>/...``), else None."""
    top, _, rest = path.partition("/")
    if top != "studios" or not rest:
        return None
    return rest.partition("/")[0]


def local_path(value: object, what: str = "local path") -> Path:
    """``value`` as a :class:`Path`, or a :class:`StoragePathError` naming what was given
    (the same check as the remote side's, before anything is read or sent)."""
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if isinstance(text, str) and text:
        return Path(text)
    raise StoragePathError(f"{what} must be a non-empty str or os.PathLike, got {value!r}")


def is_pair(item: object) -> bool:
    return (
        isinstance(item, tuple | list)
        and len(item) == 2
        and all(isinstance(p, str | os.PathLike) for p in item)
    )


class StorageBase:
    """The part of ``client.storage`` that the upload, download and listing parts build on."""

    def __init__(self, client: AsyncLightning, config: TransferConfig | None = None) -> None:
        self._client = client
        self._config = config or TransferConfig()
        self._engine: TransferEngine | None = None
        self._clusters: dict[str, str] = {}

    # ------------------------------------------------------------------ configuration

    @property
    def config(self) -> TransferConfig:
        return self._config

    def configure(self, /, config: TransferConfig | None = None, **changes: Any) -> None:
        """Replace the transfer knobs (``client.storage.configure(part_size=64 * 2**20)``)."""
        new = (
            (config or self._config).with_options(**changes)
            if changes
            else (config or self._config)
        )
        self._config = new
        if self._engine is not None:
            if new.proxy != self._engine.config.proxy:
                network = self._client.transport.storage_network(new.proxy)
                self._engine.presigned.network = network
            self._engine.config = new
            if self._engine.budget.capacity != new.byte_budget and self._engine.budget.in_use == 0:
                self._engine.budget.capacity = new.byte_budget

    @property
    def engine(self) -> TransferEngine:
        if self._engine is None:
            self._engine = TransferEngine(self._client.transport, self._config)
        return self._engine

    # ------------------------------------------------------------------ addressing

    def _parse(
        self, remote: str, teamspace: str | Teamspace | None, *, allow_root: bool
    ) -> tuple[str | Teamspace | None, str, str]:
        """(teamspace reference, cleaned path, display) -- no request made."""
        if not isinstance(remote, str):
            raise StoragePathError(f"remote path must be a string, got {type(remote).__name__}")
        if is_lit_url(remote):
            lit = parse_lit_url(remote)
            path = lit.path
            if not allow_root and not path:
                raise StoragePathError(f"{remote!r} names the drive root; a file path is needed")
            if lit.owner is not None:
                return (
                    f"{lit.owner}/{lit.teamspace}",
                    path,
                    f"lit://{lit.owner}/{lit.teamspace}/{path}",
                )
            return teamspace, path, f"lit:///{path}"
        path = clean_remote_path(remote, allow_root=allow_root)
        return teamspace, path, path

    async def _resolve(
        self,
        ref: str | Teamspace | None,
        path: str,
        display: str,
        *,
        studio: str | None,
        cluster_id: str | None,
        writing: bool = False,
    ) -> RemoteTarget:
        """``writing``: an upload into ``studios/<name>/`` needs that studio (else it would
        make a folder that no studio sees); its name is checked before any request."""
        studio_dir = _studio_of(path) if studio is None and writing else None
        if studio_dir is not None:
            check_studio_name(studio_dir, f"{display!r}: studio name")
        ts = await self._client.teamspaces.resolve(ref)
        if studio_dir is not None:
            await self._client.studios.get(studio_dir, teamspace=ts)  # its files: it must exist
        if studio is not None:
            st = await self._client.studios.get(studio, teamspace=ts)
            base = f"/v1/projects/{ts.id}/artifacts/cloudspaces/{st.id}"
            return RemoteTarget(base, path, st.cluster_id or "", display, studio=True)
        cluster = cluster_id or await self._cluster_for(ts)
        return RemoteTarget(f"/v1/projects/{ts.id}/artifacts", path, cluster, display)

    async def _cluster_for(self, ts: Teamspace) -> str:
        cached = self._clusters.get(ts.id)
        if cached is not None:
            return cached
        cluster = ts.default_cluster
        if not cluster:
            resp = await self._client.api.projects.list_project_cluster_bindings(project_id=ts.id)
            bindings = [b.cluster_id for b in resp.clusters or [] if b.cluster_id]
            cluster = bindings[0] if bindings else ""
        self._clusters[ts.id] = cluster
        return cluster

    async def target(
        self,
        remote: str,
        *,
        teamspace: str | Teamspace | None = None,
        studio: str | None = None,
        cluster_id: str | None = None,
    ) -> RemoteTarget:
        """The resolved :class:`RemoteTarget` of a remote path or ``lit://`` URL."""
        ref, path, display = self._parse(remote, teamspace, allow_root=True)
        return await self._resolve(ref, path, display, studio=studio, cluster_id=cluster_id)

    @staticmethod
    def _all_or_raise(outcomes: list[Outcome[Any, Any]], verb: str) -> list[Any]:
        failed = [o for o in outcomes if not o.ok]
        if failed:
            first = failed[0].error
            raise BulkTransferError(
                f"{len(failed)} of {len(outcomes)} files failed to {verb}; first: {first}",
                outcomes,
            )
        return [o.value for o in outcomes]
