"""Transparent interception: node-to-node connections and datagrams diverted into the fabric.

On a backend whose nodes have real addresses of their own (network namespaces), the host's
`tproxy` rules (`peerlab.backends.plumbing`) hand every TCP connection and UDP datagram from
one node to another to the two listeners of an `Interceptor`, with the original destination
intact. The destination node is the one whose address it was sent to; the source node the one
whose address it comes from: attribution is exact, no lookup. Each connection or datagram goes
to the destination node's proxy for that port, a `TransparentTcpProxy` or
`TransparentUdpProxy`: the same proxies as on loopback (links, toxics, partitions, UDP flows,
counters), only without a listening socket of their own, and made on first contact for a port
the manifest does not name.

Onward, a proxy connects from a transparent socket bound to the source node's own address, so
the receiver sees the sender's real address. For UDP the port is kept too: every source
address and port gets an `endpoint`, a transparent socket bound to it, which sends that
source's datagrams and also receives what anyone sends back to that address and port (the
host's rules deliver it there) — a datagram like any other, to the source's node.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from peerlab.fabric.tcp import (
    CONNECT_TIMEOUT,
    IP_BIND_ADDRESS_NO_PORT,
    TcpProxy,
    abort,
    listen_error,
)
from peerlab.fabric.udp import BATCH, IDLE, MAX_DATAGRAM, SWEEP, Flow, UdpProxy

if TYPE_CHECKING:
    from peerlab.fabric.links import Links

IP_TRANSPARENT = getattr(socket, "IP_TRANSPARENT", 19)
IP_RECVORIGDSTADDR = getattr(socket, "IP_RECVORIGDSTADDR", 20)
IP_ORIGDSTADDR = IP_RECVORIGDSTADDR
Address = tuple[str, int]


def transparent(kind: int) -> socket.socket:
    """A socket that may bind an address this host does not own (and accept what `tproxy`
    diverts to it)."""
    sock = socket.socket(socket.AF_INET, kind)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def activate(proxy: TcpProxy | UdpProxy) -> None:
    """Put a proxy the interceptor feeds in service: it has no socket of its own to open."""
    if not proxy.enabled:
        proxy.enabled = True
        proxy.links.toxics.subscribe(proxy.refresh)


class TransparentTcpProxy(TcpProxy):
    """A node's TCP port, fed by the interceptor; dials on from the source node's address."""

    async def start(self) -> None:
        activate(self)

    def take(self, client: socket.socket, address: Address) -> None:
        self._spawn(self._open(client, address))

    async def _dial(self, server: socket.socket, src: str | None) -> None:
        public = self.links.public_ip(src)
        if public is None:
            raise ConnectionRefusedError  # only nodes reach here; see Interceptor._accept
        server.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
        server.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        server.bind((public, 0))
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(server, self.upstream), CONNECT_TIMEOUT)


class TransparentUdpProxy(UdpProxy):
    """A node's UDP port, fed by the interceptor; sends on from the source's own endpoint."""

    def __init__(
        self,
        name: str,
        address: Address,
        links: Links,
        node: str,
        endpoint: Callable[[Address], socket.socket],
    ) -> None:
        super().__init__(name, address, address, links, node)
        self._endpoint = endpoint

    async def start(self) -> None:
        activate(self)

    def inbound(self, data: bytes, source: Address) -> None:
        self.counts["received"] += 1
        self.counts["bytes"] += len(data)
        self._inbound(data, source)

    def _forward(self, flow: Flow, data: bytes) -> None:
        self.links.attempts.record(flow.src, self.node, "udp")
        try:
            sender = self._endpoint(flow.address)
        except OSError:  # the source's address and port cannot be bound: lost, as in UDP
            self.counts["dropped"] += 1
            return
        self._send(flow, "upstream", sender, data, self.upstream)


class Interceptor:
    """The transparent listeners of one fabric, and the UDP endpoints it sends from."""

    def __init__(
        self,
        host: str,
        tcp: Callable[[Address], TransparentTcpProxy | None],
        udp: Callable[[Address], TransparentUdpProxy | None],
        is_node: Callable[[str], bool],
        on_refused: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.host = host
        self._on_refused = on_refused
        self._tcp_proxy = tcp
        self._udp_proxy = udp
        self._is_node = is_node
        self.tcp_port = 0
        self.udp_port = 0
        self.refused = 0  # connections and datagrams from or to no node
        self._tcp: socket.socket | None = None
        self._udp: socket.socket | None = None
        self._endpoints: dict[Address, socket.socket] = {}
        self._used: dict[Address, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self) -> tuple[int, int]:
        """Listen on the host address; the (tcp, udp) ports the host's rules divert to."""
        loop = asyncio.get_running_loop()
        tcp = transparent(socket.SOCK_STREAM)
        udp = transparent(socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_IP, IP_RECVORIGDSTADDR, 1)
        try:
            tcp.bind((self.host, 0))
            tcp.listen(1024)
            udp.bind((self.host, 0))
        except OSError as exc:
            tcp.close()
            udp.close()
            raise listen_error((self.host, 0), exc) from None
        self._tcp, self._udp = tcp, udp
        self.tcp_port, self.udp_port = tcp.getsockname()[1], udp.getsockname()[1]
        task = loop.create_task(self._accept(tcp))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        loop.add_reader(udp.fileno(), self._on_diverted, udp)
        self._sweeper = loop.call_later(SWEEP, self._sweep)
        return self.tcp_port, self.udp_port

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._sweeper is not None:
            self._sweeper.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._udp is not None:
            loop.remove_reader(self._udp.fileno())
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for address in list(self._endpoints):
            self._close_endpoint(address)

    # ------------------------------------------------------------------ TCP

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, source = await loop.sock_accept(sock)
            except OSError:
                await asyncio.sleep(0.1)  # out of descriptors: let connections finish
                continue
            destination = client.getsockname()[:2]  # the original destination
            proxy = self._tcp_proxy(destination) if self._is_node(source[0]) else None
            if proxy is None:
                self.refused += 1
                abort(client)
                if self._on_refused is not None:
                    self._on_refused(
                        {
                            "protocol": "tcp",
                            "src": f"{source[0]}:{source[1]}",
                            "dst": f"{destination[0]}:{destination[1]}",
                            "node": None,
                            "reason": "from or to no node of this environment",
                            "orphaned": False,
                            "waited_ms": 0.0,
                        }
                    )
                continue
            proxy.take(client, source[:2])

    # ------------------------------------------------------------------ UDP

    def _on_diverted(self, sock: socket.socket) -> None:
        """Datagrams to a destination that has no endpoint yet (the first of a flow)."""
        for _ in range(BATCH):
            try:
                data, ancillary, _, source = sock.recvmsg(MAX_DATAGRAM, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            destination = _original_destination(ancillary)
            if destination is not None:
                self._deliver(data, source[:2], destination)

    def _on_endpoint(self, sock: socket.socket, address: Address) -> None:
        """Datagrams sent to the address and port an endpoint holds (answers to it)."""
        for _ in range(BATCH):
            try:
                data, source = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            self._deliver(data, source[:2], address)

    def _deliver(self, data: bytes, source: Address, destination: Address) -> None:
        proxy = self._udp_proxy(destination) if self._is_node(source[0]) else None
        if proxy is None:
            self.refused += 1
            return
        proxy.inbound(data, source)

    def endpoint(self, address: Address) -> socket.socket:
        """The socket that sends as `address` (a node's address and port), bound on demand."""
        self._used[address] = asyncio.get_running_loop().time()
        sock = self._endpoints.get(address)
        if sock is None:
            sock = transparent(socket.SOCK_DGRAM)
            try:
                sock.bind(address)
            except OSError:
                sock.close()
                raise
            asyncio.get_running_loop().add_reader(sock.fileno(), self._on_endpoint, sock, address)
            self._endpoints[address] = sock
        return sock

    def forget(self, ip: str) -> None:
        """Close the endpoints of a node that is gone."""
        for address in [a for a in self._endpoints if a[0] == ip]:
            self._close_endpoint(address)

    def _close_endpoint(self, address: Address) -> None:
        sock = self._endpoints.pop(address, None)
        self._used.pop(address, None)
        if sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()

    def _sweep(self) -> None:
        """Close endpoints unused for a while (a source's ephemeral ports come and go); a
        later datagram to one is diverted to the listener again."""
        now = asyncio.get_running_loop().time()
        for address, used in list(self._used.items()):
            if now - used > IDLE:
                self._close_endpoint(address)
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP, self._sweep)

    def stats(self) -> dict[str, int]:
        return {
            "tcp_port": self.tcp_port,
            "udp_port": self.udp_port,
            "endpoints": len(self._endpoints),
            "refused": self.refused,
        }


def _original_destination(ancillary: list[tuple[int, int, bytes]]) -> Address | None:
    for level, kind, raw in ancillary:
        if level == socket.SOL_IP and kind == IP_ORIGDSTADDR and len(raw) >= 8:
            (port,) = struct.unpack("!H", raw[2:4])
            return socket.inet_ntoa(raw[4:8]), port
    return None
