"""What the three ways of running the emulator share: its identity, and clients wired to it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._client import AsyncLightning
    from .._sync._client import Lightning

__all__ = ["INFO_KEYS", "EmulatorInfo"]


class EmulatorInfo:
    """The identity attributes shared by the three ways of running the emulator."""

    url: str
    user_id: str
    api_key: str
    username: str
    teamspace_id: str
    teamspace_name: str
    org_name: str
    org_id: str
    cluster_id: str
    storage_url: str  # origin of presigned download URLs (a second port: another origin)
    ca_file: str | None  # with TLS on: the PEM file of the run's private CA (trust this)

    def info(self) -> dict[str, str | None]:
        return {k: getattr(self, k) for k in INFO_KEYS}

    def client(self, **options: Any) -> AsyncLightning:
        """An :class:`~aiolightning.AsyncLightning` wired to this emulator: its URL, the
        emulated user's credentials and, unless ``teamspace=`` is given, its teamspace.

        Every other keyword goes to ``AsyncLightning`` unchanged (``retry=``, ``limits=``,
        ``timeout=``, ...). The caller owns the client: ``async with emu.client() as c:``.
        With TLS on, the client trusts the run's CA (``emu.ca_file``).
        """
        from .._client import AsyncLightning

        options.setdefault("teamspace", self.teamspace_name)
        if self.ca_file is not None and "session" not in options:
            options.setdefault("verify", self.ca_file)
        return AsyncLightning(self.url, user_id=self.user_id, api_key=self.api_key, **options)

    def sync_client(self, **options: Any) -> Lightning:
        """The blocking :class:`~aiolightning.Lightning` wired like :meth:`client` (``with
        emu.sync_client() as c:``). Serve it from a thread (``EmulatorThread``, a subprocess):
        an emulator on the caller's own event loop cannot answer a blocking call. With TLS on,
        it trusts the run's CA too."""
        from .._sync._client import Lightning

        options.setdefault("teamspace", self.teamspace_name)
        if self.ca_file is not None and "session" not in options:
            options.setdefault("verify", self.ca_file)
        return Lightning(self.url, user_id=self.user_id, api_key=self.api_key, **options)

    def sdk_env(self) -> dict[str, str]:
        """Environment variables that point `lightning_sdk` at this emulator (with TLS on,
        ``REQUESTS_CA_BUNDLE`` names its CA: the SDK and `requests` both read it)."""
        env = {
            "LIGHTNING_CLOUD_URL": self.url,
            "LIGHTNING_USER_ID": self.user_id,
            "LIGHTNING_API_KEY": self.api_key,
            "LIGHTNING_TEAMSPACE": f"{self.org_name}/{self.teamspace_name}",
            "LIGHTNING_DISABLE_VERSION_CHECK": "1",
        }
        if self.ca_file is not None:
            env["REQUESTS_CA_BUNDLE"] = self.ca_file
        return env


INFO_KEYS = tuple(EmulatorInfo.__annotations__)  # the identity attributes, in order
