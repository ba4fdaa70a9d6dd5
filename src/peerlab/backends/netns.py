"""The netns backend: every node in its own network namespace, with one real address.

A node is a process (the shared process side, `processes.py`: one launcher forks or execs
every node, entering the node's namespace first) in a namespace linked to the host by a veth
pair, with an address from the environment's leased block of the dedicated range (default
198.18.0.0/15; `peerlab.addresses.NetworkBlock`). Systems use their own ports on it, and what
they learn from peers (gossip, DHT records) is simply right. The harness reaches nodes from
the host. Node-to-node TCP and UDP is diverted by the host's `tproxy` rules into the fabric
(`peerlab.fabric.transparent`), which tells the source node by address, exactly, and passes
the traffic on from the sender's own address. The plumbing (namespaces, links, nftables,
policy routing) is `plumbing.py`; without root, the process first enters a user namespace of
its own (`userns.py`). A node may be granted capabilities within its namespace
(`[launch] capabilities`, such as NET_ADMIN for a TUN or WireGuard device); every other node
runs with none.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from peerlab.addresses import NetworkBlock
from peerlab.backends import userns
from peerlab.backends.base import Addresses, BackendContext, Capabilities, Launch
from peerlab.backends.owners import Owner, Request
from peerlab.backends.plumbing import Hub
from peerlab.backends.processes import ProcessBackend
from peerlab.errors import PeerlabError, UsageError

if TYPE_CHECKING:
    from peerlab.fabric.plane import FaultPlane
    from peerlab.node import Node, NodeHandle

# Namespaces plumbed in one batch: the first nodes start while the next batch is plumbed.
PLUMB_AT_ONCE = 32


class NetnsBackend(ProcessBackend):
    """Nodes as processes, each in a network namespace with an address of its own."""

    name = "netns"
    capabilities = Capabilities(own_ports=True, exact_source=True, node_capabilities=True)

    @staticmethod
    def prepare_process() -> None:
        """Without root, enter a user namespace that owns the namespaces to come."""
        if not userns.privileged():
            userns.enter()

    def __init__(self, context: BackendContext) -> None:
        if not context.fabric:
            raise UsageError(
                "the netns backend carries node-to-node traffic through the fabric, so it "
                "cannot run without one",
                field="fabric",
                hint="drop --no-fabric / fabric=False, or use --backend local",
            )
        if not userns.privileged():
            raise UsageError(
                "the netns backend needs root, or a user namespace entered before any thread "
                "started",
                field="backend",
                hint="run as root, or call peerlab.backends.enter('netns') first thing",
            )
        super().__init__(context)
        adopted = context.adopt or {}
        self.block = NetworkBlock.lease(adopted.get("network"), wait=10)
        self.reaper.add_callback("address lease", self.block.release)
        tag = adopted.get("tag") or hashlib.sha1(context.env_id.encode()).hexdigest()[:6]
        self.hub = Hub(str(tag), self.block.network)
        self._resource = f"network-{self.hub.tag}"
        # Recorded before anything is made, so that a SIGKILL at any point is swept.
        self.reaper.add_resource(self._resource, "network", self.hub.record())
        self._adopted = bool(adopted)
        self._attached: set[int] = {int(i) for i in adopted.get("attached", [])}
        self._pending: dict[int, str] = {}  # exposed, not yet plumbed: index -> address
        self._waiting: dict[int, asyncio.Future[None]] = {}  # until plumbed, by index
        self._plumber: asyncio.Task[None] | None = None
        self._diverted = False
        self._hub_lock: asyncio.Lock | None = None

    # ------------------------------------------------------------------ where nodes are

    def addresses(self, index: int) -> Addresses:
        address = self.block.node(index)
        return Addresses(address, address)

    async def expose(self, node: Node, plane: FaultPlane) -> None:
        """Into the fabric now; the namespace when the node starts, together with the other
        nodes exposed by then (a batch of `ip` commands for many of them)."""
        await self._divert(plane)
        if node.index not in self._attached and node.index not in self._waiting:
            self._pending[node.index] = node.address
            self._waiting[node.index] = asyncio.get_running_loop().create_future()
        ports: dict[tuple[str, int], str] = {
            (p.protocol, p.port): p.name for p in node.system.ports.values()
        }
        await plane.intercept(node.name, node.address, ports)

    async def _divert(self, plane: FaultPlane) -> None:
        """Once: the fabric's transparent listeners, then the rules that divert to them."""
        if self._hub_lock is None:
            self._hub_lock = asyncio.Lock()
        async with self._hub_lock:
            if self._diverted:
                return
            tcp, udp = await plane.divert(self.hub.host)
            # An adopted network keeps its routes; its rules named the old listeners.
            await self.hub.create(tcp, udp, routes=not self._adopted)
            self._diverted = True

    async def _plumbed(self, index: int) -> None:
        """Node `index`'s namespace is there. The first node to start sets the plumber to
        work on every node pending, a batch at a time, so the first nodes start while the
        next batch is plumbed."""
        if index in self._attached:
            return
        future = self._waiting.get(index)
        if future is None:
            raise PeerlabError(f"node {index} was never exposed, so it has no namespace")
        if self._plumber is None or self._plumber.done():
            self._plumber = asyncio.get_running_loop().create_task(self._plumb())
        await asyncio.shield(future)

    async def _plumb(self) -> None:
        while self._pending:
            batch = dict(list(self._pending.items())[:PLUMB_AT_ONCE])
            for index in batch:
                del self._pending[index]
            try:
                await self.hub.attach(batch)
            except Exception as exc:
                for index in batch:
                    self._waiting.pop(index).set_exception(exc)
                continue
            self._attached.update(batch)
            for index in batch:
                self._waiting.pop(index).set_result(None)

    async def start(self, node: Node, launch: Launch) -> NodeHandle:
        await self._plumbed(node.index)
        return await super().start(node, launch)

    def spawn_options(self, node: Node, launch: Launch) -> dict[str, Any]:
        return {
            "netns": self.hub.netns_path(node.index),
            "capabilities": list(launch.capabilities),
        }

    def identify(self, requests: Sequence[Request]) -> list[Owner | None]:
        """By address, exactly: a node's address is its own. The fabric already knows every
        node's address (`Links.add_own_address`), so what it asks about comes from no node:
        no owner is made up for it, and the fabric refuses it."""
        by_address = {node.address: name for name, node in self.context.nodes().items()}
        return [
            Owner(by_address[source[0]]) if source[0] in by_address else None
            for _, source, _ in requests
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "network": str(self.block.network),
            "host": self.hub.host,
            "rootless": userns.inside(),
        }

    # ------------------------------------------------------------------ handover, close

    def detach(self) -> dict[str, Any]:
        """The namespaces and rules stay for the adopter, which records them as its own."""
        self.reaper.forget_resource(self._resource)
        return {
            **super().detach(),
            "network": str(self.block.network),
            "tag": self.hub.tag,
            "attached": sorted(self._attached),
        }

    async def close(self, detach: bool = False) -> None:
        await super().close(detach)
        if not detach:
            await self.hub.remove(sorted(self._attached))
            self._attached.clear()
            self.reaper.forget_resource(self._resource)
