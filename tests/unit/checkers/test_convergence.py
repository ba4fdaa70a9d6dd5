"""`convergence` and `converged_within`: peers agree on files, and when they started to."""

from __future__ import annotations

import copy
import hashlib
import random

from peerlab.checkers import converged_within, convergence


def file(content: str, version: int = 1) -> dict[str, object]:
    return {"sha256": hashlib.sha256(content.encode()).hexdigest(), "version": version}


def same_everywhere(peers: int, files: int, rng: random.Random) -> dict:
    table = {f"f{i}.txt": file(str(rng.random()), rng.randrange(5)) for i in range(files)}
    return {f"n{p}": copy.deepcopy(table) for p in range(peers)}


def test_peers_with_the_same_files_converged() -> None:
    rng = random.Random(1)
    for peers in (1, 3, 8):
        verdict = convergence(same_everywhere(peers, 20, rng))
        assert verdict.valid == "valid"
        assert verdict.stats["files"] == 20


def test_a_different_version_names_the_file_and_who_holds_what() -> None:
    states = {
        "n1": {"a.txt": file("new", 2), "b.txt": file("b")},
        "n2": {"a.txt": file("new", 2), "b.txt": file("b")},
        "n3": {"a.txt": file("old", 1), "b.txt": file("b")},
    }
    verdict = convergence(states)
    assert verdict.valid == "invalid"
    assert verdict.evidence["differing_files"] == 1
    (diff,) = verdict.evidence["files"]
    assert diff["name"] == "a.txt"
    assert sorted(tuple(h["nodes"]) for h in diff["holders"]) == [("n1", "n2"), ("n3",)]
    assert {h["version"] for h in diff["holders"]} == {1, 2}
    assert "a.txt" in verdict.summary and "n3" in verdict.summary


def test_a_missing_file_is_a_difference() -> None:
    states = {"n1": {"a.txt": file("a")}, "n2": {}}
    (diff,) = convergence(states).evidence["files"]
    assert {"missing": True, "nodes": ["n2"]} in diff["holders"]


def test_only_the_chosen_fields_are_compared() -> None:
    states = {
        "n1": {"a": {"sha256": "x", "version": 1}},
        "n2": {"a": {"sha256": "x", "version": 9}},
    }
    assert convergence(states).valid == "invalid"
    assert convergence(states, fields=("sha256",)).valid == "valid"


def test_generated_divergence_is_found_exactly() -> None:
    rng = random.Random(7)
    for _ in range(20):
        states = same_everywhere(rng.randrange(2, 6), rng.randrange(1, 30), rng)
        node = rng.choice(sorted(states))
        name = rng.choice(sorted(states[node]))
        states[node][name] = file("diverged")
        verdict = convergence(states)
        assert [f["name"] for f in verdict.evidence["files"]] == [name]


def test_no_live_peers_is_unknown() -> None:
    assert convergence({}).valid == "unknown"


def test_snapshots_give_the_time_of_convergence() -> None:
    good = {"n1": {"a": file("a")}, "n2": {"a": file("a")}}
    bad = {"n1": {"a": file("a")}, "n2": {}}
    snapshots = [(0.0, good), (1.0, bad), (2.0, bad), (3.5, good), (4.0, good)]
    verdict = convergence(good, after_heal=2.5, snapshots=snapshots)
    assert verdict.stats["converged_at"] == 3.5
    assert verdict.stats["seconds_after_heal"] == 1.0


def test_converged_within_a_deadline() -> None:
    good = {"n1": {"a": file("a")}, "n2": {"a": file("a")}}
    bad = {"n1": {"a": file("a")}, "n2": {}}
    snapshots = [(10.0, bad), (11.0, bad), (12.5, good), (14.0, good)]
    assert converged_within(snapshots, 3.0, after_heal=10.0).valid == "valid"
    late = converged_within(snapshots, 2.0, after_heal=10.0)
    assert late.valid == "invalid"
    assert late.evidence["time"] == 11.0
    assert late.evidence["files"][0]["name"] == "a"
    never = converged_within([(10.0, bad), (20.0, bad)], 5.0, after_heal=10.0)
    assert never.valid == "invalid" and never.stats["converged_at"] is None
    too_short = converged_within([(10.0, bad), (11.0, bad)], 5.0, after_heal=10.0)
    assert too_short.valid == "unknown"


def test_diverging_again_after_the_deadline_is_not_convergence() -> None:
    good = {"n1": {"a": file("a")}, "n2": {"a": file("a")}}
    bad = {"n1": {"a": file("a")}, "n2": {}}
    verdict = converged_within([(1.0, good), (5.0, bad), (6.0, good)], 2.0, after_heal=0.0)
    assert verdict.valid == "invalid"
    assert verdict.evidence["time"] == 5.0
