"""`duplicate`: UDP datagrams delivered twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from peerlab.fabric.toxics.base import Stub, Toxic, check_percent


@dataclass
class Duplicate(Toxic):
    """Delivers `percent` % of datagrams twice (UDP only: TCP removes duplicates itself)."""

    type: ClassVar[str] = "duplicate"
    percent: float = 0

    def check(self) -> None:
        check_percent(self, self.percent)

    def deliver(self, stub: Stub) -> list[float]:
        return [0.0, 0.0] if stub.rng.random() < self.percent / 100 else [0.0]
