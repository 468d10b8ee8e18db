"""The emulator's TLS mode: a private CA and a server certificate made at start (``tls`` extra).

The CA exists only for one run of the emulator: it is made in memory, its certificate is
written to ``ca.pem`` (what clients trust: ``verify=emu.ca_file``, ``REQUESTS_CA_BUNDLE``,
``--ca-bundle``), and the server's key and chain are written beside it, readable by the
owner only, in the emulator's own temporary directory (removed when it stops).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TLS_HOSTS", "TLSFiles", "TLSUnavailableError", "make_tls_files", "require_tls_extra"]

# Names the server certificate is valid for: every way of writing "this machine".
TLS_HOSTS: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")

_EXTRA_HINT = "the emulator's TLS mode needs the 'tls' extra: pip install 'aiolightning[tls]'"


class TLSUnavailableError(RuntimeError):
    """TLS was asked for but the package that makes certificates (trustme) is not installed."""


def require_tls_extra() -> None:
    """Raise :class:`TLSUnavailableError`, naming the extra, when certificates cannot be made."""
    try:
        import trustme  # noqa: F401
    except ImportError as e:
        raise TLSUnavailableError(f"{_EXTRA_HINT} ({e})") from None


@dataclass(frozen=True)
class TLSFiles:
    """Where one run's CA certificate, server chain and server key are written."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """The listening side: presents the server certificate (TLS 1.2 or newer)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this CA only (and checks host names)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_tls_files(directory: Path, hosts: tuple[str, ...] = TLS_HOSTS) -> TLSFiles:
    """Make a fresh CA and a server certificate for ``hosts``; write them under ``directory``."""
    require_tls_extra()
    import trustme

    ca = trustme.CA(organization_name="aiolightning emulator")
    leaf = ca.issue_cert(*hosts, common_name=hosts[0])
    directory.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca_file))
    with open(files.cert_file, "wb") as f:
        f.write(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    fd = os.open(files.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(leaf.private_key_pem.bytes())
    return files
