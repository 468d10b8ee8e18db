"""A private CA for the TLS tests (trustme): server contexts for loopback servers, the CA
as a PEM file for the client, and a client context that trusts it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class PrivateCA:
    ca: trustme.CA
    ca_file: Path  # the CA certificate, PEM

    def server_context(self, *names: str) -> ssl.SSLContext:
        """A server context whose certificate (issued by this CA) names ``names``."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*(names or ("127.0.0.1", "localhost"))).configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


def make_ca(directory: Path) -> PrivateCA:
    ca = trustme.CA()
    path = directory / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return PrivateCA(ca, path)
