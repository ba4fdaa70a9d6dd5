"""The local backend: nodes are processes on this machine, each on its own loopback address.

The processes themselves (launcher, signals, clock skew, resources) are the shared process
side (`processes.py`). Addresses come from a leased block of loopback addresses
(`peerlab.addresses`), so runs side by side never meet; the fabric's proxies listen on each
node's public address and forward to its bind address, and tell a connection's source by its
address or, for programs that dial from 127.0.0.1, by the socket's owner.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from peerlab.addresses import AddressBlock
from peerlab.backends.base import Addresses, BackendContext, Capabilities, Launch
from peerlab.backends.owners import Owner, Request, SocketOwners
from peerlab.backends.processes import ProcessBackend
from peerlab.errors import UsageError

if TYPE_CHECKING:
    from peerlab.fabric.plane import FaultPlane
    from peerlab.node import Node


class LocalBackend(ProcessBackend):
    """Nodes as processes on this machine, on leased loopback addresses."""

    name = "local"
    capabilities = Capabilities()

    def __init__(self, context: BackendContext) -> None:
        super().__init__(context)
        adopted = context.adopt or {}
        self.block = AddressBlock.lease(adopted.get("address_block"), wait=10)
        self.reaper.add_callback("address lease", self.block.release)
        self.owners = SocketOwners(self._roots)
        self.reaper.add_callback("socket owners", self.owners.close)

    def addresses(self, index: int) -> Addresses:
        public = self.block.public(index)
        return Addresses(public, self.block.bind(index) if self.context.fabric else public)

    def prepare(self, node: Node, launch: Launch) -> None:
        self._check_ports_free(node)
        super().prepare(node, launch)

    @staticmethod
    def _check_ports_free(node: Node) -> None:
        for port in node.system.ports.values():
            kind = socket.SOCK_STREAM if port.protocol == "tcp" else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, kind) as probe:
                # Servers set SO_REUSEADDR; without it, connections in TIME_WAIT would
                # make a free port look taken.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((node.bind_address, port.port))
                except OSError:
                    raise UsageError(
                        f"port {port.name} ({port.protocol} {node.bind_address}:{port.port}) "
                        f"of node {node.name} is in use",
                        field=f"ports.{port.name}",
                        hint="a leftover process holds it: run `peerlab down --all`, or "
                        "change the port in the manifest",
                    ) from None

    async def expose(self, node: Node, plane: FaultPlane) -> None:
        for port in node.system.ports.values():
            if port.proxied:
                await plane.expose(
                    node.name,
                    port.name,
                    port.protocol,
                    (node.address, port.port),
                    (node.bind_address, port.port),
                )

    def identify(self, requests: Sequence[Request]) -> list[Owner | None]:
        """By socket owner, among the node process trees only (peerlab.backends.owners)."""
        return self.owners.owners(requests)

    def _roots(self) -> dict[str, int]:
        return {
            name: node.pid
            for name, node in list(self.context.nodes().items())
            if node.pid is not None and node.alive
        }

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "address_block": self.block.block}

    def detach(self) -> dict[str, Any]:
        return {**super().detach(), "address_block": self.block.block}
