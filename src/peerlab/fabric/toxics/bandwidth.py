"""`bandwidth`: caps the rate of a TCP stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

from peerlab.errors import UsageError
from peerlab.fabric.toxics.base import Chunk, Stub, Toxic

SLICE = 0.01  # seconds of data sent at once: small enough to look like a steady stream


@dataclass
class Bandwidth(Toxic):
    """Passes data through at no more than `rate` KB/s (1 KB = 1000 bytes)."""

    type: ClassVar[str] = "bandwidth"
    rate: float = 0

    def check(self) -> None:
        if self.rate <= 0:
            raise UsageError(
                "attribute 'rate' of toxic 'bandwidth' is 0",
                field="rate",
                hint="give a rate above 0 KB/s; to stop traffic use `timeout`",
            )

    def rate_cap(self) -> float:
        return self.rate * 1000

    async def pipe(self, stub: Stub, chunk: Chunk) -> AsyncGenerator[Chunk, None]:
        if not chunk.data:
            yield chunk
            return
        bytes_per_second = self.rate * 1000
        step = max(1, int(bytes_per_second * SLICE))
        for start in range(0, len(chunk.data), step):
            piece = chunk.data[start : start + step]
            # Each piece leaves when the link has finished sending the ones before it.
            # Counting from when the previous one was due, not from when its timer fired,
            # keeps the long-run rate exact although timers fire late; after an idle gap
            # the count starts again from now (a link does not save up unused capacity).
            now = stub.now()
            due = stub.state.get("due", now)
            if now - due > SLICE:
                due = now
            due += len(piece) / bytes_per_second
            stub.state["due"] = due
            await stub.sleep_until(due)
            yield Chunk(piece, chunk.time)
