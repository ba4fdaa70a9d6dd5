"""Fixtures for the fabric's tests: a loop thread, a fabric with echo peers, a lone proxy."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fabric_helpers import Peer, addresses

from peerlab.aio import LoopThread
from peerlab.backends.owners import SocketOwners
from peerlab.fabric import Fabric, Network
from peerlab.fabric.attribution import Identify
from peerlab.fabric.links import Links, LinkToxic
from peerlab.fabric.spec import ToxicSpec
from peerlab.fabric.tcp import TcpProxy
from peerlab.history import History


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread("fabric-test")
    yield thread
    thread.close()


@dataclass
class Lab:
    """A fabric with a few peers behind it, as an Environment would build it."""

    loop: LoopThread
    fabric: Fabric
    net: Network
    history: History
    peers: dict[str, Peer]

    def __getitem__(self, name: str) -> Peer:
        return self.peers[name]

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return self.loop.run(coro, timeout)


@pytest.fixture
def make_lab(loop: LoopThread) -> Iterator[Callable[..., Lab]]:
    made: list[Lab] = []

    def make(names: str = "ABC", seed: int = 7, identify: Identify | None = None) -> Lab:
        history = History()
        # The peers are threads of this process, which runs no node: by owner, whatever does
        # not come from a peer's bind address is a client.
        fabric = Fabric(seed, history, identify or SocketOwners(dict).owners)
        peers = {}
        for name in names:
            public, bind = addresses()
            peer = Peer(name, public, bind)
            peer.start()
            peers[name] = peer
            loop.run(fabric.expose(name, "echo", "tcp", (public, peer.port), (bind, peer.port)))
        net = Network(fabric, lambda coro, timeout: loop.run(coro, timeout), lambda: list(peers))
        lab = Lab(loop, fabric, net, history, peers)
        made.append(lab)
        return lab

    yield make
    for lab in made:
        lab.run(lab.fabric.close())
        for peer in lab.peers.values():
            peer.stop()


@dataclass
class Proxied:
    """A standalone proxy (as `peerlab proxy serve` makes) in front of an echo server."""

    loop: LoopThread
    proxy: TcpProxy
    server: Peer

    def dial(self, timeout: float = 2.0) -> socket.socket:
        sock = socket.create_connection(self.proxy.listen, timeout=timeout)
        sock.settimeout(timeout)
        self.server._sockets.append(sock)
        return sock

    def add(self, toxic: dict[str, Any]) -> None:
        async def add() -> None:
            self.proxy.links.toxics.add(LinkToxic(ToxicSpec.from_dict(toxic)))

        self.loop.run(add())

    def remove(self, name: str) -> None:
        async def remove() -> None:
            self.proxy.links.toxics.remove(name)

        self.loop.run(remove())

    def connections(self) -> int:
        async def count() -> int:
            return len(self.proxy.connections)

        return int(self.loop.run(count()))


@pytest.fixture
def make_proxied(loop: LoopThread) -> Iterator[Callable[..., Proxied]]:
    made: list[Proxied] = []

    def make(seed: int = 7) -> Proxied:
        public, bind = addresses()
        server = Peer("server", public, bind)
        server.start()
        proxy = TcpProxy("test", ("127.0.0.1", 0), (bind, server.port), Links(seed))
        loop.run(proxy.start())
        made.append(Proxied(loop, proxy, server))
        return made[-1]

    yield make
    for proxied in made:
        loop.run(proxied.proxy.stop())
        proxied.server.stop()
