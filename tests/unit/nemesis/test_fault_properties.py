"""Faults and schedules are data, as properties: every fabric fault and every nemesis fault
reads back from its JSON form as itself, and so does a schedule, drawn by the generator or
written by hand; equal schedules have equal fingerprints."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from peerlab.errors import UsageError
from peerlab.fabric import faults as fabric
from peerlab.fabric.spec import STREAMS, ToxicSpec
from peerlab.fabric.toxics import TOXICS, Toxic
from peerlab.nemesis import faults as nemesis
from peerlab.nemesis.schedule import ALL_KINDS, Schedule, Step

NODES = st.text(min_size=1, max_size=3)
ENDS = st.none() | NODES
# JSON written by hand says 5 where the generator says 5.0: both must work.
SECONDS = st.floats(0.001, 1e6) | st.integers(1, 10**6)
NUMBERS = st.floats(0, 1e6) | st.integers(0, 10**6)
PERIODS = st.floats(fabric.MIN_ROLLING_PERIOD, 1e6) | st.integers(1, 10**6)


@st.composite
def toxics(draw: st.DrawFn) -> Toxic:
    cls = draw(st.sampled_from(sorted(TOXICS.values(), key=lambda c: c.type)))
    attributes = {
        field.name: draw(st.integers(0, 10**6) if field.type == "int" else NUMBERS)
        for field in dataclasses.fields(cls)
    }
    try:
        return cls(**attributes)
    except UsageError:
        assume(False)  # attributes that break the toxic's own rules (a percentage over 100)
        raise


@st.composite
def partitions(draw: st.DrawFn) -> fabric.Partition:
    one_way = draw(st.booleans())
    # A group names a node once, and no two groups are the same (a partition refuses both).
    group = st.lists(NODES, min_size=1 if one_way else 0, max_size=3, unique=True)
    groups = draw(
        st.lists(group, min_size=2 if one_way else 0, max_size=2 if one_way else 4).filter(
            lambda gs: len({frozenset(g) for g in gs if g}) == len([g for g in gs if g])
        )
    )
    return fabric.Partition(groups, one_way, draw(st.none() | SECONDS))


FABRIC_FAULTS = st.one_of(
    st.builds(
        fabric.LinkFault,
        toxics(),
        ENDS,
        ENDS,
        st.floats(0, 1) | st.sampled_from([0, 1]),
        st.text(max_size=8),
    ),
    st.builds(
        fabric.ToxicFault,
        st.builds(
            ToxicSpec, toxics(), st.text(max_size=8), st.sampled_from(STREAMS), st.floats(0, 1)
        ),
        ENDS,
        ENDS,
    ),
    partitions(),
    st.builds(fabric.RollingPartition, PERIODS, st.lists(NODES, max_size=4, unique=True)),
)

NEMESIS_FAULTS = st.one_of(
    st.builds(nemesis.Kill, NODES),
    st.builds(nemesis.Pause, NODES),
    st.builds(nemesis.Restart, NODES),
    st.builds(nemesis.ClockSkew, NODES, st.floats(-1e6, 1e6) | st.integers(-(10**6), 10**6)),
    st.builds(nemesis.Byzantine, NODES, st.text(max_size=8)),
    FABRIC_FAULTS.map(lambda fault: nemesis.Network(fault.to_dict())),
)


def through_json(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data))


@given(FABRIC_FAULTS)
def test_a_fabric_fault_reads_back_from_json(fault: fabric.Fault) -> None:
    again = fabric.fault_from_dict(through_json(fault.to_dict()))
    assert again == fault
    assert again.to_dict() == fault.to_dict()


@given(NEMESIS_FAULTS)
def test_a_nemesis_fault_reads_back_from_json(fault: nemesis.NemesisFault) -> None:
    assert nemesis.fault_from_dict(through_json(fault.to_dict())) == fault


@given(
    seed=st.integers(0, 2**32),
    nodes=st.lists(st.sampled_from("ABCDEFG"), min_size=1, max_size=7, unique=True),
    duration=st.floats(1, 60),
    kinds=st.lists(st.sampled_from(ALL_KINDS), min_size=1, unique=True),
    mean_gap=st.floats(0.1, 5),
)
def test_a_generated_schedule_reads_back_and_holds_only_faults_the_fabric_takes(
    seed: int, nodes: list[str], duration: float, kinds: list[str], mean_gap: float
) -> None:
    schedule = Schedule.generate(seed, nodes, duration, kinds, mean_gap=mean_gap)
    again = Schedule.from_dict(through_json(schedule.to_dict()))
    assert again == schedule
    assert again.fingerprint() == schedule.fingerprint()
    for step in schedule.steps:
        if isinstance(step.fault, nemesis.Network):
            raw = step.fault.fault
            assert fabric.fault_from_dict(raw).to_dict() == raw


STEPS = st.builds(Step, SECONDS, st.none() | SECONDS, NEMESIS_FAULTS)


def integral_floats_as_ints(value: Any) -> Any:
    """The same JSON as someone would write it by hand: 5 for 5.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral_floats_as_ints(item) for item in value]
    return value


@given(st.lists(STEPS, max_size=6))
def test_a_schedule_written_by_hand_reads_back_and_equal_ones_share_a_fingerprint(
    steps: list[Step],
) -> None:
    schedule = Schedule(1, ("A", "B"), 60.0, ("kill",), tuple(steps))
    raw = through_json(schedule.to_dict())
    again = Schedule.from_dict(raw)
    assert again == schedule and again.fingerprint() == schedule.fingerprint()
    by_hand = Schedule.from_dict(integral_floats_as_ints(raw))
    assert by_hand == schedule
    assert by_hand.fingerprint() == schedule.fingerprint(), "equal schedules, other fingerprints"


@pytest.mark.parametrize(
    "seconds", [float("nan"), float("inf"), -float("inf"), 1e300, -nemesis.MAX_SKEW - 1, True, "60"]
)
def test_a_skew_no_clock_can_show_is_a_usage_error(seconds: Any) -> None:
    with pytest.raises(UsageError, match="clock skew is") as info:
        nemesis.ClockSkew("A", seconds)
    assert info.value.field == "seconds"


def test_a_skew_of_a_century_either_way_is_taken() -> None:
    for seconds in (nemesis.MAX_SKEW, -nemesis.MAX_SKEW, 0, -1800):
        assert nemesis.ClockSkew("A", seconds).seconds == seconds
