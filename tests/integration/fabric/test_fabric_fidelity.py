"""Fail-closed attribution and fault fidelity: what a cut link carries, and what is refused."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from fabric_helpers import DELAY, DELAY_MS, reachable, round_trip
from test_fabric_udp import UdpLab

from peerlab.backends.owners import Owner
from peerlab.checkers.fidelity import fault_fidelity
from peerlab.fabric.attribution import INLINE_LIMIT
from peerlab.fabric.links import Links
from peerlab.fabric.tcp import TcpProxy


def events(lab, name: str) -> list:
    return [e for e in lab.history if e.type == "event" and e.f == name]


def test_a_partition_that_holds_gets_a_valid_verdict(make_lab):
    lab = make_lab()
    a_to_b = lab["A"].dial(lab["B"])
    round_trip(a_to_b, b"before")
    with lab.net.partition([["A"], ["B", "C"]]):
        assert not reachable(lab["A"], lab["B"])
        assert reachable(lab["B"], lab["C"])
    round_trip(lab["A"].dial(lab["B"]))
    verdict = fault_fidelity(lab.history.entries())
    assert verdict.ok, verdict.summary
    assert verdict.stats["links_cut"] == 4 and verdict.stats["leaked_bytes"] == 0


def test_a_fabric_that_forwards_on_a_cut_link_is_caught(make_lab, monkeypatch):
    lab = make_lab()
    # The leak: proxies no longer enforce the cut (the partition is still declared).
    monkeypatch.setattr(Links, "blocked", lambda self, src, dst: False)
    monkeypatch.setattr(TcpProxy, "cut", lambda self: 0)
    a_to_b = lab["A"].dial(lab["B"])
    lab.net.partition([["A"], ["B", "C"]])
    round_trip(a_to_b, b"12345")
    lab.net.heal()
    verdict = fault_fidelity(lab.history.entries())
    assert verdict.valid == "invalid"
    leak = verdict.evidence["leaks"][0]
    assert (leak["link"], leak["bytes"], leak["by_protocol"]) == ("A->B", 10, {"tcp": 10})
    assert leak["to_s"] >= leak["from_s"]
    assert "A->B forwarded 10 bytes while cut" in verdict.summary


def test_an_unknown_source_is_refused_and_recorded(make_lab):
    lab = make_lab(identify=lambda requests: [None] * len(requests))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(2)
    sock.bind(("127.0.0.1", 0))  # known before connecting: the refusal may come that early
    with pytest.raises(OSError):
        sock.connect((lab["B"].public, lab["B"].port))
        round_trip(sock)
    (refusal,) = events(lab, "unattributed")
    assert refusal.node == "B" and refusal.data["protocol"] == "tcp"
    assert refusal.data["src"] == "{}:{}".format(*sock.getsockname())
    assert refusal.data["dst"] == f"{lab['B'].public}:{lab['B'].port}"
    view = lab.net.links()
    assert view["unattributed"][0]["src"] == refusal.data["src"]
    assert fault_fidelity(lab.history.entries()).valid == "invalid"


def test_bytes_wait_while_the_source_is_looked_up_and_the_cut_is_checked_after(make_lab):
    release = threading.Event()

    def slow_identify(requests):
        # Slower than a lookup may hold the loop: the next ones run on a thread, as a
        # lookup among many nodes would.
        time.sleep(INLINE_LIMIT * 2)
        release.wait(5)
        return [Owner("A")] * len(requests)

    lab = make_lab(identify=slow_identify)
    held = socket.create_connection((lab["B"].public, lab["B"].port), timeout=5)
    held.sendall(b"held")
    release.set()
    assert held.recv(10) == b"held"  # nothing lost while waiting
    release.clear()
    late = socket.create_connection((lab["B"].public, lab["B"].port), timeout=5)
    late.sendall(b"late")
    began = time.monotonic()
    lab.net.partition([["A"], ["B", "C"]])  # applied while the lookup runs
    assert time.monotonic() - began < 4, "the lookup held the loop"
    release.set()
    try:
        answer = late.recv(10)
    except OSError:  # reset
        answer = b""
    assert answer == b"", "a source found to be cut off must be refused"


def test_links_show_connections_bytes_attribution_and_faults(make_lab):
    lab = make_lab()
    sock = lab["A"].dial(lab["B"])
    round_trip(sock, b"12345")
    client = socket.create_connection((lab["C"].public, lab["C"].port), timeout=2)
    round_trip(client, b"abc")
    lab.net.latency(10, src="A", dst="B")
    lab.net.partition([["A", "B"], ["C"]])
    rows = {(r["src"], r["dst"], r["protocol"]): r for r in lab.net.links()["links"]}
    a_b = rows[("A", "B", "tcp")]
    assert (a_b["open"], a_b["attribution"]) == (1, {"address": 1})
    assert (a_b["bytes_up"], a_b["bytes_down"], a_b["cut"]) == (5, 5, False)
    assert a_b["faults"] == ["latency:A->B"]
    to_c = rows[("client", "C", "tcp")]
    assert to_c["attribution"] == {"client": 1} and to_c["bytes_up"] == 3
    assert rows[("A", "C", "tcp")]["cut"] and rows[("A", "C", "tcp")]["faults"] == ["partition"]
    assert lab.net.links()["attribution"]["counts"] == {"address": 1, "client": 1}


def test_udp_datagrams_held_by_a_latency_are_dropped_if_a_cut_comes_first(loop):
    lab = UdpLab(loop, 7)
    try:
        a, b = lab["A"], lab["B"]
        lab.net.latency(DELAY_MS, src="A", dst="B")
        a.send(b, b"late")
        lab.net.partition([["A"], ["B"]])
        assert b.drain(DELAY * 3) == []
        lab.net.heal()
        verdict = fault_fidelity(lab.fabric.history.entries())
        assert verdict.ok, verdict.summary
    finally:
        lab.close()


def test_the_checker_reads_samples_taken_as_faults_change(make_lab):
    lab = make_lab()
    lab.net.partition([["A"], ["B"]])
    lab.net.heal()
    samples = events(lab, "link_bytes")
    assert [s.data["cut"] for s in samples] == [
        [["A", "B"], ["A", "C"], ["B", "A"], ["B", "C"], ["C", "A"], ["C", "B"]],
        [],
    ]
    assert time.time() >= samples[-1].wall >= samples[0].wall
