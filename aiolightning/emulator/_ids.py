"""Deterministic identifiers: the same seed gives the same ids in the same order."""

from __future__ import annotations

import random

__all__ = ["IdFactory"]


class IdFactory:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"ids:{seed}")
        self._seq = 0

    def new(self) -> str:
        """A 26-character lower-case id that sorts in creation order (like a ULID)."""
        self._seq += 1
        return f"01{self._seq:010x}{self._rng.getrandbits(56):014x}"

    def hex(self, nbytes: int = 16) -> str:
        return f"{self._rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"
