"""The address of one remote file: a teamspace drive or studio base plus a path."""

from __future__ import annotations

from dataclasses import dataclass

from ._paths import quote_remote_path

__all__ = ["RemoteTarget"]


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """A file in a teamspace drive or a studio: ``base`` + ``/blobs/`` + ``path``."""

    base: str  # "/v1/projects/{pid}/artifacts" or ".../artifacts/cloudspaces/{studioId}"
    path: str  # cleaned, relative to the base
    cluster_id: str = ""
    display: str = ""  # what to call it in messages (a lit:// URL when known)
    studio: bool = False

    @property
    def key(self) -> str:
        return f"{self.base}|{self.path}|{self.cluster_id}"

    @property
    def name(self) -> str:
        return self.display or self.path

    @property
    def route(self) -> str:
        if self.studio:
            return "/v1/projects/{projectId}/artifacts/cloudspaces/{studioId}"
        return "/v1/projects/{projectId}/artifacts"

    def blob_url(self) -> str:
        return f"{self.base}/blobs/{quote_remote_path(self.path)}"

    def child(self, rel: str, display: str = "") -> RemoteTarget:
        path = f"{self.path}/{rel}" if self.path else rel
        return RemoteTarget(self.base, path, self.cluster_id, display, self.studio)
