"""`latency`: delays data by latency +/- jitter, on TCP streams and UDP datagrams."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

from peerlab.fabric.toxics.base import Chunk, Stub, Toxic


@dataclass
class Latency(Toxic):
    """Passes data through with a delay of `latency` +/- `jitter` milliseconds."""

    type: ClassVar[str] = "latency"
    latency: float = 0
    jitter: float = 0

    def delay(self, stub: Stub) -> float:
        jitter = stub.rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return max(self.latency + jitter, 0.0) / 1000

    def hold_time(self) -> float:
        return (self.latency + self.jitter) / 1000

    async def pipe(self, stub: Stub, chunk: Chunk) -> AsyncGenerator[Chunk, None]:
        # Counted from when the chunk was read, so chunks queued behind a delayed one
        # are not delayed twice; a removed toxic lets the chunk go at once.
        chunk.time += self.delay(stub)
        await stub.sleep_until(chunk.time)
        yield chunk

    def deliver(self, stub: Stub) -> list[float]:
        # Each datagram is delayed on its own, so jitter reorders them, as netem does.
        return [self.delay(stub)]
