"""`timeout`: stops a TCP stream, and closes the connection after a while."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

from peerlab.fabric.toxics.base import Chunk, Stub, Toxic


@dataclass
class Timeout(Toxic):
    """Stops all data and closes the connection after `timeout` ms; with 0 it never closes.

    Held data is delivered if the toxic is removed before the connection closes (Toxiproxy
    instead drops it and closes the connection on removal): a stalled link that recovers.
    """

    type: ClassVar[str] = "timeout"
    timeout: float = 0

    def attach(self, stub: Stub) -> None:
        if self.timeout > 0:
            stub.later(self.timeout / 1000, stub.close)

    async def pipe(self, stub: Stub, chunk: Chunk) -> AsyncGenerator[Chunk, None]:
        await stub.sleep_until(float("inf"))
        yield chunk
