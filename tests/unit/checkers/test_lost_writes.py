"""`no_lost_writes`: acknowledged writes survive, or were replaced by a later write."""

from __future__ import annotations

import random

from peerlab.checkers import no_lost_writes
from peerlab.history import History


def write(h: History, process: int, key: str, value: str, outcome: str = "ok") -> None:
    h.complete(h.invoke("write", {"key": key, "value": value}, process=process), outcome)  # type: ignore[arg-type]


def test_last_write_present_everywhere_is_valid() -> None:
    h = History()
    write(h, 0, "a", "1")
    write(h, 0, "a", "2")
    verdict = no_lost_writes(h, {"n1": {"a": {"value": "2"}}, "n2": {"a": "2"}})
    assert verdict.valid == "valid"
    assert verdict.stats["acknowledged"] == 2


def test_an_older_value_at_the_end_means_the_newer_write_was_lost() -> None:
    h = History()
    write(h, 0, "a", "1")
    write(h, 1, "a", "2")
    verdict = no_lost_writes(h, {"n1": {"a": "1"}, "n2": {"a": "1"}})
    assert verdict.valid == "invalid"
    (lost,) = verdict.evidence
    assert lost["key"] == "a" and lost["value"] == "2"
    assert lost["final"] == {"n1": "1", "n2": "1"}
    assert lost["write"]["process"] == 1


def test_a_key_missing_everywhere_is_lost() -> None:
    h = History()
    write(h, 0, "a", "1")
    verdict = no_lost_writes(h, {"n1": {}})
    assert verdict.valid == "invalid"
    assert verdict.evidence[0]["final"] == {"n1": None}


def test_one_peer_holding_it_is_enough() -> None:
    h = History()
    write(h, 0, "a", "1")
    assert no_lost_writes(h, {"n1": {}, "n2": {"a": "1"}}).valid == "valid"


def test_concurrent_writes_may_supersede_each_other() -> None:
    h = History()
    first = h.invoke("write", {"key": "a", "value": "x"}, process=0)
    second = h.invoke("write", {"key": "a", "value": "y"}, process=1)
    h.complete(first, "ok")
    h.complete(second, "ok")
    for winner in ("x", "y"):
        assert no_lost_writes(h, {"n1": {"a": winner}}).valid == "valid"


def test_unknown_writes_may_supersede_but_failed_ones_cannot() -> None:
    h = History()
    write(h, 0, "a", "1")
    write(h, 1, "a", "2", "info")
    assert no_lost_writes(h, {"n1": {"a": "2"}}).valid == "valid"
    h = History()
    write(h, 0, "a", "1")
    write(h, 1, "a", "2", "fail")
    assert no_lost_writes(h, {"n1": {"a": "2"}}).valid == "invalid"


def test_a_write_that_finished_before_cannot_supersede() -> None:
    h = History()
    write(h, 0, "a", "old")
    write(h, 0, "a", "new")
    assert no_lost_writes(h, {"n1": {"a": "old"}}).evidence[0]["value"] == "new"


def test_publish_with_name_and_sha256_matches_a_file_table() -> None:
    h = History()
    publish = h.invoke("publish", {"name": "doc.txt"}, process=0)
    h.complete(publish, "ok", {"name": "doc.txt", "sha256": "ab" * 32})
    files = {"n1": {"doc.txt": {"sha256": "ab" * 32, "version": 3}}}
    assert no_lost_writes(h, files).valid == "valid"
    files = {"n1": {"doc.txt": {"sha256": "cd" * 32, "version": 3}}}
    assert no_lost_writes(h, files).valid == "invalid"


def test_generated_histories_lose_exactly_the_rolled_back_key() -> None:
    rng = random.Random(3)
    for _ in range(10):
        h = History()
        final: dict[str, str] = {}
        for number in range(200):
            key = f"k{rng.randrange(15)}"
            final[key] = f"v{number}"
            write(h, rng.randrange(4), key, final[key])
        states = {f"n{p}": dict(final) for p in range(3)}
        assert no_lost_writes(h, states).valid == "valid"
        victim = rng.choice(sorted(final))
        for peer in states.values():
            peer[victim] = "v-never-written"
        verdict = no_lost_writes(h, states)
        assert [lost["key"] for lost in verdict.evidence] == [victim]


def test_only_the_newest_of_sequential_writes_is_reported() -> None:
    h = History()
    for value in ("1", "2", "3"):
        write(h, 0, "a", value)
    write(h, 1, "b", "unacknowledged", "info")
    verdict = no_lost_writes(h, {"n1": {"a": "garbage"}})
    assert [lost["value"] for lost in verdict.evidence] == ["3"]


def test_no_peers_is_unknown() -> None:
    h = History()
    write(h, 0, "a", "1")
    assert no_lost_writes(h, {}).valid == "unknown"
