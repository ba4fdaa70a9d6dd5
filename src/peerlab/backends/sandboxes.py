"""The docker backend's network: each node's network namespace, held by a sandbox container
and plumbed the way the netns backend plumbs its namespaces.

The engine gives a container no networking of its own (`network_mode="none"`): the nodes
sit on the network peerlab makes, from the same `Hub` as the netns backend (a leased block
of the dedicated range, a veth pair per node, nftables `tproxy` diverting node-to-node
traffic into the fabric, no route out of the machine). So the interception, its exact
attribution and its clean-up are shared, not written twice.

A namespace must be plumbed before the node's program runs (it binds its address at once),
and must outlive a restart (the address and the fabric's state stay). So, as a pod does,
each node has a small sandbox container (`sleep infinity` from the base image) that holds
the namespace; the node's container joins it (`network_mode="container:<sandbox>"`) every
time it starts. The sandbox's namespace is named with `ip netns attach`, then `Hub.attach`
links it to the host.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from peerlab.addresses import NetworkBlock
from peerlab.backends import engine
from peerlab.backends.base import BackendContext
from peerlab.backends.plumbing import Hub, run_async

if TYPE_CHECKING:
    import docker

    from peerlab.fabric.plane import FaultPlane
    from peerlab.node import Node


class Sandboxes:
    """The nodes' namespaces of one Environment and the host's side of them."""

    def __init__(
        self,
        context: BackendContext,
        client: docker.DockerClient,
        tag: str,
        adopted: dict[str, Any],
    ) -> None:
        self.context = context
        self.engine = client
        self.block = NetworkBlock.lease(adopted.get("network"), wait=10)
        context.reaper.add_callback("address lease", self.block.release)
        self.hub = Hub(tag, self.block.network)
        self._resource = f"network-{tag}"
        # Recorded before anything is made, so that a SIGKILL at any point is swept.
        context.reaper.add_resource(self._resource, "network", self.hub.record())
        self._adopted = bool(adopted)
        self.sandboxes: dict[int, str] = {
            int(i): c for i, c in adopted.get("sandboxes", {}).items()
        }
        self._diverted = False
        self._hub_lock: asyncio.Lock | None = None
        self._locks: dict[int, asyncio.Lock] = {}

    def address(self, index: int) -> str:
        return self.block.node(index)

    async def expose(self, node: Node, plane: FaultPlane) -> None:
        """Divert node-to-node traffic into the fabric (once), and name the node to it."""
        if self._hub_lock is None:
            self._hub_lock = asyncio.Lock()
        async with self._hub_lock:
            if not self._diverted:
                tcp, udp = await plane.divert(self.hub.host)
                # An adopted network keeps its routes; its rules named the old listeners.
                await self.hub.create(tcp, udp, routes=not self._adopted)
                self._diverted = True
        ports: dict[tuple[str, int], str] = {
            (p.protocol, p.port): p.name for p in node.system.ports.values()
        }
        await plane.intercept(node.name, node.address, ports)

    async def sandbox(self, node: Node, image: str) -> str:
        """The id of the container holding the node's namespace, made and plumbed once."""
        index = node.index
        async with self._locks.setdefault(index, asyncio.Lock()):
            if index not in self.sandboxes:
                made, pid = await asyncio.to_thread(self._create, node, image)
                self.sandboxes[index] = made
                name = self.hub.netns(index)
                await run_async(["ip", "-batch", "-"], f"netns attach {name} {pid}\n")
                await self.hub.attach({index: node.address}, create=False)
            return self.sandboxes[index]

    def _create(self, node: Node, image: str) -> tuple[str, int]:
        api = self.engine.api
        created = api.create_container(
            image,
            command=["sleep", "infinity"],
            name=f"peerlab-{self.hub.tag}-n{node.index}-net",
            labels=engine.labels(self.context.env_id, node=node.name, part="sandbox"),
            host_config=api.create_host_config(network_mode="none", init=True),
        )
        api.start(created["Id"])
        pid = int(api.inspect_container(created["Id"])["State"]["Pid"])
        return str(created["Id"]), pid

    def describe(self) -> dict[str, Any]:
        return {"network": str(self.block.network), "host": self.hub.host}

    def detach(self) -> dict[str, Any]:
        """The namespaces and rules stay for the adopter, which records them as its own."""
        self.context.reaper.forget_resource(self._resource)
        return {
            "network": str(self.block.network),
            "sandboxes": {str(i): c for i, c in self.sandboxes.items()},
        }

    async def close(self) -> None:
        """Unplumb (after the containers are gone): names, links, rules and routes."""
        await self.hub.remove(sorted(self.sandboxes))
        self.sandboxes.clear()
        self.context.reaper.forget_resource(self._resource)
