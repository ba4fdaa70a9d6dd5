"""The Backend protocol: where nodes run, and everything the Environment asks of that place.

A backend starts a node from a backend-neutral `Launch` and returns a `NodeHandle`; from then
on the Environment acts on the handle (kill, terminate, pause, resume), watches it exit,
reads its logs and resources, and asks the backend who owns a connection the fabric
accepted. Nothing above this seam knows whether a node is a process, a process in a
network namespace, a container or a simulated peer. docs/adding-a-backend.md shows how a
new backend is one module plus a registry entry.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from peerlab.backends.owners import Owner, Request
from peerlab.node import Node, NodeHandle

if TYPE_CHECKING:
    from peerlab.clock import Clock
    from peerlab.fabric.plane import FaultPlane
    from peerlab.history import History
    from peerlab.reaper import Reaper

Action = Literal["kill", "terminate", "pause", "resume"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the Environment refuses what it cannot (never silently)."""

    pause: bool = True
    # A node's clock can be offset (`Launch.clock_offset`, `set_clock`).
    clock_skew: bool = True
    # The source address of a connection names its node (no owner lookup needed).
    exact_source: bool = False
    # Several nodes can listen on the same port number (each has its own address space).
    own_ports: bool = False
    # Nodes may be granted capabilities such as NET_ADMIN (devices of their own).
    node_capabilities: bool = False
    # Time is virtual: waits advance it instead of sleeping.
    virtual_time: bool = False
    # Nodes run from container images (`Launch.image`), every node of a network.
    images: bool = False
    # Nodes being started (spawned, not yet ready) at once: beyond this, starts and
    # readiness probes only compete for the CPU with the nodes that are starting (a fork
    # costs milliseconds; a container's program starts cold, about a CPU-second for Python).
    parallel_starts: int = 32


@dataclass(frozen=True)
class Addresses:
    """A node's addresses: `public` is where peers reach it (through the fabric), `bind`
    where its process listens (and, on loopback, binds its outgoing sockets)."""

    public: str
    bind: str


@dataclass
class Launch:
    """How to start one node, whatever the backend.

    `argv` is the program and its arguments; a backend that can fork a pre-imported Python
    process may use `entry` + `args` instead (the system's entry point), with `preload`
    naming the modules to import first; the simulator builds `sim` (the system's simulated
    node class, `module:Class`) with `args`. `files` are written into the data dir unless the
    node already has them (its own rewrites are kept). `clock_offset` puts the node's wall
    clock that many seconds ahead (negative: behind). `capabilities` (such as NET_ADMIN) are
    granted within the node's own network namespace, on a backend that has
    `Capabilities.node_capabilities`. On a backend of `Capabilities.images`, a node runs
    from `image` (made from the `build` context first, when given), with the node's data
    dir mounted at the same path and at `volume`; `program` False means `argv` holds only
    arguments, for the image's own entrypoint.
    """

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    data_dir: Path
    stdout: Path
    stderr: Path
    files: dict[str, str] = field(default_factory=dict)
    entry: str | None = None
    args: list[str] = field(default_factory=list)
    preload: tuple[str, ...] = ()
    sim: str | None = None
    clock_offset: float | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    capabilities: tuple[str, ...] = ()
    program: bool = True
    image: str | None = None
    build: Path | None = None
    volume: str | None = None


@dataclass(frozen=True)
class BackendContext:
    """What an Environment gives its backend: who owns what, where files go, what time is."""

    env_id: str
    workdir: Path
    reaper: Reaper
    history: History
    clock: Clock
    seed: int
    fabric: bool
    nodes: Callable[[], Mapping[str, Node]]  # the Environment's nodes, by name
    adopt: dict[str, Any] | None = None  # a detached backend's state, to take over


class Backend(Protocol):
    """Where nodes run. One instance per Environment; every method but the async ones is
    called from the Environment's threads, the async ones on its event loop."""

    name: str
    capabilities: Capabilities

    def addresses(self, index: int) -> Addresses:
        """The addresses of the node with this index."""
        ...

    def prepare(self, node: Node, launch: Launch) -> None:
        """Make the node's data dir and files; check what would stop it from starting
        (a port in use) with a UsageError naming the fix."""
        ...

    async def expose(self, node: Node, plane: FaultPlane) -> None:
        """Put the node's proxied ports behind the fault plane."""
        ...

    async def start(self, node: Node, launch: Launch) -> NodeHandle:
        """Start the node; returns once it runs (not yet ready)."""
        ...

    def act(self, handle: NodeHandle, action: Action, sig: signal.Signals | None = None) -> None:
        """kill (at once, no clean-up), terminate (`sig`, the system's stop signal), pause
        (frozen, connections kept open), resume."""
        ...

    def set_clock(self, node: Node, seconds: float) -> bool:
        """Offset a node's clock; False when it only applies from its next start."""
        ...

    def logs(self, node: Node, lines: int, stream: Literal["stdout", "stderr"]) -> list[str]:
        """The last `lines` lines the node wrote to `stream` (a backend whose nodes write
        elsewhere copies their output into `node.stdout_path` / `stderr_path` as it comes,
        so the merged timeline and `Node.logs` read the same files)."""
        ...

    def healthy(self, node: Node) -> bool:
        """Whether the node's own healthcheck passes (the `healthcheck` readiness probe;
        asked only of a backend with `Capabilities.images`)."""
        ...

    def resources(self, handle: NodeHandle) -> dict[str, Any]:
        """CPU seconds, memory and process count of the node (its whole process tree).
        Called for several nodes at once, from threads (`peers` asks every node together)."""
        ...

    def identify(self, requests: Sequence[Request]) -> list[Owner | None]:
        """For each (protocol, source, destination) of a connection or datagram the fabric
        accepted at `destination`: the node holding the source socket, `Owner(None)` when a
        process that is no node holds it (a client), None when no live process does (the
        fabric refuses it). Never a guess: an answer that is not known is not given."""
        ...

    def export_data(self, node: Node, target: Path) -> None:
        """Copy the node's data dir to `target` (the node is stopped or paused)."""
        ...

    def import_data(self, node: Node, source: Path) -> None:
        """Replace the node's data dir with a copy of `source` (the node is not running)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What identifies this backend's addressing (for snapshots and status)."""
        ...

    def detach(self) -> dict[str, Any]:
        """What another process needs to `adopt` the running nodes (`close(detach=True)`
        follows, which lets go of them without stopping them)."""
        ...

    async def watch(self, saved: dict[str, Any]) -> NodeHandle:
        """The handle of an adopted node (`NodeHandle.to_json()` of the process that handed
        it over), watched for its exit from now on."""
        ...

    async def close(self, detach: bool = False) -> None:
        """Stop everything this backend runs and release what it holds; after `detach`,
        release what it holds but leave the nodes running."""
        ...
