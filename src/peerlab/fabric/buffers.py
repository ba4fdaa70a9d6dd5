"""Read buffers shared by the pumps of one event loop, so idle connections hold none.

A pump takes a buffer for each read and gives it back once the bytes are sent; only a pump
whose send is unfinished keeps one. Memory is then one buffer per stream that is actually
waiting on a full socket, plus a few spare.
"""

from __future__ import annotations

SIZE = 1024 * 1024  # bytes per read: 1 MiB measured best for bulk transfers
SPARE = 4


class BufferPool:
    """Buffers of SIZE bytes; not thread-safe (one per event loop)."""

    def __init__(self) -> None:
        self._free: list[bytearray] = []

    def take(self) -> bytearray:
        return self._free.pop() if self._free else bytearray(SIZE)

    def give(self, buffer: bytearray) -> None:
        if len(self._free) < SPARE:
            self._free.append(buffer)
