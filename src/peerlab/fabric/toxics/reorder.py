"""`reorder`: UDP datagrams overtaking each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from peerlab.fabric.toxics.base import Stub, Toxic, check_percent


@dataclass
class Reorder(Toxic):
    """Holds `percent` % of datagrams back `delay` ms, so the ones behind overtake them (UDP)."""

    type: ClassVar[str] = "reorder"
    percent: float = 0
    delay: float = 10

    def check(self) -> None:
        check_percent(self, self.percent)

    def deliver(self, stub: Stub) -> list[float]:
        return [self.delay / 1000] if stub.rng.random() < self.percent / 100 else [0.0]
