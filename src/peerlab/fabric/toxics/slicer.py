"""`slicer`: cuts a TCP stream into small pieces, as a slow real network delivers it."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

from peerlab.errors import UsageError
from peerlab.fabric.toxics.base import Chunk, Stub, Toxic


@dataclass
class Slicer(Toxic):
    """Slices data into pieces of `average_size` +/- `size_variation` bytes, `delay` µs apart."""

    type: ClassVar[str] = "slicer"
    average_size: int = 0
    size_variation: int = 0
    delay: float = 0

    def check(self) -> None:
        if self.average_size < 1 or self.size_variation >= self.average_size:
            raise UsageError(
                f"slicer sizes are average_size={self.average_size}, "
                f"size_variation={self.size_variation}",
                field="average_size",
                hint="average_size must be at least 1 and size_variation below it",
            )

    def size(self, stub: Stub) -> int:
        variation = self.size_variation
        return self.average_size + (stub.rng.randint(-variation, variation) if variation else 0)

    def rate_cap(self) -> float | None:
        return self.average_size / (self.delay / 1e6) if self.delay else None

    async def pipe(self, stub: Stub, chunk: Chunk) -> AsyncGenerator[Chunk, None]:
        data, start = chunk.data, 0
        while True:
            end = start + self.size(stub)
            yield Chunk(data[start:end], chunk.time)
            start = end
            if start >= len(data):
                return
            if self.delay and not await stub.sleep(self.delay / 1e6):
                yield Chunk(data[start:], chunk.time)  # removed: the rest goes in one piece
                return
