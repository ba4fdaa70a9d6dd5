"""UDP through the fabric: public source addresses, per-direction faults, exact one-way cuts."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fabric_helpers import DELAY, DELAY_MS, addresses

from peerlab.aio import LoopThread
from peerlab.backends.owners import SocketOwners
from peerlab.fabric import Duplicate, Fabric, Network, Reorder
from peerlab.history import History


@dataclass
class UdpNode:
    name: str
    public: str
    bind: str
    sock: socket.socket

    @property
    def address(self) -> tuple[str, int]:
        """What peers send to: the public address, on the port this node sends from."""
        return self.public, self.sock.getsockname()[1]

    def send(self, to: UdpNode, data: bytes) -> None:
        self.sock.sendto(data, to.address)

    def receive(self, timeout: float = 2.0) -> tuple[bytes, tuple[str, int]]:
        self.sock.settimeout(timeout)
        return self.sock.recvfrom(65535)

    def drain(self, wait: float = 0.3) -> list[bytes]:
        """Everything that arrives within `wait` seconds of the last datagram."""
        got = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(self.receive(wait)[0])
        return got


class UdpLab:
    def __init__(self, loop: LoopThread, seed: int, names: str = "AB") -> None:
        self.loop = loop
        self.fabric = Fabric(seed, History(), SocketOwners(dict).owners)
        self.nodes: dict[str, UdpNode] = {}
        for name in names:
            public, bind = addresses()
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((bind, 0))
            port = sock.getsockname()[1]
            loop.run(self.fabric.expose(name, "dht", "udp", (public, port), (bind, port)))
            self.nodes[name] = UdpNode(name, public, bind, sock)
        self.net = Network(self.fabric, lambda coro, t: loop.run(coro, t), lambda: list(names))

    def __getitem__(self, name: str) -> UdpNode:
        return self.nodes[name]

    def close(self) -> None:
        self.loop.run(self.fabric.close())
        for node in self.nodes.values():
            node.sock.close()


@pytest.fixture
def make_udp(loop: LoopThread) -> Iterator:
    labs: list[UdpLab] = []

    def make(seed: int = 7, names: str = "AB") -> UdpLab:
        labs.append(UdpLab(loop, seed, names))
        return labs[-1]

    yield make
    for lab in labs:
        lab.close()


def test_peers_see_each_other_at_their_public_addresses(make_udp):
    lab = make_udp()
    a, b = lab["A"], lab["B"]
    a.send(b, b"find_node")
    data, sender = b.receive()
    assert (data, sender) == (b"find_node", a.address)  # as a Kademlia node would record it
    b.sock.sendto(b"nodes", sender)
    assert a.receive() == (b"nodes", b.address)


def test_a_client_gets_answers_back_through_its_own_relay(make_udp):
    lab = make_udp()
    b = lab["B"]
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(2)
    client.sendto(b"ping", b.address)
    data, sender = b.receive()
    assert data == b"ping" and sender[0] == "127.0.0.1"
    b.sock.sendto(b"pong", sender)
    assert client.recvfrom(100) == (b"pong", b.address)
    client.close()


HOLD_MS = 3000


def test_latency_applies_per_direction(make_udp):
    lab = make_udp()
    a, b = lab["A"], lab["B"]
    lab.net.latency(DELAY_MS, src="A", dst="B")
    began = time.monotonic()
    a.send(b, b"late")
    b.receive()
    assert time.monotonic() - began >= DELAY
    # The other way is not held: sent while a datagram A -> B waits out a long latency,
    # B's arrives first (an order, not a time bound, so a busy machine cannot fake it).
    lab.net.latency(HOLD_MS, src="A", dst="B")
    a.send(b, b"held")
    b.send(a, b"early")
    assert a.receive(timeout=HOLD_MS / 1000)[0] == b"early"
    b.sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        b.sock.recvfrom(65535)
    assert b.receive(timeout=HOLD_MS / 1000 + 30)[0] == b"held"


def test_loss_drops_a_seeded_share(make_udp):
    def survivors(seed: int) -> list[bytes]:
        lab = make_udp(seed)
        lab.net.loss(50, src="A", dst="B")
        for i in range(200):
            lab["A"].send(lab["B"], b"%d" % i)
        got = lab["B"].drain()
        stats = next(p for p in lab.net.show()["proxies"] if p["node"] == "B")
        assert stats["dropped"] == 200 - len(got)
        return got

    first = survivors(1)
    assert 60 <= len(first) <= 140
    assert survivors(1) == first
    assert survivors(2) != first


def test_duplicate_delivers_twice(make_udp):
    lab = make_udp()
    lab.net.link("A", "B").add(Duplicate(percent=100))
    for i in range(5):
        lab["A"].send(lab["B"], b"%d" % i)
    assert sorted(lab["B"].drain()) == sorted(b"%d" % i for i in range(5) for _ in range(2))


def test_reorder_lets_datagrams_overtake(make_udp):
    lab = make_udp(seed=5)
    lab.net.link("A", "B").add(Reorder(percent=50, delay=50))
    sent = [b"%02d" % i for i in range(20)]
    for data in sent:
        lab["A"].send(lab["B"], data)
    got = lab["B"].drain()
    assert sorted(got) == sent and got != sent


def test_one_way_partition_is_exact_for_udp(make_udp):
    lab = make_udp()
    a, b = lab["A"], lab["B"]
    lab.net.partition([["A"], ["B"]], one_way=True)
    a.send(b, b"lost")
    b.send(a, b"arrives")
    assert a.receive() == (b"arrives", b.address)
    assert b.drain(0.2) == []
    lab.net.heal()
    a.send(b, b"again")
    assert b.receive()[0] == b"again"


def test_symmetric_partition_drops_both_ways(make_udp):
    lab = make_udp(names="ABC")
    lab.net.partition([["A", "C"], ["B"]])
    lab["A"].send(lab["B"], b"x")
    lab["B"].send(lab["A"], b"y")
    lab["C"].send(lab["A"], b"z")
    assert lab["A"].drain(0.2) == [b"z"]
    assert lab["B"].drain(0.1) == []
