"""TLS settings: ``verify=`` and the CA-bundle variables turned into what aiohttp's
connector takes, and the typed error for a certificate that could not be verified.

Order (read when the client is built, never at import): ``verify=`` when it is a path or an
``ssl.SSLContext``; else ``LIGHTNING_CA_BUNDLE``, then ``REQUESTS_CA_BUNDLE`` (a file or a
directory, as ``requests`` takes it), then ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``; else the
system's default trust store. ``verify=False`` turns checking off, with a WARNING.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Final

import aiohttp

from .._errors import InvalidArgumentError, TLSVerificationError

__all__ = ["CA_BUNDLE_VARIABLES", "Verify", "resolve_verify", "tls_error"]

logger = logging.getLogger("aiolightning")

Verify = bool | str | os.PathLike[str] | ssl.SSLContext

#: the variables naming a CA bundle, first found wins (SSL_CERT_DIR goes with SSL_CERT_FILE)
CA_BUNDLE_VARIABLES: Final = ("LIGHTNING_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")

_FIX: Final = (
    "if the service uses a private or corporate CA, pass verify='/path/to/ca.pem' to "
    "AsyncLightning, or set LIGHTNING_CA_BUNDLE (or REQUESTS_CA_BUNDLE) to that file "
    "(on the command line: --ca-bundle FILE); verify=False / --insecure turns checking off "
    "(not recommended)"
)


def resolve_verify(
    verify: Verify = True, *, env: Mapping[str, str] | None = None, trust_env: bool = True
) -> tuple[ssl.SSLContext | bool, str]:
    """(what aiohttp's ``ssl=`` gets, where it came from). True means aiohttp's default
    context (the system's trust store); a missing CA file is an InvalidArgumentError."""
    if isinstance(verify, ssl.SSLContext):
        return verify, "verify=<SSLContext>"
    if verify is False:
        logger.warning(
            "TLS certificate verification is OFF (verify=False): anyone on the network path "
            "can read and change this client's traffic, API key included. Use a CA bundle "
            "instead (verify='/path/to/ca.pem' or LIGHTNING_CA_BUNDLE)."
        )
        return False, "verify=False"
    if verify is True:
        env = os.environ if env is None else env
        if trust_env:
            for name in CA_BUNDLE_VARIABLES:
                value = env.get(name, "").strip()
                if value:
                    capath = env.get("SSL_CERT_DIR", "").strip() if name == "SSL_CERT_FILE" else ""
                    return _context_for(value, name, capath=capath or None), name
            capath = env.get("SSL_CERT_DIR", "").strip()
            if capath:
                return _context_for(capath, "SSL_CERT_DIR"), "SSL_CERT_DIR"
        return True, "the system's trust store"
    if isinstance(verify, str | os.PathLike):
        return _context_for(os.fspath(verify), "verify="), f"verify={os.fspath(verify)!r}"
    raise InvalidArgumentError(
        f"verify must be True, False, a CA bundle path or an ssl.SSLContext, "
        f"not {type(verify).__name__}"
    )


def _context_for(path: str, source: str, *, capath: str | None = None) -> ssl.SSLContext:
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except OSError as exc:
        raise InvalidArgumentError(
            f"the CA bundle {p} (from {source}) cannot be read: {exc.strerror}"
        ) from None
    try:
        if p.is_dir():
            return _cached_context(None, str(p), st.st_mtime_ns)
        return _cached_context(str(p), capath, st.st_mtime_ns)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise InvalidArgumentError(
            f"the CA bundle {p} (from {source}) holds no usable certificate: {exc}"
        ) from None


@lru_cache(maxsize=16)
def _cached_context(cafile: str | None, capath: str | None, _mtime_ns: int) -> ssl.SSLContext:
    """One context per bundle (and version of it): loading a bundle takes milliseconds and
    the same variable serves every client of a process."""
    return ssl.create_default_context(cafile=cafile, capath=capath)


def tls_error(
    exc: aiohttp.ClientConnectorCertificateError,
    what: str,
    *,
    source: str | None = None,
    method: str = "",
    path: str = "",
) -> TLSVerificationError:
    """The typed, never-retried error for a certificate that failed verification;
    ``source`` says what it was checked against (NetworkConfig.ssl_source)."""
    cert = exc.certificate_error
    reason = getattr(cert, "verify_message", None) or getattr(cert, "reason", None) or str(cert)
    host = f"{exc.host}:{exc.port}"
    against = f", checked against {source}" if source else ""
    return TLSVerificationError(
        f"{what}: the TLS certificate of {host} could not be verified ({reason}{against}); {_FIX}",
        method=method,
        path=path,
    )
