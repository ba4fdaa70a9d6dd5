"""`slow_close`: delays the close of a TCP connection."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

from peerlab.fabric.toxics.base import Chunk, Stub, Toxic


@dataclass
class SlowClose(Toxic):
    """Delays the end of the stream (the close) by `delay` milliseconds; data is not delayed."""

    type: ClassVar[str] = "slow_close"
    delay: float = 0

    async def pipe(self, stub: Stub, chunk: Chunk) -> AsyncGenerator[Chunk, None]:
        if not chunk.data:
            await stub.sleep(self.delay / 1000)
        yield chunk
