"""`reset_peer`: resets a TCP connection (connection reset by peer)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

from peerlab.fabric.toxics.base import Chunk, Stub, Toxic


@dataclass
class ResetPeer(Toxic):
    """Resets the connection (RST to both sides) `timeout` ms after data next arrives."""

    type: ClassVar[str] = "reset_peer"
    timeout: float = 0

    async def pipe(self, stub: Stub, chunk: Chunk) -> AsyncGenerator[Chunk, None]:
        if await stub.sleep(self.timeout / 1000):
            stub.reset()  # the chunk is dropped: a reset discards unsent data
            return
        yield chunk
