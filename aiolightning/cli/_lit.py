"""``lit://`` storage URLs, as the Lightning CLI writes them.

* ``lit://<owner>/<teamspace>/<path>`` -- a path in the drive of that teamspace;
* ``lit:///<path>`` -- a path in the drive of the default teamspace (``--teamspace``,
  ``LIGHTNING_TEAMSPACE`` or the user's first one).

Studio files are ordinary drive paths: ``lit://<owner>/<teamspace>/studios/<studio>/<path>``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from ._exit import UsageError

__all__ = ["LitPath", "is_lit_url", "parse_lit_url"]

SCHEME = "lit://"


@dataclass(frozen=True, slots=True)
class LitPath:
    owner: str | None  # None: the default teamspace
    teamspace: str | None
    path: str  # relative to the drive root, no leading or trailing "/"; "" is the root
    trailing_slash: bool = False  # the URL named a folder explicitly ("lit:///data/")

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    def child(self, name: str) -> LitPath:
        path = f"{self.path}/{name}" if self.path else name
        return LitPath(self.owner, self.teamspace, path)

    def __str__(self) -> str:
        where = f"{self.owner}/{self.teamspace}" if self.owner else ""
        return f"{SCHEME}{where}/{self.path}" + ("/" if self.trailing_slash and self.path else "")


def is_lit_url(text: str) -> bool:
    return text.lower().startswith("lit:")


def parse_lit_url(url: str) -> LitPath:
    """Parse a ``lit://`` URL; raise :class:`UsageError` (exit code 2) when it is malformed."""
    if not url.lower().startswith(SCHEME):
        raise UsageError(
            f"malformed lit:// URL {url!r}: expected lit://<owner>/<teamspace>/<path> "
            f"or lit:///<path>"
        )
    rest = url[len(SCHEME) :]
    if any(c in rest for c in ("\\", "\x00", "?", "#")):
        raise UsageError(f"malformed lit:// URL {url!r}: '\\', '?', '#' and NUL are not allowed")
    trailing = rest.endswith("/")
    if rest.startswith("/"):  # lit:///path -- default teamspace
        owner = teamspace = None
        raw = rest[1:]
    else:
        parts = rest.split("/", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise UsageError(
                f"malformed lit:// URL {url!r}: expected lit://<owner>/<teamspace>/<path> "
                f"(or lit:///<path> for the default teamspace)"
            )
        owner, teamspace = parts[0], parts[1]
        raw = parts[2] if len(parts) > 2 else ""
    segments = [s for s in raw.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise UsageError(f"malformed lit:// URL {url!r}: '..' is not allowed")
    path = "/".join(segments)
    if path.startswith("teamspace/"):  # the /teamspace mount inside studios
        path = path[len("teamspace/") :]
    return LitPath(owner, teamspace, path, trailing_slash=trailing)
