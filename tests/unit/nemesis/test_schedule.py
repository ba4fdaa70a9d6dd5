"""Seeded schedules: a pure function of their arguments, and they keep their rules."""

from __future__ import annotations

import itertools

import pytest

from peerlab.errors import UsageError
from peerlab.fabric.faults import fault_from_dict as fabric_fault
from peerlab.nemesis.faults import Kill, Network, fault_from_dict
from peerlab.nemesis.schedule import ALL_KINDS, Schedule, Step, expand_kinds

NODES = ["E", "A", "C", "B", "D"]  # unsorted on purpose: the order given must not matter
MODES = ("corrupt", "replay")


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    first = Schedule.generate(42, NODES, 30, ["all"], byzantine_modes=MODES)
    again = Schedule.generate(42, sorted(NODES), 30, ["all"], byzantine_modes=MODES)
    assert first == again and first.fingerprint() == again.fingerprint()
    assert Schedule.generate(43, NODES, 30, ["all"]).fingerprint() != first.fingerprint()
    assert Schedule.from_dict(first.to_dict()) == first


@pytest.mark.parametrize("seed", range(20))
def test_rules_hold(seed: int) -> None:
    schedule = Schedule.generate(seed, NODES, 30, ["all"], mean_gap=0.5)
    steps = schedule.steps
    assert steps and all(0 <= s.at < 30 and s.end <= 30 + 1e-6 for s in steps)
    partitions = [
        s
        for s in steps
        if isinstance(s.fault, Network) and s.fault.fault["kind"] in ("partition", "rolling")
    ]
    for earlier, later in itertools.pairwise(partitions):
        assert later.at >= earlier.end, "two partitions at once"
    impaired = [s for s in steps if s.fault.kind in ("kill", "pause", "byzantine")]
    for step in impaired:
        overlapping = [o for o in impaired if o.at <= step.at < o.end]
        assert len(overlapping) <= 2, f"more than a minority impaired at {step.at}"
    by_node: dict[str, list[Step]] = {}
    for step in steps:
        if step.fault.kind in ("kill", "pause", "restart", "byzantine"):
            by_node.setdefault(step.fault.nodes()[0], []).append(step)
    for node_steps in by_node.values():
        for earlier, later in itertools.pairwise(node_steps):
            assert later.at >= earlier.at + (earlier.duration or 2.0) - 1e-6


def test_every_kind_makes_faults_the_fabric_and_the_history_accept() -> None:
    for kind in ALL_KINDS:
        schedule = Schedule.generate(7, NODES, 20, [kind], mean_gap=0.3, byzantine_modes=MODES)
        assert schedule.steps, kind
        for step in schedule.steps:
            assert fault_from_dict(step.fault.to_dict()) == step.fault
            if isinstance(step.fault, Network):
                fabric_fault(step.fault.fault)  # raises on a malformed fault
            assert step.describe()


def test_kind_groups_expand_and_unknown_kinds_are_refused() -> None:
    assert expand_kinds(["partition", "kill", "split"])[:2] == ("split", "islands")
    assert expand_kinds(["all"]) == ALL_KINDS
    with pytest.raises(UsageError, match="unknown fault kind 'quake'"):
        expand_kinds(["kill", "quake"])
    with pytest.raises(UsageError):
        Schedule.generate(1, [], 10)
    with pytest.raises(UsageError):
        fault_from_dict({"kind": "meteor"})


def test_a_single_node_gets_no_partitions() -> None:
    schedule = Schedule.generate(3, ["A"], 20, ["split", "bridge", "kill"], mean_gap=0.3)
    assert schedule.steps and all(isinstance(s.fault, Kill) for s in schedule.steps)
