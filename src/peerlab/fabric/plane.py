"""The FaultPlane: what carries the traffic between nodes and applies faults to it.

`fabric.Network` (`env.net`) drives a FaultPlane. The userspace proxies (`Fabric`) are one
implementation, for backends whose nodes talk over real sockets; a simulator implements
the same protocol with simulated links. `NoFabric` stands in when an Environment runs
without a fabric: every fault is refused with the reason, never silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from peerlab.errors import UsageError
from peerlab.fabric.faults import Fault


class FaultPlane(Protocol):
    """Links between nodes, and the faults on them. Methods run on the Environment's loop."""

    enabled: bool  # whether faults can be applied at all

    async def expose(
        self,
        node: str,
        port_name: str,
        protocol: Literal["tcp", "udp"],
        listen: tuple[str, int],
        upstream: tuple[str, int],
    ) -> None:
        """Carry what arrives for `node`'s port at `listen` on to `upstream`."""
        ...

    async def unexpose(self, node: str) -> None: ...

    async def divert(self, host: str) -> tuple[int, int]:
        """Take node-to-node traffic that the backend diverts to the host address `host`
        (transparent interception); the (TCP, UDP) ports to divert it to."""
        ...

    async def intercept(self, node: str, address: str, ports: dict[tuple[str, int], str]) -> None:
        """`node` has the address `address` of its own; its manifest's ports are
        `ports` ((protocol, port) -> name)."""
        ...

    def apply(self, fault: Fault) -> Fault: ...

    def remove(self, name: str, expected: dict[str, Any] | None = None) -> Fault: ...

    def heal(self) -> None: ...

    def clear(self) -> None: ...

    def reset(self, src: str | None, dst: str | None) -> int: ...

    def show(self) -> dict[str, Any]: ...

    def links_view(self) -> dict[str, Any]:
        """Every directed link: connections and how their source was told, bytes, faults."""
        ...

    def sample(self) -> None:
        """Record the bytes forwarded on the cut links now (for the fidelity checker)."""
        ...

    def export(self) -> list[dict[str, Any]]: ...

    def attempts(self, src: str | None, dst: str | None) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


class NoFabric:
    """The plane of an Environment started without a fabric: nodes talk directly."""

    enabled = False

    async def expose(
        self,
        node: str,
        port_name: str,
        protocol: Literal["tcp", "udp"],
        listen: tuple[str, int],
        upstream: tuple[str, int],
    ) -> None:
        return None

    async def unexpose(self, node: str) -> None:
        return None

    async def divert(self, host: str) -> tuple[int, int]:
        raise UsageError(
            "nodes with addresses of their own reach each other only through the fabric",
            field="fabric",
            hint="start the network with the fabric on (drop --no-fabric / fabric=False)",
        )

    async def intercept(self, node: str, address: str, ports: dict[tuple[str, int], str]) -> None:
        return None

    def _refuse(self) -> UsageError:
        return UsageError(
            "this network runs without a fabric, so it cannot apply network faults",
            field="fabric",
            hint="start it with the fabric on (drop --no-fabric / fabric=False)",
        )

    def apply(self, fault: Fault) -> Fault:
        raise self._refuse()

    def remove(self, name: str, expected: dict[str, Any] | None = None) -> Fault:
        raise self._refuse()

    def heal(self) -> None:
        return None  # nothing is cut

    def clear(self) -> None:
        return None  # nothing is applied

    def reset(self, src: str | None, dst: str | None) -> int:
        raise self._refuse()

    def show(self) -> dict[str, Any]:
        return {"faults": [], "links": [], "partition": None, "cut": [], "proxies": []}

    def links_view(self) -> dict[str, Any]:
        return {"links": [], "unattributed": [], "attribution": {"counts": {}}}

    def sample(self) -> None:
        return None

    def export(self) -> list[dict[str, Any]]:
        return []

    def attempts(self, src: str | None, dst: str | None) -> list[dict[str, Any]]:
        return []  # nodes talk directly: nobody sees their attempts

    async def close(self) -> None:
        return None
