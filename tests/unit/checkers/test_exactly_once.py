"""`exactly_once`: no id applied twice; expected ids applied or reported."""

from __future__ import annotations

import random

from peerlab.checkers import exactly_once
from peerlab.history import History


def claim(h: History, worker: int, task: object, outcome: str = "ok") -> None:
    # A claim learns its task from the reply, as a queue consumer does.
    h.complete(h.invoke("claim", None, process=worker), outcome, {"id": task})  # type: ignore[arg-type]


def test_each_task_once_is_valid() -> None:
    h = History()
    for task in range(5):
        claim(h, task % 2, task)
    verdict = exactly_once(h, expected=range(5))
    assert verdict.valid == "valid"
    assert verdict.stats["applied_ids"] == 5 and verdict.stats["missing"] == 0


def test_a_task_claimed_twice_shows_both_claims() -> None:
    h = History()
    claim(h, 0, "t1")
    claim(h, 1, "t1")
    claim(h, 1, "t2")
    verdict = exactly_once(h)
    assert verdict.valid == "invalid"
    (dup,) = verdict.evidence["duplicates"]
    assert dup["id"] == "t1" and dup["count"] == 2
    assert [op["process"] for op in dup["ops"]] == [0, 1]


def test_claim_then_apply_of_one_id_is_not_a_duplicate() -> None:
    h = History()
    claim(h, 0, "t1")
    h.complete(h.invoke("apply", {"id": "t1"}, process=0), "ok")
    assert exactly_once(h).valid == "valid"


def test_expected_ids_never_applied_are_missing() -> None:
    h = History()
    claim(h, 0, 1)
    claim(h, 0, 3, "fail")
    verdict = exactly_once(h, expected=[1, 2, 3])
    assert verdict.valid == "invalid"
    assert verdict.evidence == {"missing": [2, 3]}


def test_ids_only_attempted_with_unknown_outcome_make_it_unknown() -> None:
    h = History()
    claim(h, 0, 1)
    claim(h, 1, 2, "info")
    verdict = exactly_once(h, expected=[1, 2])
    assert verdict.valid == "unknown"
    assert verdict.evidence == {"uncertain": [2]}


def test_generated_deliveries_find_the_one_duplicate() -> None:
    rng = random.Random(11)
    for _ in range(10):
        h = History()
        ids = list(range(300))
        rng.shuffle(ids)
        for message in ids:
            h.complete(h.invoke("deliver", message, process=rng.randrange(6)), "ok")
        assert exactly_once(h, expected=range(300)).valid == "valid"
        again = rng.choice(ids)
        h.complete(h.invoke("deliver", again, process=9), "ok")
        verdict = exactly_once(h, expected=range(300))
        assert [dup["id"] for dup in verdict.evidence["duplicates"]] == [again]
