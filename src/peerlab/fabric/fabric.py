"""The Fabric: an environment's proxies and the faults on its links, on the environment's loop.

Every proxied port of a node gets a proxy on the node's public address that forwards to
its bind address (`expose`, on loopback). Where nodes have real addresses of their own, the
backend diverts their traffic to the fabric instead (`divert`, `intercept`; see
transparent.py) and each node port gets a transparent proxy. All proxies share one `Links`,
so a fault applied here reaches every connection and datagram on its link, including
connections already open.

Whenever the faults change, the bytes forwarded so far on the links cut before or after
the change are recorded in the history (a `link_bytes` event), with the node pairs the
partition declares cut from then on: the fidelity checker reads them to show that a cut
link carried nothing while it was cut. `links()` is the per-link view (`net links`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any, Literal

from peerlab.clock import Cancellable
from peerlab.fabric.attribution import Attributor, Identify
from peerlab.fabric.errors import Conflict, NotFound
from peerlab.fabric.faults import Fault, LinkFault, Partition, RollingPartition, ToxicFault
from peerlab.fabric.links import LinkKey, Links
from peerlab.fabric.tcp import TcpProxy
from peerlab.fabric.transparent import (
    Interceptor,
    TransparentTcpProxy,
    TransparentUdpProxy,
    activate,
)
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

    def __init__(self, seed: int, history: History | None, identify: Identify | None) -> None:
        self.seed = seed
        self.history = history
        self.links = Links(seed, Attributor(identify, self._unattributed))
        if history is not None:
            self.links.attempts.clock = history.elapsed
        self.proxies: dict[tuple[str, str], Proxy] = {}
        self.faults: dict[str, Fault] = {}
        self._nodes: list[str] = []
        self._heal_timer: Cancellable | None = None
        self._rolling: Cancellable | None = None
        self._step: Partition | None = None  # the rolling partition's current cut
        self.interceptor: Interceptor | None = None
        self._by_ip: dict[str, str] = {}  # intercepted nodes by address
        self._port_names: dict[tuple[str, str, int], str] = {}  # (node, protocol, port) -> name
        self._sampled_cut: list[list[str]] = []  # the declared cut at the last sample

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
        for ip in [ip for ip, name in self._by_ip.items() if name == node]:
            del self._by_ip[ip]
            if self.interceptor is not None:
                self.interceptor.forget(ip)

    async def divert(self, host: str) -> tuple[int, int]:
        """Listen transparently on the host address `host`; the (TCP, UDP) ports that the
        backend's rules divert node-to-node traffic to."""
        if self.interceptor is None:
            self.interceptor = Interceptor(
                host,
                self._tcp_proxy,
                self._udp_proxy,
                lambda ip: ip in self._by_ip,
                self._unattributed,
            )
            await self.interceptor.start()
        return self.interceptor.tcp_port, self.interceptor.udp_port

    async def intercept(self, node: str, address: str, ports: dict[tuple[str, int], str]) -> None:
        """`node` is at `address` (its own, exact: what comes from it is its), and its
        diverted traffic goes through proxies named after its manifest's `ports`
        ((protocol, port) -> name); other ports get proxies named `tcp/PORT`, `udp/PORT`."""
        self.links.add_own_address(node, address)
        self._by_ip[address] = node
        if node not in self._nodes:
            self._nodes.append(node)
        for (protocol, port), name in ports.items():
            self._port_names[(node, protocol, port)] = name
            if protocol == "tcp":
                self._tcp_proxy((address, port))
            else:
                self._udp_proxy((address, port))

    def _transparent_key(
        self, protocol: str, destination: tuple[str, int]
    ) -> tuple[str, str] | None:
        node = self._by_ip.get(destination[0])
        if node is None:
            return None
        port = destination[1]
        return node, self._port_names.get((node, protocol, port), f"{protocol}/{port}")

    def _tcp_proxy(self, destination: tuple[str, int]) -> TransparentTcpProxy | None:
        key = self._transparent_key("tcp", destination)
        if key is None:
            return None
        proxy = self.proxies.get(key)
        if not isinstance(proxy, TransparentTcpProxy):
            proxy = TransparentTcpProxy(":".join(key), destination, destination, self.links, key[0])
            activate(proxy)
            self.proxies[key] = proxy
        return proxy

    def _udp_proxy(self, destination: tuple[str, int]) -> TransparentUdpProxy | None:
        key = self._transparent_key("udp", destination)
        if key is None or self.interceptor is None:
            return None
        proxy = self.proxies.get(key)
        if not isinstance(proxy, TransparentUdpProxy):
            proxy = TransparentUdpProxy(
                ":".join(key), destination, self.links, key[0], self.interceptor.endpoint
            )
            activate(proxy)
            self.proxies[key] = proxy
        return proxy

    async def close(self) -> None:
        """Stop every proxy and timer."""
        self._stop_partition()
        for proxy in list(self.proxies.values()):
            await proxy.stop()
        self.proxies.clear()
        if self.interceptor is not None:
            await self.interceptor.stop()
        self.links.attributor.close()

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
        if isinstance(fault, LinkFault | ToxicFault):
            self.sample()
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
        if isinstance(fault, LinkFault | ToxicFault):
            self.sample()
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

    def attempts(self, src: str | None, dst: str | None) -> list[dict[str, Any]]:
        return [
            {"src": s, "dst": d, "protocol": protocol, "times": times}
            for (s, d, protocol), times in self.links.attempts.times(src, dst).items()
        ]

    # ------------------------------------------------------------------ partitions

    def _current_cut(self) -> list[list[str]]:
        """The directed node pairs the partition declares cut now.

        Read from the partition itself, not from what the proxies enforce: the fidelity
        checker compares the two.
        """
        cut = self.links.cut
        if cut is None:
            return []
        nodes = self._nodes
        return [[a, b] for a in nodes for b in nodes if a != b and cut.blocks(a, b)]

    def _cut(self, partition: Partition | None) -> None:
        self.links.cut = partition
        if partition is not None:
            for proxy in self.proxies.values():
                if isinstance(proxy, TcpProxy):
                    proxy.cut()
        self.sample()

    # ------------------------------------------------------------------ what links carry

    def link_bytes(self) -> dict[LinkKey, list[int]]:
        """Bytes forwarded so far per (src, dst, protocol): [src -> dst, dst -> src]."""
        totals = {key: list(value) for key, value in self.links.bytes.items()}
        for (node, _), proxy in self.proxies.items():
            if isinstance(proxy, TcpProxy):
                for conn in proxy.connections:
                    entry = totals.setdefault((conn.src, node, "tcp"), [0, 0])
                    entry[0] += conn.pumps[0].bytes
                    entry[1] += conn.pumps[1].bytes
        return totals

    def sample(self) -> None:
        """Record the bytes forwarded on the links cut before or after now, and the cut.

        Called on the loop as the faults change, so nothing moves between the change and
        the sample: bytes that a link counts between two samples crossed it in between.
        """
        cut = self._current_cut()
        pairs = {tuple(pair) for pair in self._sampled_cut + cut}
        self._sampled_cut = cut
        if self.history is None:
            return
        totals = self.link_bytes()
        links = [
            {"src": src, "dst": dst, "protocol": protocol, "up": up, "down": down}
            for (src, dst, protocol), (up, down) in sorted(
                totals.items(), key=lambda item: str(item[0])
            )
            if (src, dst) in pairs or (dst, src) in pairs
        ]
        with contextlib.suppress(Exception):
            self.history.event("link_bytes", None, cut=cut, links=links)

    def links_view(self) -> dict[str, Any]:
        """Every directed link with traffic, open connections or a cut: connections (and UDP
        flows) by how their source was told, bytes each way, and the faults on it."""
        open_by_link: dict[LinkKey, dict[str, int]] = {}
        for (node, _), proxy in self.proxies.items():
            if isinstance(proxy, TcpProxy):
                for conn in proxy.connections:
                    hows = open_by_link.setdefault((conn.src, node, "tcp"), {})
                    hows[conn.how] = hows.get(conn.how, 0) + 1
            else:
                for flow in proxy.flows.values():
                    if flow.how is not None and flow.refused_at is None:
                        hows = open_by_link.setdefault((flow.src, node, "udp"), {})
                        hows[flow.how] = hows.get(flow.how, 0) + 1
        cut = {tuple(pair) for pair in self._current_cut()}
        totals = self.link_bytes()
        keys = set(totals) | set(open_by_link)
        keys |= {(a, b, "tcp") for a, b in cut if not any(k[:2] == (a, b) for k in keys)}
        rows = []
        for key in sorted(keys, key=lambda k: (k[0] or "", k[1] or "", k[2])):
            src, dst, protocol = key
            up, down = totals.get(key, [0, 0])
            rows.append(
                {
                    "src": src if src is not None else "client",
                    "dst": dst,
                    "protocol": protocol,
                    "open": sum(open_by_link.get(key, {}).values()),
                    "attribution": open_by_link.get(key, {}),
                    "bytes_up": up,
                    "bytes_down": down,
                    "cut": (src, dst) in cut,
                    "faults": self._faults_on(src, dst),
                }
            )
        attributor = self.links.attributor
        return {
            "links": rows,
            "unattributed": list(attributor.refused),
            "attribution": attributor.stats(),
        }

    def _faults_on(self, src: str | None, dst: str | None) -> list[str]:
        """The faults that act on connections `src` opens to `dst` (either stream)."""
        names = [
            fault.name
            for fault in self.faults.values()
            if isinstance(fault, LinkFault | ToxicFault)
            and any(entry.matches(src, dst) for entry in fault.entries())
        ]
        cut = self.links.cut
        if src is not None and dst is not None and src != dst and cut and cut.blocks(src, dst):
            names.append(Partition.name)
        return names

    def _unattributed(self, refusal: dict[str, Any]) -> None:
        if self.history is not None:
            data = {key: value for key, value in refusal.items() if key != "node"}
            self.history.event("unattributed", refusal.get("node"), **data)

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
