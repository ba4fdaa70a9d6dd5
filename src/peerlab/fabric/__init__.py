"""The network between nodes: TCP/UDP proxies, toxics, partitions, a Toxiproxy-compatible API.

Every node's proxied ports get a proxy on the node's public address that forwards to the
node's bind address; the link a connection or datagram is on is told by its source address
(see docs/decisions/0002-fabric-link-identification.md). All faults live in these
userspace proxies: no root, no netem. docs/faults.md describes every fault.
"""

from peerlab.fabric.fabric import Fabric
from peerlab.fabric.faults import (
    Fault,
    LinkFault,
    Partition,
    RollingPartition,
    ToxicFault,
    bridge,
    fault_from_dict,
    islands,
    one_way,
    rolling,
    split,
    transient,
)
from peerlab.fabric.network import FaultHandle, Link, Network
from peerlab.fabric.spec import ToxicSpec
from peerlab.fabric.toxics import (
    TOXICS,
    Bandwidth,
    Duplicate,
    Latency,
    LimitData,
    Loss,
    Reorder,
    ResetPeer,
    Slicer,
    SlowClose,
    Timeout,
    Toxic,
)

__all__ = [
    "TOXICS",
    "Bandwidth",
    "Duplicate",
    "Fabric",
    "Fault",
    "FaultHandle",
    "Latency",
    "LimitData",
    "Link",
    "LinkFault",
    "Loss",
    "Network",
    "Partition",
    "Reorder",
    "ResetPeer",
    "RollingPartition",
    "Slicer",
    "SlowClose",
    "Timeout",
    "Toxic",
    "ToxicFault",
    "ToxicSpec",
    "bridge",
    "fault_from_dict",
    "islands",
    "one_way",
    "rolling",
    "split",
    "transient",
]
