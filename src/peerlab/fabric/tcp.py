"""TCP proxies: accept a connection, find its link, dial the upstream, pump both ways.

The same proxy serves the Toxiproxy-compatible server (one `Links` per proxy, every
connection a client) and the environment's fabric (one `Links` shared by every proxy, each
connection named by the node it comes from). Nothing is read from a connection until its
source is known: its bytes wait in the kernel's buffers (the sender blocks when they are
full), and a connection whose source cannot be told is reset, never let through as a
client. The partition is checked once the source is known and again after dialing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
from collections.abc import Coroutine
from typing import Any

from peerlab.errors import PeerlabError
from peerlab.fabric.attribution import How
from peerlab.fabric.links import Links, LinkToxic
from peerlab.fabric.stream import Pump
from peerlab.fabric.toxics import Stub
from peerlab.seed import derive_rng

CONNECT_TIMEOUT = 10.0  # seconds to reach the upstream before the client is reset
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def abort(sock: socket.socket) -> None:
    """Close with a reset (RST), as a peer that vanished would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def listen_error(address: tuple[str, int], exc: OSError) -> PeerlabError:
    return PeerlabError(
        f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}",
        hint="another process (or a leftover run) holds the port: `peerlab down --all` "
        "cleans up leftovers; else choose another port",
    )


async def resolve(address: tuple[str, int]) -> tuple[str, int]:
    """An IPv4 address for `address`, whose host may be a name such as `localhost`."""
    host, port = address
    with contextlib.suppress(ValueError):
        ipaddress.IPv4Address(host)
        return host, port
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, family=socket.AF_INET, type=socket.SOCK_STREAM
    )
    if not infos:
        raise OSError(f"cannot resolve {host}")
    return str(infos[0][4][0]), port


class Connection:
    """One proxied TCP connection: a pump each way and its link's toxics on them."""

    def __init__(
        self,
        proxy: TcpProxy,
        client: socket.socket,
        server: socket.socket,
        src: str | None,
        number: int,
        how: How,
    ) -> None:
        self.proxy = proxy
        self.src = src
        self.how = how  # how the source was told (address, owner, client)
        self.number = number  # n-th connection on this link: part of its seeded labels
        self.closed = False
        self._sockets = (client, server)
        links = proxy.links
        self.pumps = (
            Pump(self, client, server, "upstream", links.buffers, links.spinner),
            Pump(self, server, client, "downstream", links.buffers, links.spinner),
        )

    def start(self) -> None:
        self.refresh()
        for pump in self.pumps:
            pump.start()

    def refresh(self) -> None:
        """Rebuild each stream's chain from the toxics on this connection's link now."""
        for pump in self.pumps:
            pump.restage(
                self.proxy.links.toxics.select(self.src, self.proxy.node, pump.stream, "tcp")
            )

    def new_stub(self, item: LinkToxic, stream: str) -> Stub:
        rng = derive_rng(
            self.proxy.links.seed,
            "tcp",
            self.proxy.name,
            self.src or "client",
            self.number,
            item.spec.name,
            stream,
        )
        return Stub(rng, rng.random() < item.spec.toxicity, self)

    def pump_finished(self) -> None:
        if all(pump.finished for pump in self.pumps):
            self.close()

    def close(self) -> None:
        self._end(abort_sockets=False)

    def reset(self) -> None:
        self._end(abort_sockets=True)

    def _end(self, abort_sockets: bool) -> None:
        if self.closed:
            return
        self.closed = True
        for pump in self.pumps:
            pump.stop()  # before closing: its callbacks are registered on the descriptors
        for sock in self._sockets:
            if abort_sockets:
                abort(sock)
            else:
                sock.close()
        self.proxy.forget(self)


class TcpProxy:
    """Listens on `listen` and pipes each connection to `upstream` through its link's toxics."""

    protocol = "tcp"

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
        self.connections: set[Connection] = set()
        self.accepted = 0
        self.refused = 0  # connections whose source could not be told
        self._closed_bytes = [0, 0]
        self._numbers: dict[str | None, int] = {}
        self._socket: socket.socket | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; raises PeerlabError naming the address if it is taken."""
        if self.enabled:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        try:
            sock.bind(self.listen)
            sock.listen(1024)
        except OSError as exc:
            sock.close()
            raise listen_error(self.listen, exc) from None
        self._socket = sock
        self.listen = sock.getsockname()[:2]
        self.enabled = True
        self.links.toxics.subscribe(self.refresh)
        self._spawn(self._accept(sock))

    async def stop(self) -> None:
        """Stop listening and close every connection (a normal close, as Toxiproxy does)."""
        if not self.enabled:
            return
        self.enabled = False
        self.links.toxics.unsubscribe(self.refresh)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        for conn in list(self.connections):
            conn.close()

    def refresh(self) -> None:
        for conn in list(self.connections):
            conn.refresh()

    def cut(self) -> int:
        """Reset the connections the partition now blocks; how many."""
        blocked = [c for c in self.connections if self.links.blocked(c.src, self.node)]
        for conn in blocked:
            conn.reset()
        return len(blocked)

    def forget(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        up, down = (pump.bytes for pump in conn.pumps)
        self._closed_bytes[0] += up
        self._closed_bytes[1] += down
        self.links.count((conn.src, self.node, "tcp"), up, down)

    def stats(self) -> dict[str, int]:
        live = [sum(c.pumps[i].bytes for c in self.connections) for i in (0, 1)]
        return {
            "connections": len(self.connections),
            "accepted": self.accepted,
            "refused_unattributed": self.refused,
            "bytes_up": self._closed_bytes[0] + live[0],
            "bytes_down": self._closed_bytes[1] + live[1],
        }

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, address = await loop.sock_accept(sock)
            except OSError:
                await asyncio.sleep(0.1)  # out of descriptors: let connections finish
                continue
            self._spawn(self._open(client, address))

    async def _open(self, client: socket.socket, address: tuple[str, int]) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            for sock in (client, server):
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            attribution = await self.links.attributor.attribute(
                "tcp", (address[0], address[1]), client.getsockname()[:2], self.node
            )
            if attribution.how == "unattributed":
                self.refused += 1
                raise ConnectionRefusedError
            src = attribution.node
            number = self._numbers[src] = self._numbers.get(src, 0) + 1
            self.links.attempts.record(src, self.node, "tcp")
            if self.links.blocked(src, self.node):
                raise ConnectionRefusedError
            await self._dial(server, src)
            if not self.enabled or self.links.blocked(src, self.node):
                raise ConnectionRefusedError  # stopped, or cut while dialing
        except BaseException as exc:
            abort(server)
            abort(client)
            if isinstance(exc, OSError | TimeoutError):
                return  # the client sees a reset, as if refused
            raise
        conn = Connection(self, client, server, src, number, attribution.how)
        self.connections.add(conn)
        self.accepted += 1
        conn.start()

    async def _dial(self, server: socket.socket, src: str | None) -> None:
        public = self.links.public_ip(src)
        if public is not None:
            # The upstream sees the connection come from the source node's public address,
            # as it would on a real network (and can dial it back).
            with contextlib.suppress(OSError):
                server.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                server.bind((public, 0))
        loop = asyncio.get_running_loop()
        upstream = await resolve(self.upstream)
        await asyncio.wait_for(loop.sock_connect(server, upstream), CONNECT_TIMEOUT)
