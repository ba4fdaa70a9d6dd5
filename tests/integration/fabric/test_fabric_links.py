"""Faults on directed links between nodes told apart by source address; partitions; env.net."""

from __future__ import annotations

import socket
import time

import pytest
from fabric_helpers import DELAY, DELAY_MS, addresses, one_way_delay, reachable, round_trip

from peerlab.backends.owners import Owner
from peerlab.errors import PeerlabError, UsageError
from peerlab.fabric import Latency, bridge, islands, one_way, rolling, split, transient
from peerlab.fabric.errors import NotFound
from peerlab.wait import wait_until


def faults(lab):
    return [e for e in lab.history if e.type == "fault"]


def test_latency_on_a_directed_link_delays_only_that_direction(make_lab):
    lab = make_lab()
    a_to_b, b_to_a = lab["A"].dial(lab["B"]), lab["B"].dial(lab["A"])
    lab.net.latency(DELAY_MS, src="A", dst="B")
    # Data A->B is late whichever side opened the connection; data B->A is not.
    assert one_way_delay(a_to_b, lab["B"]) >= DELAY
    assert one_way_delay(b_to_a, lab["A"]) < DELAY
    assert DELAY <= round_trip(b_to_a) < 2 * DELAY  # A's answer to B is data A->B
    c_to_b = lab["C"].dial(lab["B"])
    assert one_way_delay(c_to_b, lab["B"]) < DELAY


def test_unidentified_sources_are_clients(make_lab):
    lab = make_lab()
    client = socket.create_connection((lab["B"].public, lab["B"].port), timeout=2)
    lab.net.latency(DELAY_MS, src="A")
    assert one_way_delay(client, lab["B"]) < DELAY
    lab.net.latency(DELAY_MS, dst="B")
    assert one_way_delay(client, lab["B"]) >= DELAY


def test_the_identify_callback_names_sources_that_are_not_bind_addresses(make_lab):
    asked = []

    def identify(requests: list[tuple[str, tuple[str, int], tuple[str, int]]]) -> list[Owner]:
        asked.extend(requests)
        return [Owner("C" if source[0] == "127.0.0.1" else None) for _, source, _ in requests]

    lab = make_lab(identify=identify)
    lab.net.latency(DELAY_MS, src="C", dst="B")
    sock = socket.create_connection((lab["B"].public, lab["B"].port), timeout=2)
    assert one_way_delay(sock, lab["B"]) >= DELAY
    assert asked == [("tcp", sock.getsockname(), sock.getpeername())]


def test_upstream_sees_the_public_address_of_the_source(make_lab):
    lab = make_lab()
    seen = []
    server = socket.socket()
    public, bind = addresses()
    server.bind((bind, 0))
    server.listen()
    port = server.getsockname()[1]
    lab.run(lab.fabric.expose("D", "raw", "tcp", (public, port), (bind, port)))
    sock = socket.socket()
    sock.bind((lab["A"].bind, 0))
    sock.connect((public, port))
    conn, peer = server.accept()
    seen.append(peer[0])
    conn.close()
    server.close()
    assert seen == [lab["A"].public]


def test_symmetric_partition_refuses_new_and_resets_open_connections(make_lab):
    lab = make_lab()
    a_to_c = lab["A"].dial(lab["C"])
    round_trip(a_to_c)
    handle = lab.net.partition([["A", "B"], ["C"]])
    with pytest.raises(OSError):
        round_trip(a_to_c)
    assert not reachable(lab["A"], lab["C"])
    assert not reachable(lab["C"], lab["A"])
    assert reachable(lab["A"], lab["B"])
    assert handle["groups"] == [["A", "B"], ["C"]]
    lab.net.heal()
    assert reachable(lab["A"], lab["C"])


def test_a_node_in_no_group_is_isolated(make_lab):
    lab = make_lab()
    lab.net.partition([["A", "B"]])
    assert not reachable(lab["C"], lab["A"])
    assert not reachable(lab["B"], lab["C"])


def test_one_way_partition(make_lab):
    lab = make_lab()
    b_to_a = lab["B"].dial(lab["A"])
    lab.net.partition([["A"], ["B"]], one_way=True)
    assert not reachable(lab["A"], lab["B"])
    assert reachable(lab["B"], lab["A"])
    round_trip(b_to_a)  # the honest limit: answers on B's own connections still flow


def test_islands_and_bridge(make_lab):
    lab = make_lab()
    lab.net.apply(islands("ABC"))
    assert not any(reachable(lab[a], lab[b]) for a, b in ["AB", "BC", "CA"])
    lab.net.apply(bridge(["A"], "B", ["C"]))
    assert reachable(lab["A"], lab["B"]) and reachable(lab["C"], lab["B"])
    assert reachable(lab["B"], lab["A"]) and reachable(lab["B"], lab["C"])
    assert not reachable(lab["A"], lab["C"]) and not reachable(lab["C"], lab["A"])
    lab.net.apply(one_way(["A"], ["B", "C"]))
    assert not reachable(lab["A"], lab["C"]) and reachable(lab["C"], lab["A"])


def test_transient_partition_heals_itself(make_lab):
    lab = make_lab()
    with lab.net.apply(transient(split(["A"], ["B", "C"]), 0.3)):
        assert not reachable(lab["A"], lab["B"])
        wait_until(lambda: reachable(lab["A"], lab["B"]), 3, what="the partition to heal")
    assert [(e.f, e.value["kind"]) for e in faults(lab)] == [
        ("apply", "partition"),
        ("remove", "partition"),
    ]


def test_rolling_partition_moves_in_a_seeded_order(make_lab):
    def order(seed: int) -> list[str]:
        lab = make_lab(seed=seed)
        lab.net.apply(rolling(0.05))
        wait_until(
            lambda: sum(e.f == "apply" for e in faults(lab)) >= 5, 3, what="five rolling steps"
        )
        lab.net.heal()
        steps = [
            e.value["groups"][0][0]
            for e in faults(lab)
            if e.f == "apply" and e.value["kind"] == "partition"
        ]
        assert lab.net.show()["cut"] == []
        return steps[:4]

    first = order(3)
    assert sorted(first[:3]) == ["A", "B", "C"] and first[3] == first[0]
    assert order(3) == first
    assert any(order(seed) != first for seed in (4, 5, 6))


@pytest.mark.parametrize("period", [0.049, 1e-6, 5e-324, 0, -1.0, float("nan"), True])
def test_a_rolling_period_too_short_to_apply_is_refused_and_nothing_runs(make_lab, period):
    lab = make_lab()
    with pytest.raises(UsageError, match="rolling partition period") as info:
        lab.net.rolling(period)
    assert info.value.field == "period" and "at least 0.05" in str(info.value.hint)
    assert lab.net.faults() == [] and lab.net.show()["cut"] == []
    assert faults(lab) == []


def test_rolling_cuts_the_isolated_node(make_lab):
    lab = make_lab()
    lab.net.rolling(30, ["A", "B"])
    cut = {tuple(pair) for pair in lab.net.show()["cut"]}
    (isolated,) = set.intersection(*(set(pair) for pair in cut))
    assert isolated in "AB"  # C is not in the rotation, and stays with the others
    assert cut == {
        pair
        for other in "ABC"
        if other != isolated
        for pair in [(isolated, other), (other, isolated)]
    }


def test_partition_is_replaced_by_the_next(make_lab):
    lab = make_lab()
    first = lab.net.partition([["A"], ["B", "C"]])
    lab.net.partition([["A", "B"], ["C"]])
    with pytest.raises(NotFound):
        first.remove()  # it is gone: the handle does not heal the new one
    assert not reachable(lab["A"], lab["C"])
    assert reachable(lab["A"], lab["B"])


def test_reset_cuts_the_connections_between_two_nodes(make_lab):
    lab = make_lab()
    a_to_b, b_to_a, a_to_c = (
        lab["A"].dial(lab["B"]),
        lab["B"].dial(lab["A"]),
        lab["A"].dial(lab["C"]),
    )
    for sock in (a_to_b, b_to_a, a_to_c):
        round_trip(sock)
    assert lab.net.reset("A", "B") == 2
    for sock in (a_to_b, b_to_a):
        with pytest.raises(OSError):
            round_trip(sock)
    round_trip(a_to_c)


def test_link_and_handles_remove_their_faults_on_exit(make_lab):
    lab = make_lab()
    sock = lab["A"].dial(lab["B"])
    with lab.net.link("A", "B") as link:
        link.add(Latency(latency=DELAY_MS))
        assert one_way_delay(sock, lab["B"]) >= DELAY
    assert one_way_delay(sock, lab["B"]) < DELAY
    with lab.net.latency(DELAY_MS, src="A"):
        assert one_way_delay(sock, lab["B"]) >= DELAY
    assert lab.net.faults() == []


def test_a_second_latency_on_a_link_replaces_the_first(make_lab):
    lab = make_lab()
    lab.net.latency(2 * DELAY_MS, src="A", dst="B")
    lab.net.latency(50, src="A", dst="B")
    assert [f["attributes"]["latency"] for f in lab.net.faults()] == [50]
    assert one_way_delay(lab["A"].dial(lab["B"]), lab["B"]) < 2 * DELAY  # not the first


def test_raw_toxics_follow_toxiproxy_streams_on_connections_src_opens(make_lab):
    lab = make_lab()
    name = lab.net.add_toxic(
        "A", "B", {"type": "latency", "stream": "upstream", "attributes": {"latency": DELAY_MS}}
    )
    assert name == "latency_upstream"
    assert one_way_delay(lab["A"].dial(lab["B"]), lab["B"]) >= DELAY
    assert one_way_delay(lab["B"].dial(lab["A"]), lab["A"]) < DELAY
    with pytest.raises(UsageError, match="toxic already exists"):
        lab.net.add_toxic("A", "B", {"type": "latency", "stream": "upstream"})
    lab.net.remove_toxic(name)
    assert lab.net.faults() == []


def test_clear_removes_everything_and_history_has_it_all(make_lab):
    lab = make_lab()
    lab.net.latency(10, jitter_ms=5)
    lab.net.limit(100, src="A")
    lab.net.loss(1, dst="C")
    lab.net.partition([["A"], ["B", "C"]])
    assert len(lab.net.show()["faults"]) == 4
    lab.net.clear()
    assert lab.net.show()["faults"] == [] and lab.net.show()["cut"] == []
    actions = [(e.f, e.value["name"]) for e in faults(lab)]
    assert actions[:4] == [
        ("apply", "latency:*->*"),
        ("apply", "bandwidth:A->*"),
        ("apply", "loss:*->C"),
        ("apply", "partition"),
    ]
    assert sorted(actions[4:]) == sorted(("remove", name) for _, name in actions[:4])
    assert {e.type for e in lab.history} == {"fault", "event"}
    assert {e.f for e in lab.history if e.type == "event"} == {"link_bytes"}


def test_show_lists_faults_cut_and_proxies(make_lab):
    lab = make_lab()
    sock = lab["A"].dial(lab["B"])
    round_trip(sock, b"12345")
    lab.net.latency(10, src="A", dst="B")
    lab.net.partition([["A", "B"], ["C"]])
    shown = lab.net.show()
    assert shown["links"] == [{"src": "A", "dst": "B", "faults": ["latency:A->B"]}]
    assert ["A", "C"] in shown["cut"] and ["A", "B"] not in shown["cut"]
    proxy_b = next(p for p in shown["proxies"] if p["node"] == "B")
    assert proxy_b["connections"] == 1 and proxy_b["bytes_up"] == 5
    assert proxy_b["listen"] == f"{lab['B'].public}:{lab['B'].port}"


def test_unknown_nodes_are_named_with_the_known_ones(make_lab):
    lab = make_lab()
    with pytest.raises(UsageError, match="unknown node 'Z'") as info:
        lab.net.latency(10, src="Z")
    assert "A, B, C" in str(info.value.hint)
    with pytest.raises(UsageError, match="unknown node"):
        lab.net.partition([["A"], ["Q"]])
    with pytest.raises(UsageError, match="one-way partition has 3 groups"):
        lab.net.partition([["A"], ["B"], ["C"]], one_way=True)


def test_faults_round_trip_through_export_and_restore(make_lab):
    lab = make_lab()
    lab.net.latency(25, 5, src="A", dst="B")
    lab.net.add_toxic(None, "C", {"type": "limit_data", "attributes": {"bytes": 10}})
    lab.net.partition([["A", "B"], ["C"]], duration_s=30)
    exported = lab.net.export()
    other = make_lab()
    other.net.restore(exported)
    assert other.net.export() == exported


def test_expose_names_the_address_in_use(make_lab):
    lab = make_lab()
    busy = lab["A"]
    with pytest.raises(PeerlabError, match=f"cannot listen on {busy.public}:{busy.port}"):
        lab.run(
            lab.fabric.expose("X", "echo", "tcp", (busy.public, busy.port), (busy.bind, busy.port))
        )


def test_unexpose_closes_the_node_s_connections(make_lab):
    lab = make_lab()
    sock = lab["A"].dial(lab["B"])
    round_trip(sock)
    lab.run(lab.fabric.unexpose("B"))
    sock.settimeout(1)
    with pytest.raises(OSError):
        round_trip(sock)
    assert not reachable(lab["A"], lab["B"])


def test_control_calls_have_deadlines(make_lab, monkeypatch):
    lab = make_lab()
    monkeypatch.setattr("peerlab.fabric.network.CALL_TIMEOUT", 0.2)
    lab.loop.loop.call_soon_threadsafe(time.sleep, 3.0)  # a loop too busy to answer
    began = time.monotonic()
    with pytest.raises(PeerlabError, match=r"did not finish within 0\.2s"):
        lab.net.show()
    assert time.monotonic() - began < 2.0  # it did not wait for the loop
