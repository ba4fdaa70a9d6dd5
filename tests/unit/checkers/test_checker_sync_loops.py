"""`no_sync_loops`: each change reaches each peer once; loops are traced."""

from __future__ import annotations

import random

from peerlab.checkers import no_sync_loops

TRIANGLE = {"A": ["B", "C"], "B": ["C"]}


def move(node: str, source: str, time: float, name: str = "f.txt", version: str = "v1") -> dict:
    return {"node": node, "source": source, "name": name, "version": version, "time": time}


def test_each_peer_fetching_once_is_valid() -> None:
    verdict = no_sync_loops([move("B", "A", 1), move("C", "B", 2)], TRIANGLE)
    assert verdict.valid == "valid"
    assert verdict.stats == {"changes": 1, "transfers": 2}


def test_ping_pong_back_to_the_origin_is_traced() -> None:
    verdict = no_sync_loops([move("B", "A", 1), move("A", "B", 2)], {"A": ["B"]})
    assert verdict.valid == "invalid"
    (change,) = verdict.evidence
    (repeat,) = change["repeated"]
    assert repeat["already_held"] == "origin"
    assert repeat["loop"] == ["A", "B", "A"]
    assert change["bound"] == 1 and change["transfers"] == 2


def test_triangle_loop_is_traced() -> None:
    moves = [move("B", "A", 1), move("C", "B", 2), move("A", "C", 3)]
    verdict = no_sync_loops(moves, TRIANGLE)
    assert verdict.evidence[0]["repeated"][0]["loop"] == ["A", "B", "C", "A"]
    assert "A → B → C → A" in verdict.summary


def test_echo_between_two_receivers_shows_the_earlier_receipt() -> None:
    moves = [move("B", "A", 1), move("C", "A", 2), move("B", "C", 3)]
    (repeat,) = no_sync_loops(moves, TRIANGLE).evidence[0]["repeated"]
    assert repeat["already_held"]["source"] == "A"
    assert repeat["loop"] is None  # a duplicate fetch, not a cycle back through B


def test_bound_from_the_friend_graph_and_override() -> None:
    graph = {"A": ["B"], "C": ["D"]}  # two components: a change from A should reach only B
    moves = [move("B", "A", 1), move("C", "A", 2)]
    verdict = no_sync_loops(moves, graph)
    assert verdict.valid == "invalid"
    assert verdict.evidence[0]["bound"] == 1
    assert no_sync_loops(moves, graph, bound=2).valid == "valid"


def test_versions_are_separate_changes() -> None:
    moves = [move("B", "A", 1, version="v1"), move("B", "A", 2, version="v2")]
    assert no_sync_loops(moves, {"A": ["B"]}).valid == "valid"


def test_generated_flooding_is_valid_until_an_echo_is_added() -> None:
    rng = random.Random(5)
    for _ in range(15):
        peers = [f"n{i}" for i in range(rng.randrange(3, 12))]
        graph: dict[str, list[str]] = {peer: [] for peer in peers}
        for i, peer in enumerate(peers[1:], 1):
            graph[peer].append(rng.choice(peers[:i]))  # connected
        origin = rng.choice(peers)
        moves, have, clock = [], [origin], 0.0
        neighbours = {p: {q for q in peers if q in graph[p] or p in graph[q]} for p in peers}
        while len(have) < len(peers):
            source = rng.choice(have)
            fresh = sorted(neighbours[source] - set(have))
            if fresh:
                clock += 1
                target = rng.choice(fresh)
                moves.append(move(target, source, clock))
                have.append(target)
        assert no_sync_loops(moves, graph).valid == "valid"
        last = moves[-1]
        moves.append(move(last["source"], last["node"], clock + 1))
        verdict = no_sync_loops(moves, graph)
        assert verdict.valid == "invalid"
        assert verdict.evidence[0]["repeated"][0]["loop"] == [
            last["source"],
            last["node"],
            last["source"],
        ]


def test_a_named_origin_wins_over_skewed_log_times() -> None:
    # C's clock runs an hour behind: its receipt from A is logged "before" A published.
    moves = [
        {**move("C", "A", -3600.0), "origin": "A"},
        {**move("B", "C", 5.0), "origin": "A"},
    ]
    assert no_sync_loops(moves, TRIANGLE).valid == "valid"
    echo = [*moves, {**move("A", "B", 6.0), "origin": "A"}]
    verdict = no_sync_loops(echo, TRIANGLE)
    assert verdict.valid == "invalid" and verdict.evidence[0]["origin"] == "A"
    assert verdict.evidence[0]["repeated"][0]["already_held"] == "origin"
