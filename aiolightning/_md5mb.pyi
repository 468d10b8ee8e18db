"""Multi-buffer MD5 (C extension, see _md5mb.c): many independent streams hashed at once."""

from collections.abc import Sequence

Buffer = bytes | bytearray | memoryview

ACCELERATED: bool
LANES: int

class MD5:
    name: str
    digest_size: int
    block_size: int
    def __init__(self, data: Buffer = ..., /) -> None: ...
    def update(self, data: Buffer, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> MD5: ...

def update_many(states: Sequence[MD5], buffers: Sequence[Buffer], /) -> None: ...
