"""Property tests of the remote-path and ``lit://`` URL parser: no input escapes its root,
every rejection is a :class:`StoragePathError`, accepted paths round-trip."""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aiolightning import AsyncLightning, LightningError
from aiolightning.resources.storage._download import _safe_local_child
from aiolightning.transfer import StoragePathError, clean_remote_path, is_lit_url, parse_lit_url
from aiolightning.transfer._paths import quote_remote_path

FAST = settings(max_examples=300, deadline=None)

#: pieces an attacker (or a careless caller) would try, mixed with arbitrary text
TRICKS = [
    "/", "//", ".", "..", "\\", "..\\", "%2e", "%2e%2e", "%2f", "%5c", "%00", "\x00", "?", "#",
    "teamspace", "teamspace/", "/teamspace/", " ", "\t", "\n", "\ud800", "\udfff", "é", "．．",
    "\u2215", "\uff0f", "~", "lit://", "LIT:///", "x" * 3000,
]  # fmt: skip
nasty = st.lists(st.sampled_from(TRICKS) | st.text(max_size=4), max_size=12).map("".join)
#: a segment a clean path may hold: anything but "/", NUL, backslash, "." and ".."
segment = st.text(
    st.characters(exclude_characters="/\\\x00", exclude_categories=["Cs"]), min_size=1, max_size=8
).filter(lambda s: s not in (".", ".."))
clean_paths = st.lists(segment, min_size=1, max_size=6).map("/".join)


def assert_stays_inside(p: str) -> None:
    """``p`` is a clean relative path: below any root, never above it, nothing to decode."""
    assert not p.startswith("/") and not p.endswith("/")
    assert "\x00" not in p and "\\" not in p
    p.encode("utf-8")
    if p:
        assert all(seg not in ("", ".", "..") for seg in p.split("/"))
        assert posixpath.normpath(f"/root/{p}") == f"/root/{p}"
    wire = quote_remote_path(p)
    assert unquote(wire, errors="strict") == p  # the server decodes exactly what we meant


@FAST
@given(nasty)
@example("\ud800")  # a lone surrogate used to pass, then quote() raised UnicodeEncodeError
@example("a/%2e%2e/b")  # an encoded ".." is a literal name, sent as %252e%252e
@example("teamspace/../x")
def test_clean_remote_path_never_escapes(raw: str) -> None:
    for mount in (True, False):
        try:
            p = clean_remote_path(raw, mount=mount)
        except StoragePathError as e:
            assert isinstance(e, LightningError)
            continue
        assert_stays_inside(p)
        assert clean_remote_path(p, mount=False) == p  # idempotent


@FAST
@given(st.sampled_from(["lit://", "LIT://", "lit:///", "lit:", "lit:/"]), nasty)
@example("lit://", "../t/x")  # an owner ".." is not a name
@example("lit://", "o/\ud800/x")
@example("lit://", "o/ /x")
def test_lit_urls_are_parsed_or_refused_with_a_typed_error(prefix: str, rest: str) -> None:
    url = prefix + rest
    assert is_lit_url(url)
    try:
        lit = parse_lit_url(url)
    except StoragePathError:
        return
    assert_stays_inside(lit.path)
    assert (lit.owner is None) == (lit.teamspace is None)
    for name in (lit.owner, lit.teamspace):
        if name is not None:
            assert name.strip() not in ("", ".", "..")
            assert not set(name) & set("/\\\x00?#")
            name.encode("utf-8")


@FAST
@given(clean_paths, st.sampled_from(["", "/", "//"]))
@example("teamspace/a.bin", "")  # a folder really called "teamspace"
def test_clean_paths_round_trip(p: str, slashes: str) -> None:
    assert clean_remote_path(slashes + p + slashes, mount=False) == p
    typed = p.removeprefix("teamspace/") if p != "teamspace" else ""
    assert clean_remote_path(p) == typed  # a user's path: the /teamspace mount is stripped
    assert clean_remote_path(f"/teamspace/{p}") == p
    assert unquote(quote_remote_path(p)) == p
    if "?" in p or "#" in p:  # a URL: lit:// refuses them, a plain path takes them
        return
    assert parse_lit_url(f"lit://owner/ts/{p}") == parse_lit_url(f"lit://owner/ts/{p}/")
    assert parse_lit_url(f"lit://owner/ts/teamspace/{p}").path == p
    assert parse_lit_url(f"lit:///teamspace/{p}").path == p


@FAST
@given(st.lists(nasty | clean_paths, min_size=1, max_size=8, unique=True))
@example(["teamspace/a.bin", "a.bin"])  # used to land on the same local file
def test_listed_paths_map_to_distinct_files_inside_the_root(listed: list[str]) -> None:
    root = Path("/dl/root")
    seen: dict[Path, str] = {}
    for rel in listed:
        try:
            local = _safe_local_child(root, rel)
        except StoragePathError:
            continue
        assert local.is_relative_to(root) and local != root
        assert ".." not in local.parts
        key = local
        assert key not in seen or seen[key].strip("/") == rel.strip("/"), (seen[key], rel)
        seen[key] = rel


def test_non_strings_are_refused() -> None:
    assert not is_lit_url(None)  # type: ignore[arg-type]
    for bad in (None, 3, b"lit:///x"):
        with pytest.raises(StoragePathError):
            parse_lit_url(bad)  # type: ignore[arg-type]
        with pytest.raises(StoragePathError):
            clean_remote_path(bad)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_download_dir_keeps_a_folder_called_teamspace(
    storage_client: AsyncLightning, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(b"top")
    (src / "b.bin").write_bytes(b"inner")
    await storage_client.storage.upload(src / "a.bin", "d/a.bin")
    await storage_client.storage.upload(src / "b.bin", "d/teamspace/a.bin")
    out = tmp_path / "out"
    await storage_client.storage.download_dir("d", out)
    assert (out / "a.bin").read_bytes() == b"top"
    assert (out / "teamspace" / "a.bin").read_bytes() == b"inner"
