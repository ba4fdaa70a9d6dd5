"""UDP proxies: relay each datagram to a node through the faults of its link.

A datagram from node S to node D's public address arrives at D's proxy, which sends it on
to D's bind address *from S's own public socket* (the socket of S's proxy on the port S
sent from). So D sees every datagram come from the sender's public address, the one a
Kademlia-style node also writes in its messages; D's answer goes to that public address,
arrives at S's proxy, and takes the D->S link. Every datagram crosses exactly one proxy,
the receiver's, where the partition and the faults of its directed link apply.

A source with no public socket on that port (a client, or a node sending from another
port) gets a socket of its own in D's proxy, bound to its node's public address when
known; D's answers to that socket are relayed back from D's public address, on the
`downstream` stream of the same link.

A flow whose source address is no node's bind address waits (up to `PENDING` datagrams)
while the socket's owner is looked up; one that cannot be told is refused for a while
(`QUARANTINE`), its datagrams dropped. A flow told by owner is told again after a pause
(`REVERIFY`), since another socket may take its port. The partition is checked when a
datagram leaves, delays included: a datagram held back by a latency before a cut is
dropped if the cut is on when it is due.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import time

from peerlab.fabric.attribution import Attribution, How
from peerlab.fabric.links import Links, LinkToxic, Stage, restage
from peerlab.fabric.tcp import listen_error
from peerlab.fabric.toxics import Stub
from peerlab.seed import derive_rng

BATCH = 64  # datagrams read per wake-up, so one busy proxy cannot starve the loop
MAX_DATAGRAM = 65535
PENDING = 256  # datagrams kept while the sender is being identified
IDLE = 120.0  # seconds after which an unused per-source socket is closed
SWEEP = 30.0
QUARANTINE = 1.0  # seconds a source that could not be told is refused before a new lookup
REVERIFY = 5.0  # seconds of silence after which an owner-told flow is told again


class Flow:
    """The datagrams between one source address and the proxy's node."""

    def __init__(self, proxy: UdpProxy, address: tuple[str, int]) -> None:
        self.proxy = proxy
        self.address = address
        self.src: str | None = None
        self.how: How | None = None
        self.refused_at: float | None = None
        self.number = 0
        self.stages: dict[str, list[Stage]] = {"upstream": [], "downstream": []}
        self.socket: socket.socket | None = None
        self.seen = 0.0
        self.pending: list[bytes] | None = []  # None once the source is identified

    def identified(self, attribution: Attribution, number: int) -> list[bytes]:
        if self.socket is not None and attribution.node != self.src:
            self.close_socket()  # bound to the former source's public address
        self.src, self.how, self.number = attribution.node, attribution.how, number
        held, self.pending = self.pending or [], None
        self.refresh()
        return held

    def refresh(self) -> None:
        for stream, stages in self.stages.items():
            items = self.proxy.links.toxics.select(self.src, self.proxy.node, stream, "udp")
            self.stages[stream] = restage(
                stages, items, functools.partial(self._new_stub, stream=stream)
            )

    def _new_stub(self, item: LinkToxic, stream: str) -> Stub:
        rng = derive_rng(
            self.proxy.links.seed,
            "udp",
            self.proxy.name,
            self.src or "client",
            self.number,
            item.spec.name,
            stream,
        )
        return Stub(rng, rng.random() < item.spec.toxicity)

    def delays(self, stream: str) -> list[float]:
        """When each copy of the next datagram leaves (seconds from now); [] if lost."""
        delays = [0.0]
        for stage in self.stages[stream]:
            if stage.active:
                delays = [d + extra for d in delays for extra in stage.toxic.deliver(stage.stub)]
        return delays

    def close_socket(self) -> None:
        if self.socket is not None:
            asyncio.get_running_loop().remove_reader(self.socket.fileno())
            self.socket.close()
            self.socket = None

    def close(self) -> None:
        self.close_socket()
        for stages in self.stages.values():
            for stage in stages:
                stage.stub.remove()


class UdpProxy:
    """Relays datagrams sent to `listen` on to `upstream`, through their link's faults."""

    protocol = "udp"

    def __init__(
        self,
        name: str,
        listen: tuple[str, int],
        upstream: tuple[str, int],
        links: Links,
        node: str | None = None,
    ) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.links = links
        self.node = node
        self.enabled = False
        self.flows: dict[tuple[str, int], Flow] = {}
        self.counts = {"received": 0, "sent": 0, "dropped": 0, "bytes": 0, "refused": 0}
        self._numbers: dict[str | None, int] = {}
        self._socket: socket.socket | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; raises PeerlabError naming the address if it is taken."""
        if self.enabled:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.bind(self.listen)
        except OSError as exc:
            sock.close()
            raise listen_error(self.listen, exc) from None
        self._socket = sock
        self.listen = sock.getsockname()[:2]
        self.enabled = True
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), self._on_readable, sock, None)
        self.links.public_sockets[self.upstream] = sock
        self.links.toxics.subscribe(self.refresh)
        self._sweeper = loop.call_later(SWEEP, self._sweep)

    async def stop(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        self.links.toxics.unsubscribe(self.refresh)
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks):
            task.cancel()
        for flow in self.flows.values():
            flow.close()
        self.flows.clear()
        if self._socket is not None:  # a transparent proxy has none (see transparent.py)
            if self.links.public_sockets.get(self.upstream) is self._socket:
                del self.links.public_sockets[self.upstream]
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None

    def refresh(self) -> None:
        for flow in self.flows.values():
            if flow.pending is None:
                flow.refresh()

    def stats(self) -> dict[str, int]:
        return {"flows": len(self.flows), **self.counts}

    def _on_readable(self, sock: socket.socket, flow: Flow | None) -> None:
        for _ in range(BATCH):
            try:
                data, address = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an error queued for an earlier datagram; the socket still works
            self.counts["received"] += 1
            self.counts["bytes"] += len(data)
            if flow is None:
                self._inbound(data, address)
            else:
                self._reply(flow, data)

    def _inbound(self, data: bytes, address: tuple[str, int]) -> None:
        now = asyncio.get_running_loop().time()
        flow = self.flows.get(address)
        if flow is not None and flow.refused_at is not None:
            if now - flow.refused_at < QUARANTINE:
                self.counts["dropped"] += 1
                return
            self.flows.pop(address).close()  # a new lookup: another socket may hold the port
            flow = None
        elif flow is not None and flow.how in ("owner", "client") and now - flow.seen > REVERIFY:
            flow.pending = []  # told again: the socket on that port may have changed
            self._attribute(flow)
        if flow is None:
            flow = self.flows[address] = Flow(self, address)
            began = time.monotonic()
            known = self.links.attributor.by_address(address[0])
            if known is None:
                self._attribute(flow)
            else:
                self._identified(flow, self.links.attributor.settled(known, began))
        flow.seen = now
        if flow.pending is None:
            self._forward(flow, data)
        elif len(flow.pending) < PENDING:
            flow.pending.append(data)
        else:
            self.counts["dropped"] += 1

    def _attribute(self, flow: Flow) -> None:
        task = asyncio.get_running_loop().create_task(self._identify(flow))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _identify(self, flow: Flow) -> None:
        assert self._socket is not None
        attribution = await self.links.attributor.attribute(
            "udp", flow.address, self._socket.getsockname()[:2], self.node
        )
        if attribution.how == "unattributed":
            self.counts["refused"] += 1
            self.counts["dropped"] += len(flow.pending or [])
            flow.pending = []
            flow.refused_at = asyncio.get_running_loop().time()
            return
        for data in self._identified(flow, attribution):
            self._forward(flow, data)

    def _identified(self, flow: Flow, attribution: Attribution) -> list[bytes]:
        src = attribution.node
        number = self._numbers[src] = self._numbers.get(src, 0) + 1
        return flow.identified(attribution, number)

    def _forward(self, flow: Flow, data: bytes) -> None:
        self.links.attempts.record(flow.src, self.node, "udp")
        sender = self.links.public_sockets.get(flow.address) or self._own_socket(flow)
        self._send(flow, "upstream", sender, data, self.upstream)

    def _reply(self, flow: Flow, data: bytes) -> None:
        flow.seen = asyncio.get_running_loop().time()
        if self._socket is None:
            self.counts["dropped"] += 1
            return
        self._send(flow, "downstream", self._socket, data, flow.address)

    def _own_socket(self, flow: Flow) -> socket.socket:
        if flow.socket is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind((self.links.public_ip(flow.src) or "127.0.0.1", 0))
            asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable, sock, flow)
            flow.socket = sock
        return flow.socket

    def _send(
        self, flow: Flow, stream: str, sock: socket.socket, data: bytes, to: tuple[str, int]
    ) -> None:
        delays = flow.delays(stream)
        if not delays:
            self.counts["dropped"] += 1
        for delay in delays:
            if delay > 0:
                self._send_at(time.monotonic() + delay, flow, stream, sock, data, to)
            else:
                self._sendto(flow, stream, sock, data, to)

    def _send_at(
        self,
        due: float,
        flow: Flow,
        stream: str,
        sock: socket.socket,
        data: bytes,
        to: tuple[str, int],
    ) -> None:
        """Send at `due`, never before: the loop's timers tick in milliseconds and may fire
        up to one early, so an early wake waits again for what remains."""
        remaining = due - time.monotonic()
        if remaining > 0:
            asyncio.get_running_loop().call_later(
                remaining, self._send_at, due, flow, stream, sock, data, to
            )
        else:
            self._sendto(flow, stream, sock, data, to)

    def _sendto(
        self, flow: Flow, stream: str, sock: socket.socket, data: bytes, to: tuple[str, int]
    ) -> None:
        # Checked when the datagram leaves, not when it came: a cut applied while a
        # latency held it back stops it too.
        src, dst = (flow.src, self.node) if stream == "upstream" else (self.node, flow.src)
        if self.links.blocked(src, dst):
            self.counts["dropped"] += 1
            return
        try:
            sock.sendto(data, to)
        except OSError:  # a full buffer or a closed socket: the datagram is lost, as in UDP
            self.counts["dropped"] += 1
            return
        self.counts["sent"] += 1
        size = len(data)
        key = (flow.src, self.node, "udp")
        if stream == "upstream":
            self.links.count(key, size, 0)
        else:
            self.links.count(key, 0, size)

    def _sweep(self) -> None:
        now = asyncio.get_running_loop().time()
        for flow in self.flows.values():
            if flow.socket is not None and now - flow.seen > IDLE:
                flow.close_socket()
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP, self._sweep)
