"""The Fabric: an environment's proxies and the faults on its links, on the environment's loop.

Every proxied port of a node gets a proxy on the node's public address that forwards to
its bind address. All proxies share one `Links`, so a fault applied here reaches every
connection and datagram on its link, including connections already open.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any, Literal

from peerlab.clock import Cancellable
from peerlab.fabric.errors import Conflict, NotFound
from peerlab.fabric.faults import Fault, LinkFault, Partition, RollingPartition, ToxicFault
from peerlab.fabric.links import Links
from peerlab.fabric.tcp import TcpProxy
from peerlab.fabric.udp import UdpProxy
from peerlab.history import History
from peerlab.seed import derive_rng

Proxy = TcpProxy | UdpProxy


def _address(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def carries(conn_src: str | None, conn_dst: str | None, src: str | None, dst: str | None) -> bool:
    """Whether a connection from `conn_src` to `conn_dst` carries data from `src` to `dst`."""
    return (src in (None, conn_src) and dst in (None, conn_dst)) or (
        src in (None, conn_dst) and dst in (None, conn_src)
    )


class Fabric:
    """An environment's proxies and the faults on its links; lives on the env's event loop.

    The FaultPlane (`peerlab.fabric.plane`) of backends whose nodes talk over real sockets.
    """

    enabled = True

    def __init__(
        self,
        seed: int,
        history: History | None,
        identify: Callable[[str, int], str | None] | None,
    ) -> None:
        self.seed = seed
        self.history = history
        self.links = Links(seed, identify)
        self.proxies: dict[tuple[str, str], Proxy] = {}
        self.faults: dict[str, Fault] = {}
        self._nodes: list[str] = []
        self._heal_timer: Cancellable | None = None
        self._rolling: Cancellable | None = None
        self._step: Partition | None = None  # the rolling partition's current cut

    # ------------------------------------------------------------------ proxies

    async def expose(
        self,
        node: str,
        port_name: str,
        protocol: Literal["tcp", "udp"],
        listen: tuple[str, int],
        upstream: tuple[str, int],
    ) -> None:
        """Start a proxy on `listen` for `upstream`; PeerlabError naming the address if taken."""
        previous = self.proxies.pop((node, port_name), None)
        if previous is not None:
            await previous.stop()
        self.links.add_node(node, listen[0], upstream[0])
        if node not in self._nodes:
            self._nodes.append(node)
        cls = TcpProxy if protocol == "tcp" else UdpProxy
        proxy = cls(f"{node}:{port_name}", listen, upstream, self.links, node)
        await proxy.start()
        self.proxies[(node, port_name)] = proxy

    async def unexpose(self, node: str) -> None:
        """Stop the node's proxies (it was removed); their connections are closed."""
        for key in [key for key in self.proxies if key[0] == node]:
            await self.proxies.pop(key).stop()
        if node in self._nodes:
            self._nodes.remove(node)

    async def close(self) -> None:
        """Stop every proxy and timer."""
        self._stop_partition()
        for proxy in list(self.proxies.values()):
            await proxy.stop()
        self.proxies.clear()

    # ------------------------------------------------------------------ faults

    def apply(self, fault: Fault) -> Fault:
        """Apply `fault`; a link fault or partition replaces the one of the same name."""
        existing = self.faults.get(fault.name)
        if existing is not None:
            partitions = (Partition, RollingPartition)
            if not (
                (isinstance(fault, LinkFault) and isinstance(existing, LinkFault))
                or (isinstance(fault, partitions) and isinstance(existing, partitions))
            ):
                raise Conflict(
                    "toxic already exists"
                    if isinstance(fault, ToxicFault)
                    else f"a fault named {fault.name!r} is already applied",
                    field="name",
                    hint="remove it first, or give this one another name",
                )
            self.remove(fault.name)
        if isinstance(fault, LinkFault | ToxicFault):
            self.links.toxics.add(*fault.entries())
        self.faults[fault.name] = fault
        self._record("apply", fault)
        if isinstance(fault, Partition):
            self._cut(fault)
            if fault.duration is not None:
                self._heal_timer = self._later(fault.duration, self._expire, fault)
        elif isinstance(fault, RollingPartition):
            self._rolling = self._start_rolling(fault)
        return fault

    def remove(self, name: str, expected: dict[str, Any] | None = None) -> Fault:
        """Remove the fault `name` (only if it still is `expected`, when given)."""
        fault = self.faults.get(name)
        if fault is None or (expected is not None and fault.to_dict() != expected):
            raise NotFound(
                f"no fault named {name!r} is applied",
                field="name",
                hint=f"applied: {', '.join(self.faults) or 'none'}",
            )
        if isinstance(fault, LinkFault | ToxicFault):
            self.links.toxics.remove(*(entry.spec.name for entry in fault.entries()))
        else:
            self._stop_partition()
        del self.faults[name]
        self._record("remove", fault)
        return fault

    def heal(self) -> None:
        if Partition.name in self.faults:
            self.remove(Partition.name)

    def clear(self) -> None:
        for name in reversed(list(self.faults)):
            self.remove(name)

    def reset(self, src: str | None, dst: str | None) -> int:
        """Reset (RST) the open TCP connections that carry data from `src` to `dst`."""
        doomed = [
            conn
            for (node, _), proxy in self.proxies.items()
            if isinstance(proxy, TcpProxy)
            for conn in proxy.connections
            if carries(conn.src, node, src, dst)
        ]
        for conn in doomed:
            conn.reset()
        return len(doomed)

    def show(self) -> dict[str, Any]:
        links: dict[tuple[str, str], list[str]] = {}
        for fault in self.faults.values():
            if isinstance(fault, LinkFault | ToxicFault):
                links.setdefault((fault.src or "*", fault.dst or "*"), []).append(fault.name)
        partition = self.faults.get(Partition.name)
        return {
            "faults": [fault.to_dict() for fault in self.faults.values()],
            "links": [{"src": s, "dst": d, "faults": names} for (s, d), names in links.items()],
            "partition": partition.to_dict() if partition is not None else None,
            "cut": self._current_cut(),
            "proxies": [
                {
                    "node": node,
                    "port": port,
                    "protocol": proxy.protocol,
                    "listen": _address(proxy.listen),
                    "upstream": _address(proxy.upstream),
                    **proxy.stats(),
                }
                for (node, port), proxy in self.proxies.items()
            ],
        }

    def export(self) -> list[dict[str, Any]]:
        return [fault.to_dict() for fault in self.faults.values()]

    # ------------------------------------------------------------------ partitions

    def _current_cut(self) -> list[list[str]]:
        """The directed node pairs the partition blocks now."""
        if self.links.cut is None:
            return []
        return [[a, b] for a in self._nodes for b in self._nodes if self.links.blocked(a, b)]

    def _cut(self, partition: Partition | None) -> None:
        self.links.cut = partition
        if partition is not None:
            for proxy in self.proxies.values():
                if isinstance(proxy, TcpProxy):
                    proxy.cut()

    def _stop_partition(self) -> None:
        if self._heal_timer is not None:
            self._heal_timer.cancel()
            self._heal_timer = None
        if self._rolling is not None:
            self._rolling.cancel()
            self._rolling = None
        if self._step is not None:
            self._record("remove", self._step)
            self._step = None
        self._cut(None)

    def _expire(self, partition: Partition) -> None:
        self._heal_timer = None
        if self.faults.get(Partition.name) is partition:
            self.remove(Partition.name)

    def _later(self, delay: float, callback: Callable[..., None], *args: Any) -> Cancellable:
        """Run `callback(*args)` `delay` seconds from now (the plane's time)."""
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def _start_rolling(self, rolling: RollingPartition) -> Cancellable:
        return asyncio.get_running_loop().create_task(self._roll(rolling))

    async def _roll(self, rolling: RollingPartition) -> None:
        order = self._roll_order(rolling)
        for step in itertools.count():
            self._roll_step(rolling, order, step)
            await asyncio.sleep(rolling.period)

    def _roll_order(self, rolling: RollingPartition) -> list[str]:
        order = sorted(rolling.nodes or self._nodes)
        derive_rng(self.seed, "rolling", *order).shuffle(order)
        return order

    def _roll_step(self, rolling: RollingPartition, order: list[str], step: int) -> None:
        if self._step is not None:
            self._record("remove", self._step)
        # Everyone else stays together, nodes added meanwhile included.
        everyone = sorted({*self._nodes, *order})
        self._step = rolling.step(order[step % len(order)], everyone)
        self._record("apply", self._step)
        self._cut(self._step)

    def _record(self, action: Literal["apply", "remove"], fault: Fault) -> None:
        if self.history is not None:
            with contextlib.suppress(Exception):
                self.history.fault(action, fault.to_dict())
