"""`loss`: packet loss; UDP datagrams vanish, TCP streams stall while segments are resent."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar

from peerlab.fabric.toxics.base import Chunk, Stub, Toxic, check_percent

SEGMENT = 1448  # bytes of payload in a TCP segment on a 1500-byte MTU network


@dataclass
class Loss(Toxic):
    """Loses `percent` % of packets: UDP datagrams are dropped; TCP bytes never are.

    TCP resends a lost segment, so loss shows up as a stall: a chunk of n segments is held
    for `rto` ms (Linux's minimum retransmission timeout) with probability
    1 - (1 - percent/100)^n, and everything behind it waits, as it would for the
    retransmission on a real link.
    """

    type: ClassVar[str] = "loss"
    percent: float = 0
    rto: float = 200

    def check(self) -> None:
        check_percent(self, self.percent)

    def hold_time(self) -> float:
        return self.rto / 1000

    async def pipe(self, stub: Stub, chunk: Chunk) -> AsyncGenerator[Chunk, None]:
        segments = max(1, -(-len(chunk.data) // SEGMENT))
        if stub.rng.random() < 1 - (1 - self.percent / 100) ** segments:
            await stub.sleep(self.rto / 1000)
        yield chunk

    def deliver(self, stub: Stub) -> list[float]:
        return [] if stub.rng.random() < self.percent / 100 else [0.0]
