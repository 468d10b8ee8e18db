"""Shared by the storage tests: a transfer configuration with small parts, so that
multipart uploads and ranged downloads happen with files of a few hundred KiB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiolightning.transfer import TransferConfig

KiB = 1024
MiB = 1024 * KiB
PART = 256 * KiB


def small_config(tmp_path: Path, **kw: Any) -> TransferConfig:
    base: dict[str, Any] = {
        "multipart_threshold": PART,
        "part_size": PART,
        "byte_budget": 4 * PART,
        "download_threshold": PART,
        "download_part_size": PART,
        "write_chunk": 64 * KiB,
        "read_chunk": 64 * KiB,
        "journal_dir": tmp_path / "journals",
        "fsync": False,
        "retry_base": 0.01,
        "retry_max_wait": 0.2,
    }
    base.update(kw)
    return TransferConfig(**base)
