"""`limit_data`: closes a TCP connection after a number of bytes."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

from peerlab.fabric.toxics.base import Chunk, Stub, Toxic


@dataclass
class LimitData(Toxic):
    """Lets `bytes` bytes through, then closes the connection."""

    type: ClassVar[str] = "limit_data"
    bytes: int = 0

    async def pipe(self, stub: Stub, chunk: Chunk) -> AsyncGenerator[Chunk, None]:
        sent = stub.state.get("sent", 0)  # kept across changes of the chain, as in Toxiproxy
        piece = chunk.data[: max(self.bytes - sent, 0)]
        if piece or not chunk.data:
            stub.state["sent"] = sent + len(piece)
            yield Chunk(piece, chunk.time)
        if stub.state.get("sent", 0) >= self.bytes:
            stub.close()
