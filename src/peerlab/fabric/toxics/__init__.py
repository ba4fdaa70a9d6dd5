"""The toxics, one per file, registered by their Toxiproxy type name.

Adding a toxic: write `toxics/<type>.py` (a dataclass with `type`, its attributes and a
`pipe` and/or `deliver` transform; see `base.py`) and add its class to `TOXICS` below.
"""

from __future__ import annotations

from peerlab.fabric.toxics.bandwidth import Bandwidth
from peerlab.fabric.toxics.base import Chunk, Stub, Toxic
from peerlab.fabric.toxics.duplicate import Duplicate
from peerlab.fabric.toxics.latency import Latency
from peerlab.fabric.toxics.limit_data import LimitData
from peerlab.fabric.toxics.loss import Loss
from peerlab.fabric.toxics.reorder import Reorder
from peerlab.fabric.toxics.reset_peer import ResetPeer
from peerlab.fabric.toxics.slicer import Slicer
from peerlab.fabric.toxics.slow_close import SlowClose
from peerlab.fabric.toxics.timeout import Timeout

TOXICS: dict[str, type[Toxic]] = {
    cls.type: cls
    for cls in (
        Latency,
        Bandwidth,
        SlowClose,
        Timeout,
        ResetPeer,
        Slicer,
        LimitData,
        Loss,
        Duplicate,
        Reorder,
    )
}

__all__ = [
    "TOXICS",
    "Bandwidth",
    "Chunk",
    "Duplicate",
    "Latency",
    "LimitData",
    "Loss",
    "Reorder",
    "ResetPeer",
    "Slicer",
    "SlowClose",
    "Stub",
    "Timeout",
    "Toxic",
]
