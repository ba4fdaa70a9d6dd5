"""`causal_order`: an effect is never visible where its cause is not."""

from __future__ import annotations

import itertools
import random

from peerlab.checkers import causal_order
from peerlab.history import History


def test_snapshots_with_causes_present_are_valid() -> None:
    observations = [
        {"node": "n1", "time": 1, "visible": ["post"]},
        {"node": "n1", "time": 2, "visible": ["post", "reply"]},
    ]
    assert causal_order(observations, [("post", "reply")]).valid == "valid"


def test_reply_visible_without_the_post_is_invalid() -> None:
    observations = [
        {"node": "n1", "time": 1, "visible": ["post", "reply"]},
        {"node": "n2", "time": 2, "visible": ["reply"]},
        {"node": "n2", "time": 3, "visible": ["reply"]},
    ]
    verdict = causal_order(observations, [("post", "reply")])
    assert verdict.valid == "invalid"
    assert verdict.evidence == [{"node": "n2", "time": 2, "effect": "reply", "cause": "post"}]


def test_arrivals_effect_before_cause() -> None:
    arrivals = [
        {"node": "n1", "time": 5, "item": "b"},
        {"node": "n1", "time": 7, "item": "a"},
        {"node": "n2", "time": 1, "item": "a"},
        {"node": "n2", "time": 2, "item": "b"},
        {"node": "n3", "time": 4, "item": "b"},
    ]
    verdict = causal_order(arrivals, [("a", "b")])
    assert verdict.valid == "invalid"
    by_node = {v["node"]: v["cause_visible_at"] for v in verdict.evidence}
    assert by_node == {"n1": 7, "n3": None}


def test_history_reads_are_snapshots_of_their_node() -> None:
    h = History()
    h.complete(h.invoke("read", node="n1"), "ok", ["a", "b"])
    h.complete(h.invoke("read", node="n2"), "ok", ["b"])
    verdict = causal_order(h, [("a", "b")])
    assert [v["node"] for v in verdict.evidence] == ["n2"]


def test_nothing_observed_is_unknown() -> None:
    assert causal_order([{"node": "n1", "time": 0, "visible": []}], [("a", "b")]).valid == "unknown"


def test_generated_chains_in_order_then_one_swapped() -> None:
    rng = random.Random(2)
    for _ in range(10):
        chain = [f"m{i}" for i in range(30)]
        causes = list(itertools.pairwise(chain))
        arrivals = []
        for node in ("n1", "n2", "n3"):
            clock = rng.random()
            for item in chain:
                clock += rng.random()
                arrivals.append({"node": node, "time": clock, "item": item})
        assert causal_order(arrivals, causes).valid == "valid"
        victim = rng.randrange(1, len(chain))
        node_arrivals = [a for a in arrivals if a["node"] == "n2"]
        cause, effect = node_arrivals[victim - 1], node_arrivals[victim]
        cause["time"], effect["time"] = effect["time"], cause["time"]
        verdict = causal_order(arrivals, causes)
        assert [(v["node"], v["effect"]) for v in verdict.evidence] == [("n2", chain[victim])]
