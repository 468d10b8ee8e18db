"""Remote paths and ``lit://`` URLs, checked before any request is made."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ._errors import StoragePathError

__all__ = ["LitUrl", "clean_remote_path", "is_lit_url", "parse_lit_url", "quote_remote_path"]

SCHEME = "lit://"


@dataclass(frozen=True, slots=True)
class LitUrl:
    owner: str | None  # None: the default teamspace (``lit:///path``)
    teamspace: str | None
    path: str  # relative to the drive root, "" = the root


def is_lit_url(text: str) -> bool:
    return isinstance(text, str) and text[:4].lower() == "lit:"


def _check_text(text: str, what: str) -> None:
    """NUL, backslash and text that is not valid Unicode (lone surrogates) are refused."""
    if "\x00" in text or "\\" in text:
        raise StoragePathError(f"{what} {text!r}: NUL and backslash are not allowed")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise StoragePathError(f"{what} {text!r} is not valid Unicode") from None


def clean_remote_path(
    path: str, *, allow_root: bool = True, what: str = "remote path", mount: bool = True
) -> str:
    """A drive/studio path without leading or trailing ``/``; ``..``, ``.``, empty
    segments, backslashes and NUL are refused (a path must not escape its root).

    ``mount``: strip a leading ``teamspace/`` (the ``/teamspace`` mount inside studios, as
    the SDK does) -- right for a path a user typed, wrong for a path the server listed (a
    folder really called ``teamspace``)."""
    if not isinstance(path, str):
        raise StoragePathError(f"{what} must be a string, got {type(path).__name__}")
    _check_text(path, what)
    stripped = path.strip("/")
    if mount and stripped.startswith("teamspace/"):
        stripped = stripped[len("teamspace/") :]
    elif mount and stripped == "teamspace":
        stripped = ""
    if not stripped:
        if allow_root:
            return ""
        raise StoragePathError(f"{what} {path!r} names the root; a file path is needed")
    for segment in stripped.split("/"):
        if segment in ("", ".", ".."):
            raise StoragePathError(
                f"{what} {path!r}: empty, '.' and '..' segments are not allowed "
                "(a path must stay inside its teamspace or studio)"
            )
    return stripped


def parse_lit_url(url: str) -> LitUrl:
    """``lit://<owner>/<teamspace>/<path>`` or ``lit:///<path>`` (default teamspace)."""
    if not isinstance(url, str) or not url.lower().startswith(SCHEME):
        raise StoragePathError(
            f"malformed lit:// URL {url!r}: expected lit://<owner>/<teamspace>/<path> "
            "or lit:///<path>"
        )
    rest = url[len(SCHEME) :]
    if any(c in rest for c in ("?", "#")):
        raise StoragePathError(f"malformed lit:// URL {url!r}: '?' and '#' are not allowed")
    if rest.startswith("/"):
        return LitUrl(None, None, clean_remote_path(rest, what=f"path of {url!r}"))
    parts = rest.split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise StoragePathError(
            f"malformed lit:// URL {url!r}: expected lit://<owner>/<teamspace>/<path> "
            "(or lit:///<path> for the default teamspace)"
        )
    for what, name in (("owner", parts[0]), ("teamspace", parts[1])):
        _check_text(name, f"lit:// URL {url!r}: {what}")
        if name.strip() in ("", ".", ".."):
            raise StoragePathError(f"malformed lit:// URL {url!r}: {what} {name!r} is not a name")
    path = clean_remote_path(parts[2] if len(parts) > 2 else "", what=f"path of {url!r}")
    return LitUrl(parts[0], parts[1], path)


def quote_remote_path(path: str) -> str:
    """Percent-encode a remote path for a URL, keeping ``/`` (as ``requests`` does)."""
    return quote(path, safe="/")
