"""Simulated links carry datagrams and exchanges under the fabric's fault values, with the
fabric's meaning (docs/faults.md), on virtual time, the same way for the same seed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from peerlab.fabric.faults import LinkFault, Partition
from peerlab.fabric.toxics import Bandwidth, Duplicate, Latency, LimitData, Loss, Timeout
from peerlab.sim.network import BASE_LATENCY
from peerlab.sim.plane import SimPlane
from peerlab.sim.world import World

HTTP, UDP = 80, 90
BODY = b"x" * 200_000


class Echo:
    """A simulated node: answers GET /big with BODY, anything else with its path; keeps the
    datagrams it gets."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.datagrams: list[tuple[float, bytes, str]] = []

    def start(self) -> None:
        self.host.serve_http(HTTP, self.serve)
        self.host.listen_udp(
            UDP, lambda data, source: self.datagrams.append((self.host.now(), data, source))
        )

    def stop(self) -> None:
        return None

    def serve(self, request: Any, peer: str | None, reply: Any) -> None:
        body = BODY if request.path == "/big" else request.path.encode()
        reply(200, {"Content-Length": str(len(body))}, body)


class Catch:
    """The client's side of an exchange: when the head, the bytes and the end came."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.head_at: float | None = None
        self.end_at: float | None = None
        self.problem: str | None = None
        self.body = b""

    def head(self, status: int, headers: Mapping[str, str]) -> None:
        self.head_at = self.host.now()

    def data(self, chunk: bytes) -> None:
        self.body += chunk

    def end(self) -> None:
        self.end_at = self.host.now()

    def error(self, reason: str) -> None:
        self.problem = reason


def world(seed: int = 1) -> tuple[World, SimPlane, dict[str, Echo]]:
    sim = World(seed)
    nodes = {}
    for index, name in enumerate("ABC"):
        sim.add(name, f"10.0.0.{index + 1}", {"http": HTTP, "udp": UDP})
        sim.start(name, f"{__name__}:Echo", (), {})
        node = sim.slots[name].node
        assert isinstance(node, Echo)
        nodes[name] = node
    plane = SimPlane(sim, None)
    for name in "ABC":
        plane._nodes.append(name)
    return sim, plane, nodes


def get(sim: World, src: str, dst: str, path: str = "/x") -> Catch:
    host = sim.slots[src].host
    assert host is not None
    catch = Catch(host)
    host.request(f"{sim.slots[dst].ip}:{HTTP}", "GET", path, {}, b"", catch)
    return catch


def send(sim: World, src: str, dst: str, data: bytes = b"d") -> None:
    host = sim.slots[src].host
    assert host is not None
    host.send_udp(UDP, f"{sim.slots[dst].ip}:{UDP}", data)


def test_an_exchange_takes_a_round_trip_and_a_latency_one_way_of_it() -> None:
    sim, plane, _ = world()
    plain = get(sim, "A", "B")
    sim.loop.run_for(1.0)
    assert plain.body == b"/x" and plain.end_at == 2 * BASE_LATENCY
    plane.apply(LinkFault(Latency(latency=300), "B", "A"))  # B's answers to A are late
    began = sim.loop.now
    late, other = get(sim, "A", "B"), get(sim, "B", "A")
    sim.loop.run_for(1.0)
    assert late.end_at is not None and other.end_at is not None
    assert abs(late.end_at - began - (0.3 + 2 * BASE_LATENCY)) < 1e-9
    assert abs(other.end_at - began - (0.3 + 2 * BASE_LATENCY)) < 1e-9, "B's request to A"


def test_bandwidth_paces_an_answer_and_limit_data_cuts_it() -> None:
    sim, plane, _ = world()
    plane.apply(LinkFault(Bandwidth(rate=100), "B", "A"))  # 100 KB/s
    big = get(sim, "A", "B", "/big")
    sim.loop.run_for(10.0)
    assert big.body == BODY and big.end_at is not None
    assert abs(big.end_at - len(BODY) / 100_000) < 0.01
    plane.clear()
    plane.apply(LinkFault(LimitData(bytes=70_000), "B", "A"))
    cut = get(sim, "A", "B", "/big")
    sim.loop.run_for(10.0)
    assert len(cut.body) == 70_000 and cut.end_at is None and "limit_data" in str(cut.problem)


def test_a_timeout_toxic_holds_the_request_and_a_down_node_refuses() -> None:
    sim, plane, _ = world()
    plane.apply(LinkFault(Timeout(timeout=0), "A", "B"))
    held = get(sim, "A", "B")
    sim.loop.run_for(60.0)
    assert held.head_at is None and held.problem is None, "held, until the client gives up"
    sim.kill("C")
    refused = get(sim, "A", "C")
    sim.loop.run_for(1.0)
    assert refused.problem == "connection refused"


def test_partitions_cut_datagrams_per_direction_and_connections_by_who_opened_them() -> None:
    sim, plane, nodes = world()
    plane.apply(Partition([["A"], ["B"]], one_way=True))  # A cannot reach B
    send(sim, "A", "B", b"lost")
    send(sim, "B", "A", b"arrives")
    from_b, from_a = get(sim, "B", "A"), get(sim, "A", "B")
    sim.loop.run_for(1.0)
    assert [d for _, d, _ in nodes["B"].datagrams] == []
    assert [d for _, d, _ in nodes["A"].datagrams] == [b"arrives"]
    assert from_b.body == b"/x", "B's connection to A works, A's answers included"
    assert from_a.problem == "connection reset by peer"


def test_a_partition_resets_open_exchanges_it_blocks() -> None:
    sim, plane, _ = world()
    plane.apply(LinkFault(Bandwidth(rate=10), "B", "A"))
    slow = get(sim, "A", "B", "/big")
    sim.loop.run_for(1.0)
    plane.apply(Partition([["A"], ["B", "C"]]))
    assert slow.problem == "connection reset by peer" and 0 < len(slow.body) < len(BODY)


def test_udp_loss_and_duplicates_are_drawn_from_the_seed() -> None:
    def arrivals(seed: int) -> list[float]:
        sim, plane, nodes = world(seed)
        plane.apply(LinkFault(Loss(percent=30), "A", "B"))
        plane.apply(LinkFault(Duplicate(percent=30), "A", "B"))
        plane.apply(LinkFault(Latency(latency=10, jitter=5), "A", "B"))
        for _ in range(200):
            send(sim, "A", "B")
        sim.loop.run_for(1.0)
        return [when for when, _, _ in nodes["B"].datagrams]

    first = arrivals(1)
    assert 100 < len(first) < 220, len(first)  # 30 % lost, 30 % of the rest twice
    assert arrivals(1) == first, "the same seed, the same datagrams at the same times"
    assert arrivals(2) != first
