"""Delta debugging finds a minimal failing subsequence; plans round-trip through JSON."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from peerlab.nemesis.faults import Kill, Network
from peerlab.nemesis.schedule import Step
from peerlab.plan import Plan
from peerlab.sim.shrink import ddmin
from peerlab.workload.files import FileOp, TimedOp


def test_ddmin_finds_the_two_items_that_make_it_fail() -> None:
    tries: list[list[int]] = []

    def fails(items: list[int]) -> bool:
        tries.append(items)
        return 3 in items and 17 in items

    assert ddmin(list(range(40)), fails) == [3, 17]
    assert len(tries) < 120


@given(st.sets(st.integers(0, 30), min_size=1, max_size=4))
def test_ddmin_keeps_exactly_what_is_needed(needed: set[int]) -> None:
    found = ddmin(list(range(31)), lambda items: needed <= set(items))
    assert set(found) == needed


def test_ddmin_gives_nothing_when_nothing_is_needed() -> None:
    assert ddmin([1, 2, 3], lambda items: True) == []


def test_a_plan_round_trips_through_json() -> None:
    steps = (
        Step(0.5, 2.0, Kill("B")),
        Step(1.0, None, Network({"kind": "partition", "groups": [["A"], ["B"]]})),
    )
    ops = (TimedOp(0.25, FileOp("A", "publish", "f.txt", b"\xff bytes \x00")),)
    plan = Plan("chaos", 7, {"peers": 3}, steps, ops)
    assert Plan.from_json(plan.to_json()) == plan
    assert Plan.from_json(Plan("chaos", 7).to_json()).steps is None
